"""On-device augmentation: the random views of a uint8 batch, and eval preprocessing.

- params.py: `AugmentParams`, one view's settings (the one list of augmentation fields and their defaults);
- config.py: the config's `augment`/`augment2` sections and `view_augment_config` (one view's resolved fields);
- ops.py: crop and resampling, colour jitter, grayscale, blur, inversion, frames, standardisation, for one image;
- pipeline.py: `augment_batch` (one random view per image, vmapped), `preprocess_eval`, `describe`.
"""

from ccjax.augment.ops import (
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, apply_jitter, blur_matrix, fallback_crop,
    grayscale, hsv_to_rgb, interp_matrix, invert, paint_border, resample, rgb_to_hsv, sample_crop_box, sample_jitter,
    standardize,
)
from ccjax.augment.config import augment_config, augment_overrides_config, view_augment_config
from ccjax.augment.params import BRIGHTNESS, CONTRAST, HUE, SATURATION, AugmentParams, default_fields
from ccjax.augment.pipeline import CROP_UNIFORMS, JITTER_UNIFORMS, augment_batch, describe, preprocess_eval

__all__ = [
    "BRIGHTNESS", "CONTRAST", "CROP_UNIFORMS", "HUE", "JITTER_UNIFORMS", "SATURATION", "AugmentParams",
    "adjust_brightness", "adjust_contrast", "adjust_hue", "adjust_saturation", "apply_jitter", "augment_batch",
    "augment_config", "augment_overrides_config", "view_augment_config",
    "blur_matrix", "default_fields", "describe", "fallback_crop", "grayscale", "hsv_to_rgb", "interp_matrix",
    "invert", "paint_border", "preprocess_eval", "resample", "rgb_to_hsv", "sample_crop_box", "sample_jitter",
    "standardize",
]
