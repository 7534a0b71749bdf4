"""ccjax: contrastive image clustering (CC, GeCC, VTCC, MFAVBs-CC) in JAX/Flax."""

__version__ = "0.1.0"
