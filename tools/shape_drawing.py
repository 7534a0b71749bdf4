"""The four shapes' geometry, shared by the generated datasets (tools/nuisance_family.py) and the
tests' fake image folders (tests/fakes.py), so that both draw the same circle, square, triangle and cross."""

from __future__ import annotations

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross")


def inside_shape(shape: str, dy: np.ndarray, dx: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask: which offsets (dy, dx) from the shape's centre fall inside `shape` of radius r."""
    if shape == "circle":
        return dy**2 + dx**2 <= r**2
    if shape == "square":
        return (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
    if shape == "triangle":
        return (dy <= r * 0.7) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if shape == "cross":
        return ((np.abs(dy) <= r * 0.25) | (np.abs(dx) <= r * 0.25)) & (np.abs(dy) <= r) & (np.abs(dx) <= r)
    raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
