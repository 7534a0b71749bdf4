"""The house rules of CONTRIBUTING.md that a reader relies on, read from the source itself."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "ccjax"
# `python -m ccjax <command>` (__main__.py) and `python -m ccjax.main` (train, kept for the scripts that name it):
# these run a command and hold nothing else.
ENTRY_MODULES = {"__main__.py", "main.py"}
# docs/architecture.md's floors, top to bottom: a room (a folder of ccjax/, or a module at its root) imports
# only rooms on lower floors, never one on its own floor or above.
FLOORS = [
    {"__main__", "main"},
    {"cli"},
    {"train"},
    {"results"},  # the claims' figure is drawn with report/'s figure writer
    {"report"},
    {"eval", "explain"},
    {"features"},
    {"clip"},
    {"run"},
    {"config"},
    {"data", "methods"},
    {"models", "augment"},
    {"runtime"},
    {"errors"},
]


def imported_modules(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def room_of(rel: pathlib.Path) -> str:
    return rel.parts[0].removesuffix(".py")


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


def test_every_room_of_ccjax_is_on_a_floor():
    rooms = {room_of(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert rooms == set().union(*FLOORS), "add the new room to FLOORS here and to docs/architecture.md's house"


def test_imports_point_down_the_floors():
    """Every `ccjax.x` import, at the top of a module or inside a function, goes to a lower floor (or its own room)."""
    floor = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
    climbing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        here = room_of(rel)
        if here == "__init__":
            continue
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] != "ccjax" or len(parts) < 2 or parts[1] not in floor or parts[1] == here:
                continue
            if floor[parts[1]] <= floor[here]:
                climbing.append(f"ccjax/{rel} imports {name}")
    assert not climbing, "imports that do not point down docs/architecture.md's floors:\n" + "\n".join(climbing)


def test_no_lazy_module_getattr():
    """A package's names are imported, not loaded on first use (a lazy __getattr__ hid a circle of imports)."""
    lazy = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
            if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in ast.parse(p.read_text()).body)]
    assert not lazy, lazy


def test_no_function_over_80_lines():
    """CONTRIBUTING's ~80 lines; the base config's field list (one assignment a line) is the exception."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "get_base_config":
                if (n := node.end_lineno - node.lineno + 1) > 80:
                    long.append(f"ccjax/{path.relative_to(PACKAGE)}:{node.name} ({n} lines)")
    assert not long, long


def test_one_figure_writer():
    """Every figure is written by ccjax/report/figures.py's save_figure (atomic, through write_atomic): a
    `savefig` anywhere else writes a PNG that a kill can leave half-written."""
    writers = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if p.relative_to(PACKAGE) != pathlib.Path("report", "figures.py")
               and any(isinstance(n, ast.Attribute) and n.attr == "savefig" for n in ast.walk(ast.parse(p.read_text())))]
    assert not writers, writers
