"""`python -m ccjax.prepare`: download and prepare a dataset once. The command is ccjax/cli/prepare.py."""

from ccjax.cli.prepare import main

if __name__ == "__main__":
    main()
