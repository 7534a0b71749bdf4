"""The methods' training objectives: `get_objective(name)` returns a module that exposes

    loss_fn(params, model_state, *, model, config, images, anchors, rng, epoch)
        -> (loss, (metrics, new_model_state))

written on global arrays (see docs/architecture.md).
"""

from __future__ import annotations

import importlib

from ccjax.errors import UserError

# objective name -> the module implementing it (CC's also serves VTCC and MFAVBs-CC).
OBJECTIVE_MODULES = {"cc": "ccjax.methods.cc", "gecc": "ccjax.methods.gecc.objective"}
OBJECTIVES = tuple(OBJECTIVE_MODULES)


def get_objective(name: str):
    """The objective module of `name` (cc or gecc)."""
    if name not in OBJECTIVES:
        raise UserError(f"unknown objective {name!r}; set --config.objective to one of {', '.join(OBJECTIVES)}")
    return importlib.import_module(OBJECTIVE_MODULES[name])
