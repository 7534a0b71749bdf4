"""Training objectives. Each module exposes

    loss_fn(params, model_state, *, model, config, images, anchors, rng, epoch)
        -> (loss, (metrics, new_model_state))

written on global arrays (see docs/architecture.md).
"""

from __future__ import annotations

import importlib

from ccjax.errors import UserError

OBJECTIVES = ("cc", "gecc")


def get_objective(name: str):
    """The objective module `ccjax.objectives.<name>`."""
    if name not in OBJECTIVES:
        raise UserError(f"unknown objective {name!r}; set --config.objective to one of {', '.join(OBJECTIVES)}")
    return importlib.import_module(f"ccjax.objectives.{name}")
