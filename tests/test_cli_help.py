"""One command entry (`python -m ccjax <command>`, the console scripts, the `python -m ccjax.<module>`
forms) and every command's `--help`: its own flags with descriptions and defaults, exit 0."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib

import pytest

from ccjax.__main__ import COMMANDS
from test_cli import ROOT, env

# Each command's own flags: written out here, not read from the code, so a flag that stops being
# listed (or a command whose help shows another's flags) fails.
OWN_FLAGS = {
    "train": ["config", "workdir", "stop_at_epoch", "show_config"],
    "evaluate": ["workdir", "suggest_k"],
    "predict": ["workdir", "out", "batch_size", "overwrite"],
    "prepare": ["dataset", "data_dir", "manual_dir", "image_size", "overwrite"],
    "anchors": ["config", "make_tiny_clip", "rebuild"],
    "attention": ["workdir", "image", "out", "seed"],
    "bench": ["config", "json"],
    "report": ["workdir"],
}
# The entry module the README documents, kept for the scripts that name it: python -m ccjax.main runs COMMANDS["train"].
ENTRY_MODULES = {"main": "train"}  # the one entry module kept (users' scripts name python -m ccjax.main)


def ccjax(*args, module="ccjax"):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env(), capture_output=True,
                          text=True, timeout=120)


def flag_lines(help_text: str) -> dict[str, str]:
    """`--name` -> its description (the text after the name, continuation lines joined)."""
    out, current = {}, None
    for line in help_text.split("Flags:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]:
        if line.startswith("  --"):
            head, _, rest = line.strip().partition("  ")
            current = head.split("=")[0].replace("--[no]", "--")
            out[current] = rest.strip()
        elif current:
            out[current] += " " + line.strip()
    return out


@pytest.mark.parametrize("command", sorted(OWN_FLAGS))
def test_help_lists_the_commands_own_flags_with_descriptions_and_defaults(command):
    r = ccjax(command, "--help")
    assert r.returncode == 0, r.stderr
    listed = flag_lines(r.stdout)
    assert sorted(listed) == sorted(f"--{f}" for f in OWN_FLAGS[command]), r.stdout
    for name, text in listed.items():
        assert len(text.split()) >= 3, (name, text)  # a description, not just a type
        assert "default" in text or "required" in text, (name, text)
    assert "--helpfull" in r.stdout
    assert "--alsologtostderr" not in r.stdout and "--tfds" not in r.stdout  # absl's own flags: only in --helpfull
    assert r.stderr == "", r.stderr


def test_train_help_says_where_config_fields_are_documented_and_how_to_list_them():
    r = ccjax("train", "--help")
    assert r.returncode == 0, r.stderr
    assert "ccjax/config.py" in r.stdout and "--show_config" in r.stdout and "--config.<field>" in r.stdout


def test_show_config_prints_the_resolved_fields_and_trains_nothing(tmp_path):
    r = ccjax("train", "--config=configs/cc_digits.py", "--config.num_epochs=3", f"--workdir={tmp_path / 'run'}",
              "--show_config")
    assert r.returncode == 0, r.stderr
    fields = dict(l.split(" = ", 1) for l in r.stdout.splitlines() if " = " in l)
    assert fields["num_epochs"] == "3" and fields["method"] == "'cc'" and fields["dataset.name"] == "'digits'"
    assert "model.backbone" in fields and "augment.crop_scale" in fields
    assert not (tmp_path / "run").exists()


def test_entry_without_or_with_a_mistyped_command():
    r = ccjax()
    assert r.returncode == 2 and all(name in r.stderr for name in COMMANDS), r.stderr
    r = ccjax("--help")
    assert r.returncode == 0 and all(name in r.stdout for name in COMMANDS), r.stdout
    r = ccjax("evalute", "--workdir=x")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "did you mean evaluate?" in r.stderr


def test_every_entry_module_and_console_script_runs_its_command():
    """`python -m ccjax.<module>` and pyproject's scripts run the command `python -m ccjax <command>` runs."""
    for module, command in ENTRY_MODULES.items():
        entry = importlib.import_module(f"ccjax.{module}")
        assert entry.main is importlib.import_module(COMMANDS[command][0]).main, module
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts["ccjax"] == "ccjax.__main__:main" and "ccjax-train" in scripts
    for target in scripts.values():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target


# First-contact errors: one line that says what to do, never a raw repr or a pointer to --helpfull.

@pytest.mark.parametrize("args, expected", [
    (["--config=configs/cc_digit.py"], "no config file configs/cc_digit.py; did you mean configs/cc_digits.py"),
    (["--config=configs/gecc_cifar.py", "--config.num_epochs=3"], "did you mean configs/gecc_cifar10.py"),
    (["--config=configs/cc_digits.py", "--config.num_epoch=3"],
     "--config.num_epoch: the config has no field 'num_epoch'; did you mean --config.num_epochs?"),
    (["--config=configs/cc_digits.py", "--config.gecc.referenc=aug"], "did you mean --config.gecc.reference?"),
])
def test_config_path_and_field_errors_are_one_line_naming_the_nearest(tmp_path, args, expected):
    r = ccjax("train", *args, f"--workdir={tmp_path / 'run'}")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("ccjax: error: "), r.stderr
    assert expected in r.stderr, r.stderr
    assert "helpfull" not in r.stderr and "\\n" not in r.stderr and "Attempted" not in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_config_messages_in_process(tmp_path, monkeypatch):
    from ccjax.cli.flags import config_field_message, config_file_message

    (tmp_path / "alpha_one.py").write_text("")
    (tmp_path / "beta_two.py").write_text("")
    monkeypatch.chdir(tmp_path)
    # The folder named, or the current one for a bare name; then ccjax's own configs.
    assert config_file_message("alpha_on.py", "") == "no config file alpha_on.py; did you mean alpha_one.py?"
    named = config_file_message(str(tmp_path / "beta_tw.py"), "")
    assert named == f"no config file {tmp_path / 'beta_tw.py'}; did you mean {tmp_path / 'beta_two.py'}?"
    assert config_file_message("cc_digts.py", "").startswith(
        f"no config file cc_digts.py; did you mean {os.path.join(ROOT, 'configs', 'cc_digits.py')} (or ")
    far = config_file_message("zzzz.py", "")
    assert far == f"no config file zzzz.py; the configs are {ROOT}/configs/*.py, e.g. {ROOT}/configs/cc_digits.py"
    # A field with no near name: the argument and where the fields are listed, no suggestion.
    line = config_field_message("'xyz'", ["p", "--config.model.xyz=3"])
    assert line.startswith("--config.model.xyz: the config has no field 'xyz' (") and "did you mean" not in line


def test_the_label_free_summary_says_what_its_entropy_measures():
    from ccjax.eval.evaluation import summary_line

    line = summary_line({"num_examples": 400, "num_clusters": 10, "entropy": 0.534, "num_empty_clusters": 2})
    assert line == ("ccjax: final clustering of 400 images (no labels): 10 clusters (2 empty), balance of the "
                    "cluster sizes 0.534 (their entropy / log K: 1 = all the same size, 0 = all in one cluster)")
