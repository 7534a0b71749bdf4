"""Every module or file of ccjax that the README, docs/, CONTRIBUTING.md, launch/, the configs and
ccjax's own docstrings name exists: a file path `ccjax/x/y.py` or a dotted module `ccjax.x.y`."""

from __future__ import annotations

import glob
import importlib
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = re.compile(r"(?<![\w./~-])ccjax/[A-Za-z0-9_/]+(?:\.py)?")
MODULE = re.compile(r"\bccjax(?:\.[a-z_][a-z0-9_]*)+")


def _texts():
    pats = ["README.md", "CONTRIBUTING.md", "docs/*.md", "launch/*", "configs/*.py", "ccjax/**/*.py"]
    for pat in pats:
        for path in glob.glob(os.path.join(ROOT, pat), recursive=True):
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    yield os.path.relpath(path, ROOT), f.read()


def _module_exists(dotted: str) -> bool:
    """True if `dotted` is a module or package of ccjax, or an attribute path inside one."""
    parts = dotted.split(".")
    for n in range(len(parts), 1, -1):  # the longest prefix that is a module
        base = os.path.join(ROOT, *parts[:n])
        if os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__init__.py")):
            return True
    return False


def test_named_paths_and_modules_exist():
    missing = []
    for rel, text in _texts():
        for m in PATH.findall(text):
            p = m.rstrip("/")
            if not (os.path.exists(os.path.join(ROOT, p)) or os.path.exists(os.path.join(ROOT, p + ".py"))):
                missing.append(f"{rel}: {m}")
        for m in MODULE.findall(text):
            if "__" in m:  # ccjax.__file__ and the like
                continue
            if not _module_exists(m):
                missing.append(f"{rel}: {m}")
    assert not missing, "names of modules that do not exist:\n" + "\n".join(sorted(set(missing)))


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
