"""ccjax's XLA default on CPU (ccjax/runtime/xla_flags.py): convolutions stay on Eigen, not YNNPACK.

The unit tests pin when the flag is added and when the user's own settings win; the subprocess test
compiles a convolution's gradient after `import ccjax` and reads XLA's optimised program, so it fails
if the flag never reaches XLA (or if XLA stops handing convolutions to YNNPACK, which would make the
default obsolete), and an unknown flag would abort the subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from ccjax.runtime.xla_flags import CPU_DEFAULTS, with_cpu_defaults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def test_the_default_is_added_for_a_known_jaxlib_and_kept_beside_other_flags():
    assert CPU_DEFAULTS == {"xla_cpu_experimental_ynn_fusion_type": "-individual_convolution"}
    assert with_cpu_defaults("", (0, 10)) == FLAG
    assert with_cpu_defaults("", (0, 12)) == FLAG
    assert with_cpu_defaults("--xla_dump_to=/tmp/x", (0, 11)) == f"--xla_dump_to=/tmp/x {FLAG}"


def test_the_users_own_setting_or_an_unknown_jaxlib_leaves_the_flags_alone():
    mine = "--xla_cpu_experimental_ynn_fusion_type=dot"
    assert with_cpu_defaults(mine, (0, 10)) == mine
    for jaxlib in ((0, 9), (0, 13), (1, 0), None):  # outside the releases known to have the flag
        assert with_cpu_defaults("--xla_dump_to=/tmp/x", jaxlib) == "--xla_dump_to=/tmp/x"


PROGRAM = """
import ccjax, os, re, jax, jax.numpy as jnp
def f(x, w):
    return jnp.tanh(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))).sum()
hlo = jax.jit(jax.grad(f, argnums=(0, 1))).lower(jnp.ones((2, 16, 16, 64)), jnp.ones((3, 3, 64, 64))).compile().as_text()
print(os.environ.get("XLA_FLAGS", ""))
print(hlo)
"""


def ynn_convolutions(hlo: str) -> int:
    """How many of the program's YNNPACK fusions compute a convolution."""
    bodies = {name: body for name, body in re.findall(r"^%?([\w.-]+) \([^\n]*\{\n(.*?)^\}", hlo, re.M | re.S)}
    called = re.findall(r'fusion\([^\n]*calls=%?([\w.-]+)[^\n]*"kind":"__ynn_fusion"', hlo)
    return sum("convolution(" in bodies.get(name, "") for name in called)


def compiled(**env_changes) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS")}
    env.update(PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="1", **env_changes)
    p = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=240, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    flags, _, hlo = p.stdout.partition("\n")
    return flags, hlo


def test_importing_ccjax_keeps_convolutions_off_ynnpack_and_the_opt_out_restores_xla_defaults():
    flags, hlo = compiled()
    assert FLAG in flags
    assert "convolution(" in hlo and ynn_convolutions(hlo) == 0
    flags, hlo = compiled(CCJAX_XLA_DEFAULTS="0")
    assert FLAG not in flags
    assert ynn_convolutions(hlo) >= 2  # XLA's own default: the forward and the weight gradient on YNNPACK
