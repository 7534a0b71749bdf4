"""ccjax: contrastive image clustering (CC, GeCC, VTCC, MFAVBs-CC) in JAX/Flax.

The layout (methods/, models/, data/, augment/, anchors/, run/, runtime/, eval/, cli/) and the
contracts between its parts are in docs/architecture.md.
"""

__version__ = "0.1.0"

# XLA reads XLA_FLAGS once, at its first computation: ccjax's CPU default (large convolutions on Eigen,
# not YNNPACK; ccjax/runtime/xla_flags.py) must be in place before any, so it is set on import.
from ccjax.runtime.xla_flags import apply_cpu_defaults as _apply_cpu_defaults

_apply_cpu_defaults()
