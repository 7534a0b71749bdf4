"""Workdir checks, multi-process detection and config locking."""

import json
import os

import pytest

from ccjax.run import rundir
from ccjax.runtime import distributed
from ccjax.config import get_base_config, view_augment_config
from ccjax.errors import UserError


def start(wd, config):
    """What the trainer does to a workdir before training: check it, then write config.json."""
    rundir.check(wd, config)
    rundir.write_config(wd, config)


def test_prepare_writes_config_and_refuses_a_different_run(tmp_path):
    c = get_base_config()
    wd = str(tmp_path / "run")
    start(wd, c)
    saved = json.load(open(os.path.join(wd, "config.json")))
    assert saved["batch_size"] == c.batch_size
    # Bookkeeping fields may change between launches of one run...
    c.log_every_steps = 3
    c.checkpoint.every_epochs = 1
    start(wd, c)
    # ...but what is computed may not.
    c.learning_rate = 0.1
    with pytest.raises(UserError, match="learning_rate"):
        start(wd, c)


def test_a_run_from_an_older_ccjax_without_a_new_field_resumes_and_loads(tmp_path):
    from ccjax.run.rundir import load_run_config

    c = get_base_config()
    wd = str(tmp_path / "run")
    start(wd, c)
    path = os.path.join(wd, "config.json")
    old = json.load(open(path))
    del old["lr_schedule"], old["warmup_epochs"]  # fields added after that run was written
    json.dump(old, open(path, "w"))
    rundir.check(wd, c)  # the defaults reproduce the old behaviour: the same run
    loaded = load_run_config(wd)
    assert loaded.lr_schedule == "constant" and loaded.warmup_epochs == 0
    c.warmup_epochs = 5  # a real change is still refused
    with pytest.raises(UserError, match="warmup_epochs"):
        rundir.check(wd, c)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_workdir_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(UserError, match="cannot write to workdir"):
        start(str(ro / "run"), get_base_config())


def test_workdir_that_is_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="cannot write to workdir"):
        start(str(f), get_base_config())


def test_view2_inherits_view1_except_where_set():
    c = get_base_config()
    c.augment.crop_scale = (0.5, 1.0)
    c.augment2.solarize_p = 0.2
    v1, v2 = view_augment_config(c, 1), view_augment_config(c, 2)
    assert v1.solarize_p == 0.0 and v2.solarize_p == 0.2
    assert tuple(v2.crop_scale) == (0.5, 1.0)


def test_locked_config_rejects_unknown_fields():
    c = get_base_config()
    c.lock()
    with pytest.raises(AttributeError):
        c.batchsize = 3


def test_multiprocess_detection(monkeypatch):
    for k in ("CCJAX_COORDINATOR", "SLURM_NTASKS", "SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES"):
        monkeypatch.delenv(k, raising=False)
    assert distributed.multiprocess_request() is None
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert distributed.multiprocess_request() is None
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert distributed.multiprocess_request() == {}
    monkeypatch.delenv("SLURM_NTASKS")
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "h0,h1")
    assert distributed.multiprocess_request() == {}
    monkeypatch.delenv("TPU_WORKER_HOSTNAMES")
    monkeypatch.setenv("CCJAX_COORDINATOR", "127.0.0.1:1234")
    monkeypatch.setenv("CCJAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("CCJAX_PROCESS_ID", "1")
    assert distributed.multiprocess_request() == dict(
        coordinator_address="127.0.0.1:1234", num_processes=2, process_id=1
    )
    monkeypatch.setenv("CCJAX_PROCESS_ID", "2")
    with pytest.raises(UserError, match="CCJAX_PROCESS_ID"):
        distributed.multiprocess_request()
