"""ccjax: contrastive image clustering (CC, GeCC, VTCC, MFAVBs-CC) in JAX/Flax, and TEMI's heads on frozen features.

The layout (cli/, train/, report/, eval/, explain/, features/, clip/, results/, run/, data/, methods/, models/,
augment/, runtime/) and the contracts between its parts are in docs/architecture.md.
"""

__version__ = "0.1.0"

# XLA reads XLA_FLAGS once, at its first computation, so an opt-in XLA setting
# (CCJAX_CPU_CONVOLUTIONS=eigen: ccjax/runtime/xla_flags.py) is applied on import.
from ccjax.runtime.xla_flags import apply_requested_flags as _apply_requested_flags

_apply_requested_flags()
