"""`python -m ccjax.explain --workdir=RUN [--workdir=RUN2 ...]`: where runs look, side by side (GeCC's Fig. 1).
The command is ccjax/cli/explain.py."""

from ccjax.cli.explain import main

if __name__ == "__main__":
    main()
