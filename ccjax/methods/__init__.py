"""The methods: `METHODS[config.method]` is the module of that method's training objective.

Each objective module exposes

    check_config(config) -> None        UserError for a bad value of a field the method reads
    loss_fn(params, model_state, *, model, config, images, anchors, rng, epoch)
        -> (loss, (metrics, new_model_state))

written on global arrays (see docs/architecture.md). VTCC and MFAVBs-CC train
with CC's objective; what makes them differ is their backbone (ccjax/models/vit.py).
"""

from __future__ import annotations

from ccjax.errors import UserError
from ccjax.methods import cc
from ccjax.methods import temi
from ccjax.methods.gecc import objective as gecc

METHODS = {"cc": cc, "gecc": gecc, "vtcc": cc, "mfavbs": cc, "temi": temi}


def method_objective(config):
    """The objective module of `config.method`; a UserError naming the methods for an unknown one."""
    if config.method not in METHODS:
        raise UserError(f"unknown method {config.method!r}; set --config.method to one of {', '.join(METHODS)}")
    return METHODS[config.method]


def check_method_config(config) -> None:
    """The method's own checks (its fields), after `method` itself."""
    method_objective(config).check_config(config)
