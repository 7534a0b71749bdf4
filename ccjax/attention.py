"""`python -m ccjax.attention`: draw a ViT run's attention maps. The command is ccjax/cli/attention.py."""

from ccjax.cli.attention import main

if __name__ == "__main__":
    main()
