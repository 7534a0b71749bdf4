"""`python -m ccjax.bench`: time the real train step. The command is ccjax/cli/bench.py."""

from ccjax.cli.bench import main

if __name__ == "__main__":
    main()
