"""GeCC (Chen et al., AAAI 2025), all of its equations in this folder:

- domain_shift.py: CDSM (Alg. 1, Eqs. 1, 3-5) and DSU (Eq. 2), the reference view's feature shifts,
  and the probability schedule t;
- losses.py: the attention weights W_z (Eqs. 6-7) and W_c (Eq. 10), the weighted instance
  and cluster losses (Eqs. 8-9, 11, 13), R(C) (Eq. 12) and the total (Eq. 14);
- objective.py: one training step's loss (Alg. 2): the three views, the pseudo labels, the ablations.

The contrastive primitives they build on are in ccjax/methods/contrastive.py.
"""
