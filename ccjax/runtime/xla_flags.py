"""An opt-in XLA setting for CPUs: `CCJAX_CPU_CONVOLUTIONS=eigen` keeps convolutions on Eigen instead of
YNNPACK (docs/benchmarks.md, "The CPU step, profiled").

XLA (jaxlib 0.10-0.12) hands large convolutions on CPU to YNNPACK. On the development CPU, YNNPACK's
weight-gradient convolutions take 3-4x the time of Eigen's (a 16x56x56x64 3x3 convolution's weight
gradient: 430 ms against 125 ms on one core), so with this setting a ResNet-34 step at 224x224 takes
0.63x the time and the quick start's 0.84x. It is not the default because it changes results: Eigen
sums in another order, and 150 epochs amplify that rounding into another run (the quick start's
ACC 0.9488 becomes 0.8247 on this machine), so a run would no longer repeat an earlier one.

Flags take effect only if set before the first computation (XLA reads XLA_FLAGS once), hence this runs
when ccjax is imported. A user's XLA_FLAGS that already name the option win.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

EIGEN_CONVOLUTIONS = {
    # drop convolutions from the operations XLA hands to YNNPACK; its other work stays
    "xla_cpu_experimental_ynn_fusion_type": "-individual_convolution",
}
# jaxlib releases known to have the flag (an unknown flag in XLA_FLAGS aborts the process)
KNOWN_JAXLIB = ((0, 10), (0, 12))


def _jaxlib_version() -> tuple[int, ...] | None:
    try:
        return tuple(int(x) for x in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def with_flags(xla_flags: str, flags: dict[str, str], jaxlib: tuple[int, ...] | None) -> str:
    """`xla_flags` with `flags` appended, except those it names already; unchanged for a jaxlib
    outside KNOWN_JAXLIB."""
    if jaxlib is None or not KNOWN_JAXLIB[0] <= jaxlib[:2] <= KNOWN_JAXLIB[1]:
        return xla_flags
    added = [f"--{name}={value}" for name, value in flags.items() if f"--{name}" not in xla_flags]
    return " ".join([xla_flags, *added]).strip()


def apply_requested_flags() -> None:
    """Add the requested settings to XLA_FLAGS for this process and the processes it starts."""
    choice = os.environ.get("CCJAX_CPU_CONVOLUTIONS", "")
    if choice == "eigen":
        os.environ["XLA_FLAGS"] = with_flags(os.environ.get("XLA_FLAGS", ""), EIGEN_CONVOLUTIONS, _jaxlib_version())
    elif choice not in ("", "xla"):  # on import, so a line rather than an error that stops every command
        print(f"ccjax: warning: CCJAX_CPU_CONVOLUTIONS={choice!r} is neither 'eigen' nor 'xla'; using XLA's "
              "defaults (docs/benchmarks.md, 'The CPU step, profiled')", file=sys.stderr)
