"""`python -m ccjax.main --config=...`: the same as `python -m ccjax train`, kept because users' scripts name it.
The command is ccjax/cli/train.py."""

from ccjax.cli.train import main

if __name__ == "__main__":
    main()
