"""The command line: wrong inputs give one clear line and a non-zero exit; SIGTERM saves and exits 0."""

import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--config.model.convnet_width=8", "--config.augment.image_size=8",
    "--config.progress_bar=False",
]


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith(("CCJAX_", "SLURM_", "TPU_"))}
    e["JAX_NUM_CPU_DEVICES"] = "4"
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


def ccjax_main(*args, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "ccjax", "train", *args], cwd=ROOT, env=env(),
        capture_output=True, text=True, timeout=timeout,
    )


def error_lines(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if l.strip() and "WARNING" not in l and not l.startswith("W0")]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--config.dataset.name=no_such_set"], "unknown dataset"),
        (["--config.batch_size=250"], "not divisible by the 4 devices"),
        (["--config.no_such_field=1"], "no_such_field"),
        (["--config.model.backbone=resnet9"], "resnet9"),
        (["--config.lr_schedule=linear"], "lr_schedule='linear'"),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, args, expected):
    r = ccjax_main("--config=configs/cc_digits.py", f"--workdir={tmp_path / 'run'}", *args)
    assert r.returncode != 0
    lines = error_lines(r.stderr)
    assert any(expected in l for l in lines), r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) <= 2, r.stderr  # absl adds a 'Pass --helpshort' hint to flag errors
    # Nothing written: the corrected command in the same workdir is not refused as "a different config".
    run = tmp_path / "run"
    assert not run.exists() or not any(run.iterdir()), list(run.iterdir())


def test_unwritable_workdir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = ccjax_main("--config=configs/cc_digits.py", f"--workdir={blocker}/run")
    assert r.returncode == 2
    assert "cannot write to workdir" in r.stderr and "Traceback" not in r.stderr


def test_missing_config_file(tmp_path):
    r = ccjax_main("--config=configs/no_such_config.py", f"--workdir={tmp_path}")
    assert r.returncode != 0 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_0_then_resumes(tmp_path):
    """Streamed through grain workers (stopped mid-read-ahead), then resumed in memory: the stop is
    its one line and nothing else (no worker traceback, no shared-memory warning)."""
    wd = str(tmp_path / "run")
    args = ["--config=configs/cc_digits.py", f"--workdir={wd}", *TINY, "--config.num_epochs=200"]
    streamed = ["--config.dataset.in_memory=false", "--config.dataset.stream_workers=2"]
    p = subprocess.Popen([sys.executable, "-m", "ccjax", "train", *args, *streamed], cwd=ROOT, env=env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    hist = os.path.join(wd, "history.jsonl")
    deadline = time.time() + 180
    while not (os.path.exists(hist) and os.path.getsize(hist) > 0):
        assert p.poll() is None, p.stdout.read()
        assert time.time() < deadline, "no epoch finished in time"
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert "SIGTERM received; saved a checkpoint at step" in out, out
    assert "leaked" not in out and "Traceback" not in out, out
    assert out.strip().splitlines()[-1].startswith("ccjax: SIGTERM received"), out
    step = int(out.split("saved a checkpoint at step ")[1].split()[0])
    r = ccjax_main(*args, f"--stop_at_epoch={step // 7 + 2}")
    assert r.returncode == 0, r.stderr
    assert f"resuming from step {step}" in r.stdout, r.stdout
