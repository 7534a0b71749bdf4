"""One validation (ccjax.config.validate) of every field, before anything is opened or created.

For every method, a mistyped value of each field it reads (its own, its backbone's, the shared
ones) must fail in one line before the dataset is touched and without creating the workdir. The
dataset of every config here is a folder that does not exist: opening it would fail with another
message, so a check that ran only once the data was open (as GeCC's did, inside the loss) fails.
"""

from __future__ import annotations

import json
import os

import pytest

from ccjax.config import get_base_config, validate
from ccjax.errors import UserError
from ccjax.methods import METHODS
from test_cli import ccjax_main, error_lines

NO_DATA = "folder:/nonexistent/ccjax-validate-test"


def method_config(method: str):
    c = get_base_config()
    c.method = method
    c.dataset.name = NO_DATA
    if method in ("vtcc", "mfavbs"):
        c.model.backbone = "vit"
        c.model.vit.update(embed_dim=16, depth=2, num_heads=2, patch_size=4, num_fusing_blocks=1)
    return c


READ_BY_ALL = [  # fields every method reads, TEMI's heads included
    ("dtype", "float16", "float32, bfloat16"),
    ("dataset.in_memory", "maybe", "auto, true or false"),
]
SHARED = READ_BY_ALL + [
    ("lr_schedule", "linear", "constant, cosine"),
    ("bench.data", "fake", "synthetic, real"),
    ("learning_rate", 0.0, "learning_rate=0.0 must be > 0"),
    ("model.feature_dim", 0, "model.feature_dim=0 must be >= 1"),
    ("loss.instance_temperature", 0.0, "loss.instance_temperature=0.0 must be > 0"),
    ("loss.cluster_temperature", -1.0, "loss.cluster_temperature=-1.0 must be > 0"),
    ("augment.flip_p", 2.0, "flip_p=2.0 is a probability"),
]
RESNET = [("model.backbone", "resnet101", "resnet18, resnet34"), ("model.stem", "tiny", "imagenet, small")]
VIT = [
    ("model.vit.fusion", "add", "tokens or none"),
    ("model.vit.num_fusing_blocks", 2, "2N <= depth"),
    ("model.vit.patch_size", 12, "power of 2"),
    ("model.vit.num_heads", 3, "not divisible by model.vit.num_heads"),
]
GECC = [
    ("gecc.reference", "bogus", "cdsm, dsu, aug"),
    ("gecc.weights", "all", "both, none, wz, wc"),
    ("gecc.positions", "everywhere", "stages, stem_and_stages, first_stage"),
    ("gecc.reference_input", "view2", "view1, fresh, clean"),
    ("gecc.lambda_instance", -1.0, "gecc.lambda_instance=-1.0 must be >= 0"),
    ("gecc.lambda_cluster", -0.5, "gecc.lambda_cluster=-0.5 must be >= 0"),
    ("gecc.schedule_stages", 0, "gecc.schedule_stages=0 must be an integer >= 1"),
]
TEMI = READ_BY_ALL + [  # method=temi trains heads on frozen features: its own fields, plus the shared ones it reads
    ("features.source", "imagenet", "clip:<model>, dinov2:<model> or run:<workdir>"),
    ("temi.num_heads", 0, "temi.num_heads=0 must be an integer >= 1"),
    ("temi.beta", 0.0, "temi.beta=0.0 must be > 0"),
    ("temi.momentum_teacher", 1.5, "temi.momentum_teacher=1.5 must be in [0, 1]"),
]
FIELDS_OF = {"cc": SHARED + RESNET, "gecc": SHARED + RESNET + GECC, "vtcc": SHARED + VIT, "mfavbs": SHARED + VIT,
             "temi": TEMI}
CASES = [(m, *f) for m, fields in FIELDS_OF.items() for f in fields]


def set_field(config, field: str, value) -> None:
    *path, last = field.split(".")
    holder = config
    for part in path:
        holder = holder[part]
    holder[last] = value


def test_every_method_has_its_fields_listed():
    assert set(FIELDS_OF) == set(METHODS)


@pytest.mark.parametrize("method, field, value, expected", CASES)
def test_a_mistyped_field_fails_in_one_line_before_the_data_and_the_workdir(tmp_path, method, field, value, expected):
    from ccjax.train import train_and_evaluate

    config = method_config(method)
    validate(config)  # the config is valid as it stands...
    set_field(config, field, value)
    workdir = tmp_path / "run"
    with pytest.raises(UserError) as e:  # ...and the one mistyped field is what stops the run
        train_and_evaluate(config, str(workdir))
    message = str(e.value)
    assert expected in message and "\n" not in message, message
    assert NO_DATA not in message  # the dataset was never opened
    assert not workdir.exists()


def test_a_typo_on_the_command_line_leaves_nothing_and_the_fixed_command_runs_there(tmp_path):
    """The issue's case: `--config.gecc.reference=bogus` used to write config.json first, so the corrected
    command was refused in the same workdir."""
    wd = tmp_path / "run"
    r = ccjax_main("--config=configs/gecc_digits.py", f"--workdir={wd}", "--config.gecc.reference=bogus")
    lines = error_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1 and "gecc.reference" in lines[0], r.stderr
    assert r.stdout == "" and not wd.exists()


def test_a_failure_after_validation_leaves_no_empty_workdir(tmp_path):
    """An unknown dataset fails the launch before it touches the workdir: none is left behind, and a folder the
    user made is kept."""
    from ccjax.train import train_and_evaluate

    config = method_config("cc")
    config.dataset.name = "no_such_set"
    with pytest.raises(UserError, match="unknown dataset"):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    existing = tmp_path / "mine"
    existing.mkdir()  # a folder the user made is theirs: kept
    with pytest.raises(UserError, match="unknown dataset"):
        train_and_evaluate(config, str(existing))
    assert existing.is_dir()


@pytest.mark.parametrize("method, objective", [("cc", "cc"), ("gecc", "gecc"), ("vtcc", "cc"), ("mfavbs", "cc")])
def test_objective_follows_the_method_and_old_configs_still_load(tmp_path, method, objective):
    """`objective` is derived from `method`; a config that still sets it agrees or is refused, and an older
    run's config.json (with `objective`) resumes under today's config."""
    from ccjax.run import rundir

    config = method_config(method)
    config.objective = objective  # an old config file's line
    validate(config)
    config.objective = "gecc" if objective == "cc" else "cc"
    with pytest.raises(UserError, match="objective now follows the method"):
        validate(config)
    wd = str(tmp_path)
    old = json.loads(method_config(method).to_json_best_effort())
    old["objective"] = objective
    with open(os.path.join(wd, rundir.CONFIG_FILE), "w") as f:
        json.dump(old, f)
    rundir.check(wd, method_config(method))  # no "different config (objective)"
    assert rundir.load_run_config(wd).method == method


def test_masked_noise_fractions_are_checked_before_the_data(tmp_path):
    from ccjax.train import train_and_evaluate

    config = method_config("mfavbs")
    config.dataset.mask_noise.enabled = True
    config.dataset.mask_noise.min_fraction = 0.7  # above max_fraction 0.5
    with pytest.raises(UserError, match="min_fraction <= max_fraction") as e:
        train_and_evaluate(config, str(tmp_path / "run"))
    assert NO_DATA not in str(e.value) and not (tmp_path / "run").exists()


def test_validate_rejects_an_unknown_dataset_name_before_anything_is_opened():
    """dataset.name is a field like the others: validate names it (a validate that skips it lets a typo reach
    the data loader, after the workdir's lock and config are written)."""
    config = method_config("cc")
    config.dataset.name = "cifar01"
    with pytest.raises(UserError, match="unknown dataset 'cifar01'"):
        validate(config)
    config.dataset.name = "folder:"
    with pytest.raises(UserError, match="folder: needs a path"):
        validate(config)
