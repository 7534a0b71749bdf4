"""`python -m ccjax.main --config=configs/cc_digits.py`: train and evaluate. The command is ccjax/cli/train.py."""

from ccjax.cli.train import main

if __name__ == "__main__":
    main()
