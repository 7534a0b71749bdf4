"""The CLIP anchor under transformers 5 (no Flax models) or without transformers: one line naming what to install.

transformers 5 is simulated by a stand-in package that has CLIPConfig and
CLIPImageProcessor but no FlaxCLIPModel, as transformers 5 does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from ccjax.clip import clip as clip_lib
from ccjax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKE_TRANSFORMERS_5 = '''
__version__ = "5.0.0"


class CLIPConfig:
    pass


class CLIPImageProcessor:
    pass
'''


def fake_transformers_5() -> types.ModuleType:
    module = types.ModuleType("transformers")
    exec(FAKE_TRANSFORMERS_5, module.__dict__)
    return module


def test_transformers_5_names_the_version_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", fake_transformers_5())
    with pytest.raises(UserError) as e:
        clip_lib.flax_clip_classes()
    msg = str(e.value)
    assert "\n" not in msg
    assert "transformers 5.0.0 is installed" in msg and "pip install 'transformers>=4.57.6,<5'" in msg
    assert "--config.anchor.enabled=False" in msg


def test_missing_transformers_names_the_version_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` raises ImportError
    with pytest.raises(UserError, match=r"transformers is not installed; install it with pip install "
                                        r"'transformers>=4.57\.6,<5'"):
        clip_lib.flax_clip_classes()


def test_transformers_4_gives_the_flax_clip():
    transformers = pytest.importorskip("transformers")
    if int(transformers.__version__.split(".")[0]) >= 5:
        pytest.skip("transformers 5 installed")
    model, config, processor = clip_lib.flax_clip_classes()
    assert (model.__name__, config.__name__, processor.__name__) == (
        "FlaxCLIPModel", "CLIPConfig", "CLIPImageProcessor")


@pytest.mark.slow
def test_a_clip_anchor_run_under_transformers_5_ends_in_one_line(tmp_path):
    """`python -m ccjax train` on the CLIP-anchor digits config: exit 2, one error line, no traceback."""
    fake = tmp_path / "site" / "transformers"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(FAKE_TRANSFORMERS_5)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), ROOT]),
           "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-m", "ccjax", "train", "--config=configs/mfavbs_digits.py",
                        f"--workdir={tmp_path / 'run'}", "--config.num_epochs=1"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("ccjax: error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "transformers 5.0.0 is installed" in errors[0]
    assert "pip install 'transformers>=4.57.6,<5'" in errors[0]
