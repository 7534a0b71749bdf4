"""XLA options ccjax sets by default before JAX starts its backends: a CPU setting that makes the train
step faster without changing what it computes (docs/benchmarks.md, "The CPU step, profiled").

XLA (jaxlib 0.10-0.12) hands large convolutions on CPU to YNNPACK. On the development CPU, YNNPACK's
weight-gradient convolutions take 3-4x the time of Eigen's (a 16x56x56x64 3x3 convolution's weight
gradient: 430 ms against 125 ms on one core), so ccjax asks XLA to keep convolutions on Eigen; the
rest of YNNPACK's work (matmuls, element-wise, reductions) stays. Results differ from YNNPACK's only
by float32 rounding (summation order). GPU and TPU compilations ignore the flag.

A user's own XLA_FLAGS win: nothing is added when they already name the option, or when
CCJAX_XLA_DEFAULTS=0. Flags take effect only if set before the first computation (XLA reads them
once), hence this runs when ccjax is imported.
"""

from __future__ import annotations

import os

CPU_DEFAULTS = {
    # drop YNNPACK's convolutions from its default set of fused operations
    "xla_cpu_experimental_ynn_fusion_type": "-individual_convolution",
}
# jaxlib releases known to have these flags (an unknown flag in XLA_FLAGS aborts the process)
KNOWN_JAXLIB = ((0, 10), (0, 12))


def _jaxlib_version() -> tuple[int, ...] | None:
    from importlib import metadata

    try:
        return tuple(int(x) for x in metadata.version("jaxlib").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def with_cpu_defaults(xla_flags: str, jaxlib: tuple[int, ...] | None) -> str:
    """`xla_flags` with ccjax's CPU defaults appended, except those it names already; unchanged for a
    jaxlib outside KNOWN_JAXLIB."""
    if jaxlib is None or not KNOWN_JAXLIB[0] <= jaxlib[:2] <= KNOWN_JAXLIB[1]:
        return xla_flags
    added = [f"--{name}={value}" for name, value in CPU_DEFAULTS.items() if f"--{name}" not in xla_flags]
    return " ".join([xla_flags, *added]).strip()


def apply_cpu_defaults() -> None:
    """Set XLA_FLAGS for this process (and the processes it starts) unless CCJAX_XLA_DEFAULTS=0."""
    if os.environ.get("CCJAX_XLA_DEFAULTS", "1") == "0":
        return
    flags = with_cpu_defaults(os.environ.get("XLA_FLAGS", ""), _jaxlib_version())
    if flags:
        os.environ["XLA_FLAGS"] = flags
