"""The `augment` and `augment2` sections of a run's config: view 1's pipeline and view 2's differences.

The augmentation fields and their defaults (CC's pipeline) are AugmentParams'
(ccjax/augment/params.py). `augment` is view 1's pipeline (and GeCC's third
view in its `w Aug` ablation); `augment2` holds view 2's differences only: a
field left None inherits view 1's value (`view_augment_config`).
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from ccjax.augment.params import default_fields

AUGMENT_FIELDS = default_fields()


def augment_config(**overrides) -> ml_collections.ConfigDict:
    """A full augmentation pipeline config: CC's defaults, then `overrides`."""
    unknown = set(overrides) - set(AUGMENT_FIELDS)
    if unknown:
        raise KeyError(f"unknown augmentation fields {sorted(unknown)}")
    return ml_collections.ConfigDict({**AUGMENT_FIELDS, **overrides})


def augment_overrides_config() -> ml_collections.ConfigDict:
    """View 2's pipeline as differences from view 1's: every field None (= inherit)."""
    return ml_collections.ConfigDict({k: placeholder(type(v)) for k, v in AUGMENT_FIELDS.items()})


def view_augment_config(config: ml_collections.ConfigDict, view: int) -> ml_collections.ConfigDict:
    """The resolved pipeline of view 1 or view 2 (view 2 = view 1 plus `augment2`'s set fields)."""
    base = config.augment.to_dict()
    if view == 2:
        base.update({k: v for k, v in config.augment2.to_dict().items() if v is not None})
    return ml_collections.ConfigDict(base)
