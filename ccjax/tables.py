"""`python -m ccjax.tables runs/<table>`: the runs of a paper's table beside the paper's numbers. The command is
ccjax/cli/tables.py."""

from ccjax.cli.tables import main

if __name__ == "__main__":
    main()
