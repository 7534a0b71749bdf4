"""`python -m ccjax.anchors`: the command is ccjax/cli/anchors.py."""

from ccjax.cli.anchors import main

main()
