"""`python -m ccjax.evaluate`: re-evaluate a trained run and rewrite its report. The command is ccjax/cli/evaluate.py."""

from ccjax.cli.evaluate import main

if __name__ == "__main__":
    main()
