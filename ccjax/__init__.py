"""ccjax: contrastive image clustering (CC, GeCC, VTCC, MFAVBs-CC) in JAX/Flax.

The layout (methods/, models/, data/, augment/, anchors/, run/, runtime/, eval/, cli/) and the
contracts between its parts are in docs/architecture.md.
"""

__version__ = "0.1.0"
