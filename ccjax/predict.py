"""`python -m ccjax.predict`: assign new images to a trained run's clusters. The command is ccjax/cli/predict.py."""

from ccjax.cli.predict import main

if __name__ == "__main__":
    main()
