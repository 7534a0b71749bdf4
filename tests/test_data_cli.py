"""`python -m ccjax prepare` and preparing/reading without TensorFlow, in fresh processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from PIL import Image

import test_data_fakes as data_fakes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_prepare_and_read_without_tensorflow(tmp_path):
    """TensorFlow is not a dependency; where it is absent this proves the path needs none."""
    root, data_dir = tmp_path / "imgs", tmp_path / "tfds"
    for i in range(4):
        data_fakes.save(Image.fromarray(data_fakes.rgb(i, 6, 6)), f"{root}/c{i % 2}/{i}.png", "PNG")
    script = textwrap.dedent(f"""
        import sys
        from ccjax.data import open_dataset, prepare_dataset
        from ccjax.cli.prepare import dataset_config
        digits = open_dataset(dataset_config("digits", data_dir={str(data_dir)!r}))
        print(prepare_dataset(dataset_config("folder:{root}", data_dir={str(data_dir)!r})))
        folder = open_dataset(dataset_config("folder:{root}", data_dir={str(data_dir)!r}))
        assert "tensorflow" not in sys.modules  # TFDS imports it lazily: never needed here
        print("OK", digits.num_examples, folder.num_examples, folder.num_classes)
    """)
    r = _run(["-c", script])
    assert r.returncode == 0, r.stderr
    assert "OK 1797 4 2" in r.stdout

    # The command line on the same folder: a no-op now.
    r = _run(["-m", "ccjax", "prepare", f"--dataset=folder:{root}", f"--data_dir={data_dir}"])
    assert r.returncode == 0, r.stderr
    assert "already prepared" in r.stdout


def test_prepare_cli_missing_manual_dir_is_one_line(tmp_path):
    r = _run(["-m", "ccjax", "prepare", "--dataset=imagenet_dogs", f"--data_dir={tmp_path}"])
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("ccjax: error: imagenet_dogs"), r.stderr
    assert "ILSVRC2012_img_train.tar" in lines[0] and "Traceback" not in r.stderr
