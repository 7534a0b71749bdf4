"""Every name of ccjax that the README, docs/, CONTRIBUTING.md, launch/, the configs and ccjax's own
docstrings and help texts use exists: a file path `ccjax/x/y.py`, a dotted name `ccjax.x.y.name` (the
module and the name in it), a folder `x/`; the folder lists name every folder of ccjax; and a command is
written one way, `python -m ccjax <command>`."""

from __future__ import annotations

import glob
import importlib
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = re.compile(r"(?<![\w./~-])ccjax/[A-Za-z0-9_/]+(?:\.py)?")
MODULE = re.compile(r"\bccjax(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
FOLDER = re.compile(r"`([a-z_]+)/`")


def _texts():
    pats = ["README.md", "CONTRIBUTING.md", "docs/*.md", "launch/*", "configs/*.py", "ccjax/**/*.py"]
    for pat in pats:
        for path in glob.glob(os.path.join(ROOT, pat), recursive=True):
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    yield os.path.relpath(path, ROOT), f.read()


def _name_exists(dotted: str) -> bool:
    """True if `dotted` is a module of ccjax, or a name (a chain of attributes) defined in one."""
    parts = dotted.split(".")
    for n in range(len(parts), 1, -1):  # the longest prefix that is a module
        base = os.path.join(ROOT, *parts[:n])
        if os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__init__.py")):
            obj = importlib.import_module(".".join(parts[:n]))
            for attr in parts[n:]:
                if not hasattr(obj, attr):
                    return False
                obj = getattr(obj, attr)
            return True
    return False


def _folder_exists(name: str) -> bool:
    """A folder of the repository (ccjax's, the root's, a resource's) or of a run directory."""
    from ccjax.run import rundir

    run_folders = {rundir.REPORT_DIR, rundir.CHECKPOINTS_DIR, rundir.BEST_CHECKPOINTS_DIR, rundir.TENSORBOARD_DIR}
    if name in run_folders:
        return True
    for folder, dirs, _ in os.walk(ROOT):
        if ".git" in folder.split(os.sep):
            continue
        if name in dirs:
            return True
    return False


def test_named_paths_names_and_folders_exist():
    missing = []
    for rel, text in _texts():
        for m in PATH.findall(text):
            p = m.rstrip("/")
            if not (os.path.exists(os.path.join(ROOT, p)) or os.path.exists(os.path.join(ROOT, p + ".py"))):
                missing.append(f"{rel}: {m}")
        for m in MODULE.findall(text):
            if "__" in m:  # ccjax.__file__ and the like
                continue
            if not _name_exists(m):
                missing.append(f"{rel}: {m}")
        for m in FOLDER.findall(text):
            if not _folder_exists(m):
                missing.append(f"{rel}: {m}/")
    assert not missing, "names that do not exist:\n" + "\n".join(sorted(set(missing)))


def _package_folders() -> set[str]:
    return {d for d in os.listdir(os.path.join(ROOT, "ccjax"))
            if os.path.isfile(os.path.join(ROOT, "ccjax", d, "__init__.py"))}


def test_folder_lists_name_every_folder_of_ccjax():
    """README's Design section and ccjax/__init__.py's docstring list ccjax's folders: all of them, no other."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        design = f.read().split("## Design", 1)[1].split("\n## ", 1)[0]
    import ccjax

    lists = {"README.md's Design": set(FOLDER.findall(design)),
             "ccjax/__init__.py": set(re.findall(r"\b([a-z_]+)/", re.search(r"layout \(([^)]*)\)", ccjax.__doc__)[1]))}
    for where, named in lists.items():
        assert named == _package_folders(), (where, sorted(named ^ _package_folders()))


def test_every_command_runs_through_python_m_ccjax():
    """Every command of `python -m ccjax <command>` names a cli/ module with a main(); `python -m ccjax.main`
    (train) stays for the scripts that name it."""
    from ccjax.__main__ import COMMANDS

    for name, (module, _) in COMMANDS.items():
        assert callable(importlib.import_module(module).main), name
    assert importlib.import_module("ccjax.main").main is importlib.import_module("ccjax.cli.train").main


OLD_FORM = re.compile(r"-m\W+ccjax\.(?:evaluate|predict|prepare|anchors|attention|bench|tables|explain)\b(?!\.)"
                      r"|(?<![\w./])ccjax\.(?:evaluate|predict|prepare|anchors|attention|bench|tables)\b(?![.\w])"
                      r"|(?<![\w./-])ccjax\.main\b(?![.\w])")


def test_one_form_runs_a_command():
    """`python -m ccjax <command>` everywhere: no `python -m ccjax.<command>` (nor `ccjax.<command>` said of a
    command) in the docs, help texts, messages, tests and tools; `python -m ccjax.main` only where it is
    explained as kept."""
    pats = ["README.md", "CONTRIBUTING.md", "docs/*.md", "launch/*", "configs/*.py", "ccjax/**/*.py", "tests/*.py",
            "tools/*.py", ".ci/*", "pyproject.toml"]
    found = []
    for pat in pats:
        for path in glob.glob(os.path.join(ROOT, pat), recursive=True):
            rel = os.path.relpath(path, ROOT)
            if not os.path.isfile(path) or rel == os.path.join("tests", "test_docs_names.py"):
                continue
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    for m in OLD_FORM.finditer(line):
                        if m.group().endswith("ccjax.main") and "kept" in line:
                            continue
                        found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "the old command form (write `python -m ccjax <command>`):\n" + "\n".join(found)
