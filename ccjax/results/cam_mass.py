"""Where a model looks, as one number (GeCC's Fig. 1 turned into a figure): the share of the Grad-CAM mass
that falls inside the object's mask, beside the share of the image the object covers.

For image i with Grad-CAM map g_i >= 0 (ccjax/explain/cam.py: the predicted cluster's probability at the
backbone's last convolutional stage, upsampled bilinearly to the model's input view S x S) and object
coverage m_i in [0, 1] (the generator's mask, resampled to S x S as the image is):

    inside_i = sum_p g_i(p) m_i(p) / sum_p g_i(p),      area_i = mean_p m_i(p)

A model that looks only at the object has inside = 1; one that looks only at the background has inside = 0;
one that looks everywhere alike has inside = area. The summary is the mean over the images whose map is
not all zero (their count is kept), and `ratio` = mean inside / mean area (1: no preference for the object).
"""

from __future__ import annotations

import numpy as np

from ccjax.explain.cam import explain_images, local_copy


def mass_inside(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inside [n], area [n]) of maps [n, S, S] >= 0 and masks [n, S, S] in [0, 1]; inside is NaN for an
    all-zero map (no mass to place)."""
    maps = np.asarray(maps, np.float64)
    masks = np.asarray(masks, np.float64)
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} differ")
    if (maps < 0).any():
        raise ValueError("Grad-CAM maps are ReLU'd: a negative value means the wrong array was passed")
    total = maps.sum(axis=(1, 2))
    inside = np.where(total > 0, (maps * masks).sum(axis=(1, 2)) / np.where(total > 0, total, 1.0), np.nan)
    return inside, masks.mean(axis=(1, 2))


def summarise(inside: np.ndarray, area: np.ndarray) -> dict:
    """{'inside', 'area', 'ratio', 'images', 'empty_maps'}: means over the images with a non-zero map."""
    ok = ~np.isnan(inside)
    if not ok.any():
        return {"inside": None, "area": float(area.mean()), "ratio": None, "images": 0, "empty_maps": int(len(inside))}
    m_in, m_area = float(inside[ok].mean()), float(area[ok].mean())
    return {"inside": m_in, "area": m_area, "ratio": m_in / m_area if m_area > 0 else None, "images": int(ok.sum()),
            "empty_maps": int((~ok).sum())}


def resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """masks [n, H, W] -> float32 [n, size, size] with the resampler evaluation resizes images with
    (ccjax.augment.preprocess_eval: bilinear, antialiased when shrinking)."""
    import jax
    import jax.numpy as jnp

    from ccjax.augment.ops import interp_matrix, resample

    _, h, w = masks.shape
    wy, wx = interp_matrix(0, h, h, size), interp_matrix(0, w, w, size)
    out = jax.vmap(lambda m: resample(m[..., None], wy, wx)[..., 0])(jnp.asarray(masks, jnp.float32))
    return np.clip(np.asarray(out), 0.0, 1.0)


def cam_mass_of_model(module, variables: dict, config, images: np.ndarray, masks: np.ndarray) -> dict:
    """The summary (see `summarise`) of a model over uint8 images [n, H, W, C] with object masks [n, H, W]."""
    ex = explain_images(module, local_copy(variables), config, images)
    if ex.kind != "Grad-CAM":
        raise ValueError(f"CAM mass needs a convolutional backbone (Grad-CAM), this run gives {ex.kind} maps")
    inside, area = mass_inside(ex.maps, resize_masks(masks, ex.maps.shape[-1]))
    return {**summarise(inside, area), "where": ex.where}


def cam_mass_of_run(workdir: str, images: np.ndarray, masks: np.ndarray) -> dict:
    """`cam_mass_of_model` of the last checkpoint of the run in `workdir`."""
    from ccjax.run.load import load_trained

    trained = load_trained(workdir)
    restored = trained.restore_latest()
    return {**cam_mass_of_model(trained.module, restored.variables, trained.config, images, masks),
            "step": restored.step}
