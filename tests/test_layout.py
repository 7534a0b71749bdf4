"""The house rules of CONTRIBUTING.md that a reader relies on, read from the source itself."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "ccjax"
# `python -m ccjax.<command>` needs a module of that name: these run a command and hold nothing else.
ENTRY_MODULES = {"__main__.py", "main.py", "evaluate.py", "predict.py", "prepare.py", "anchors.py", "attention.py",
                 "bench.py", "tables.py", "explain.py"}


def imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def library_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "cli" or (len(rel.parts) == 1 and rel.name in ENTRY_MODULES):
            continue
        yield rel, path


def test_no_library_module_imports_a_command():
    offenders = [str(rel) for rel, path in library_modules()
                 if any(m == "ccjax.cli" or m.startswith("ccjax.cli.") for m in imported_modules(path))]
    assert not offenders, f"library modules importing ccjax/cli/: {offenders}"


def test_entry_modules_only_run_their_command():
    for name in ENTRY_MODULES - {"__main__.py"}:  # __main__.py is the dispatcher of `python -m ccjax <command>`
        path = PACKAGE / name
        if path.exists():
            assert len(path.read_text().splitlines()) <= 10, f"ccjax/{name} is an entry module: keep it to the call"


def test_no_module_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"over CONTRIBUTING's 400 lines: {long}"


def test_the_training_path_reads_in_order():
    """state.py -> step.py -> loop.py: each imports only the parts before it, so a reader opens them in order."""
    train = {name: imported_modules(PACKAGE / "train" / f"{name}.py") for name in ("state", "step", "loop")}
    uses = {name: {m for m in mods if m.startswith("ccjax.train.")} for name, mods in train.items()}
    assert not any(m.startswith(("ccjax.train.step", "ccjax.train.loop")) for m in uses["state"])
    assert not any(m.startswith("ccjax.train.loop") for m in uses["step"]) and "ccjax.train.state" in uses["step"]
    assert {"ccjax.train.state", "ccjax.train.step"} <= uses["loop"]
