"""Seeded stand-in weights shared by tools/official_goldens.py and tests/test_official_goldens.py.

The official models are too large to store (ResNet-34: 85 MB, MFAVBs-CC's
vit_small with its heads: 150 MB), so a golden stores only the parameter names
and shapes of the official `state_dict` and a seed. Both sides regenerate every
tensor from (seed, name, shape) with numpy, in PyTorch's layout: the tool loads
them into the official model, the test maps them into ccjax's flax variables.

Scheme (per tensor, its own generator seeded by [seed, crc32(name)], so the
order of the state_dict does not matter):
  *.running_mean      0.1 * N(0, 1)
  *.running_var       U(0.5, 1.5)
  *.bias              0.1 * N(0, 1)
  other 1-D (norm scale) 1 + 0.1 * N(0, 1)
  every other tensor  N(0, 1) / sqrt(fan_in), fan_in = prod(shape[1:]) (Linear
                      [out, in], Conv [out, in, kh, kw]; cls_token [1, 1, E])
so activations stay of order one through 8 blocks or 34 layers.
"""

from __future__ import annotations

import zlib

import numpy as np


def golden_array(seed: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 tensor `name` of `shape`, as the scheme above draws it."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_mean":
        x = 0.1 * rng.standard_normal(shape)
    elif leaf == "running_var":
        x = rng.uniform(0.5, 1.5, shape)
    elif leaf == "bias":
        x = 0.1 * rng.standard_normal(shape)
    elif len(shape) == 1:
        x = 1.0 + 0.1 * rng.standard_normal(shape)
    else:
        x = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
    return x.astype(np.float32)


def encode_manifest(names: list[str], shapes: list[tuple[int, ...]]) -> np.ndarray:
    """['name:d0,d1,...'] as a numpy unicode array (loadable without pickle)."""
    return np.array([f"{n}:{','.join(map(str, s))}" for n, s in zip(names, shapes)])


def golden_weights(seed: int, manifest: np.ndarray) -> dict[str, np.ndarray]:
    """{torch name: float32 array} for every entry of an encoded manifest."""
    out = {}
    for entry in manifest:
        name, dims = str(entry).split(":")
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
        out[name] = golden_array(seed, name, shape)
    return out
