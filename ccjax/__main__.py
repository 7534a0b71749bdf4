"""`python -m ccjax <command> [flags]` (or the console script `ccjax <command> [flags]`): one entry for
every command. `python -m ccjax.main --config=...` (ccjax/main.py, train) is kept for the scripts that name it.

    python -m ccjax train --config=configs/cc_digits.py
    python -m ccjax evaluate --help

Each command is a module in ccjax/cli/ with a `main()` that parses sys.argv; this module only picks it.
"""

from __future__ import annotations

import difflib
import importlib
import sys

from ccjax.cli.closed_pipe import quiet_when_stdout_closes

# name -> (module with main(), what it is for). Add a command here and in ccjax/cli/.
COMMANDS = {
    "train": ("ccjax.cli.train", "train a config and evaluate it (resumes from the workdir's newest checkpoint)"),
    "evaluate": ("ccjax.cli.evaluate", "re-evaluate a run and rewrite its report, or --suggest_k=LO:HI"),
    "report": ("ccjax.cli.report", "rebuild a run's browsable report page (report/index.html) without its model"),
    "predict": ("ccjax.cli.predict", "assign new images to a trained run's clusters; writes a CSV"),
    "prepare": ("ccjax.cli.prepare", "download and prepare a dataset once (docs/datasets.md)"),
    "anchors": ("ccjax.cli.anchors", "compute and cache a dataset's frozen CLIP embeddings (MFAVBs-CC)"),
    "attention": ("ccjax.cli.attention", "draw a ViT run's attention over an image's patches"),
    "bench": ("ccjax.cli.bench", "time the real train step: images/s, FLOPs, MFU, memory"),
    "tables": ("ccjax.cli.tables", "collect reproduce.sh's runs into a paper's table, beside the paper's numbers"),
    "explain": ("ccjax.cli.explain", "where runs look (Grad-CAM, ViT attention) on the same images, side by side"),
}


def usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: python -m ccjax <command> [flags]   (or: ccjax <command> [flags])", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "`python -m ccjax <command> --help` lists a command's flags, with descriptions and defaults."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    with quiet_when_stdout_closes():  # `python -m ccjax --help | head -1`: no traceback
        _run(sys.argv[1:] if argv is None else argv)


def _run(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "-help", "help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        sys.exit(0 if argv else 2)
    name = argv[0]
    if name not in COMMANDS:
        near = difflib.get_close_matches(name, COMMANDS, n=2)
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        print(f"ccjax: error: unknown command {name!r}; {hint}commands are {', '.join(COMMANDS)} "
              "(python -m ccjax --help)", file=sys.stderr)
        sys.exit(2)
    command = importlib.import_module(COMMANDS[name][0])
    sys.argv = [f"ccjax {name}", *argv[1:]]
    command.main()


def train() -> None:
    """The `ccjax-train` console script: `ccjax train` without the word."""
    main(["train", *sys.argv[1:]])


if __name__ == "__main__":
    main()
