"""The opt-in CPU setting CCJAX_CPU_CONVOLUTIONS=eigen (ccjax/runtime/xla_flags.py): convolutions on
Eigen, not YNNPACK.

The unit tests pin when the flag is added and when the user's own settings win; the subprocess test
compiles a convolution's gradient after `import ccjax` and reads XLA's optimised program, so it fails
if the setting never reaches XLA, if it were applied without being asked for (it changes results), or
if XLA stopped handing convolutions to YNNPACK (the setting would be obsolete); an unknown flag would
abort the subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from ccjax.runtime.xla_flags import EIGEN_CONVOLUTIONS, with_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def test_the_flag_is_added_for_a_known_jaxlib_beside_other_flags():
    assert with_flags("", EIGEN_CONVOLUTIONS, (0, 10)) == FLAG
    assert with_flags("", EIGEN_CONVOLUTIONS, (0, 12)) == FLAG
    assert with_flags("--xla_dump_to=/tmp/x", EIGEN_CONVOLUTIONS, (0, 11)) == f"--xla_dump_to=/tmp/x {FLAG}"


def test_the_users_own_setting_or_an_unknown_jaxlib_leaves_the_flags_alone():
    mine = "--xla_cpu_experimental_ynn_fusion_type=dot"
    assert with_flags(mine, EIGEN_CONVOLUTIONS, (0, 10)) == mine
    for jaxlib in ((0, 9), (0, 13), (1, 0), None):  # outside the releases known to have the flag
        assert with_flags("--xla_dump_to=/tmp/x", EIGEN_CONVOLUTIONS, jaxlib) == "--xla_dump_to=/tmp/x"


PROGRAM = """
import ccjax, os, jax, jax.numpy as jnp
def f(x, w):
    return jnp.tanh(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))).sum()
x, w = jnp.ones((2, 16, 16, 64)), jnp.ones((3, 3, 64, 64))
print(os.environ.get("XLA_FLAGS", ""))
print(jax.jit(jax.grad(f, argnums=(0, 1))).lower(x, w).compile().as_text())
"""


def ynn_convolutions(hlo: str) -> int:
    """How many of the program's YNNPACK fusions compute a convolution."""
    bodies = dict(re.findall(r"^%?([\w.-]+) \([^\n]*\{\n(.*?)^\}", hlo, re.MULTILINE | re.DOTALL))
    called = re.findall(r'fusion\([^\n]*calls=%?([\w.-]+)[^\n]*"kind":"__ynn_fusion"', hlo)
    return sum("convolution(" in bodies.get(name, "") for name in called)


def compiled(**env_changes) -> tuple[str, str, str]:
    drop = ("XLA_FLAGS", "JAX_DISABLE_MOST_OPTIMIZATIONS", "CCJAX_CPU_CONVOLUTIONS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="1", **env_changes)
    p = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=240, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    flags, _, hlo = p.stdout.partition("\n")
    return flags, hlo, p.stderr


def test_convolutions_leave_ynnpack_only_when_asked():
    flags, hlo, _ = compiled()
    assert FLAG not in flags
    assert ynn_convolutions(hlo) >= 2  # XLA's default: the forward and the weight gradient on YNNPACK
    flags, hlo, _ = compiled(CCJAX_CPU_CONVOLUTIONS="eigen")
    assert FLAG in flags
    assert "convolution(" in hlo and ynn_convolutions(hlo) == 0
    flags, hlo, stderr = compiled(CCJAX_CPU_CONVOLUTIONS="fast")
    assert FLAG not in flags and ynn_convolutions(hlo) >= 2
    assert [line for line in stderr.splitlines() if "CCJAX_CPU_CONVOLUTIONS='fast'" in line]
