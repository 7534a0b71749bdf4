"""`python -m ccjax.anchors`: compute and cache a dataset's frozen CLIP embeddings. The command is ccjax/cli/anchors.py."""

from ccjax.cli.anchors import main

if __name__ == "__main__":
    main()
