"""One view's augmentation settings: `AugmentParams`, read and checked from a config."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ccjax.errors import UserError

# Colour jitter operations, in torchvision's numbering.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


def _pair(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"augment.{name} must be a pair (lo, hi) of numbers, got {value!r}") from None
    if lo > hi:
        raise UserError(f"augment.{name}={value!r} has lo > hi; give it as (lo, hi)")
    return lo, hi


def _num(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserError(f"augment.{name} must be a number, got {value!r}") from None


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise UserError(f"augment.{name} must be true or false, got {value!r}")
    return bool(value)


def _floats(value: Any, name: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"augment.{name} must be a tuple of 1 or 3 numbers, got {value!r}") from None
    if len(out) not in (1, 3):
        raise UserError(f"augment.{name} must have 1 or 3 entries (one per channel), got {value!r}")
    return out


@dataclasses.dataclass(frozen=True)
class AugmentParams:
    """The static (trace-time) description of one view's pipeline; hashable.

    The field list and its defaults (CC's pipeline) are the one definition of the
    augmentation fields: ccjax.config builds `config.augment` from them.
    """

    image_size: int = 224
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    noise_std: float = 0.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    # Remedies for clusters that follow a content-free cue (docs/own_images.md, "What do the clusters follow?"):
    always_gray: bool = False  # every view AND the evaluation input in grayscale (luma, as three channels)
    invert_p: float = 0.0  # probability of inverting a view (x -> 1 - x): light-on-dark and dark-on-light alike
    border_p: float = 0.0  # probability of painting a frame of random colour over a view's edge ...
    border_width: float = 0.25  # ... 1 to round(border_width * image_size) pixels wide
    standardize: bool = False  # every view AND the evaluation input to zero mean, unit spread per image

    @classmethod
    def from_config(cls, cfg: Any) -> "AugmentParams":
        """Reads and checks the augmentation fields of `cfg` (a ConfigDict or any attribute object)."""
        if isinstance(cfg, cls):
            return cfg
        missing = [f.name for f in dataclasses.fields(cls) if not hasattr(cfg, f.name)]
        if missing:
            raise UserError(
                f"the augmentation config lacks the fields {missing}; "
                "start it from ccjax.config.augment_config()"
            )
        size = cfg.image_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise UserError(f"augment.image_size must be a positive integer, got {size!r}")
        p = cls(
            image_size=int(size),
            crop_scale=_pair(cfg.crop_scale, "crop_scale"),
            crop_ratio=_pair(cfg.crop_ratio, "crop_ratio"),
            flip_p=_num(cfg.flip_p, "flip_p"),
            jitter_p=_num(cfg.jitter_p, "jitter_p"),
            brightness=_num(cfg.brightness, "brightness"),
            contrast=_num(cfg.contrast, "contrast"),
            saturation=_num(cfg.saturation, "saturation"),
            hue=_num(cfg.hue, "hue"),
            grayscale_p=_num(cfg.grayscale_p, "grayscale_p"),
            blur_p=_num(cfg.blur_p, "blur_p"),
            blur_sigma=_pair(cfg.blur_sigma, "blur_sigma"),
            solarize_p=_num(cfg.solarize_p, "solarize_p"),
            noise_std=_num(cfg.noise_std, "noise_std"),
            mean=_floats(cfg.mean, "mean"),
            std=_floats(cfg.std, "std"),
            always_gray=_flag(cfg.always_gray, "always_gray"),
            invert_p=_num(cfg.invert_p, "invert_p"),
            border_p=_num(cfg.border_p, "border_p"),
            border_width=_num(cfg.border_width, "border_width"),
            standardize=_flag(cfg.standardize, "standardize"),
        )
        p._check()
        return p

    def _check(self) -> None:
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p", "invert_p", "border_p"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UserError(f"augment.{name}={v} is a probability: set it in [0, 1]")
        if self.crop_scale[0] <= 0:
            raise UserError(f"augment.crop_scale={self.crop_scale} must be positive area fractions")
        if self.crop_ratio[0] <= 0:
            raise UserError(f"augment.crop_ratio={self.crop_ratio} must be positive aspect ratios")
        for name in ("brightness", "contrast", "saturation", "noise_std"):
            if getattr(self, name) < 0:
                raise UserError(f"augment.{name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.hue <= 0.5:
            raise UserError(f"augment.hue={self.hue} must be in [0, 0.5] (a fraction of a full turn)")
        if self.blur_p > 0 and self.blur_sigma[0] <= 0:
            raise UserError(f"augment.blur_sigma={self.blur_sigma} must be positive")
        if min(self.std) <= 0:
            raise UserError(f"augment.std={self.std} must be positive")
        if self.border_p > 0 and not 0.0 < self.border_width <= 0.5:
            raise UserError(f"augment.border_width={self.border_width} is a fraction of the side: set it in (0, 0.5]")

    # --- what runs (trace-time decisions) ---------------------------------

    def jitter_ops(self, channels: int) -> tuple[int, ...]:
        """The colour-jitter operations that do something, in torchvision's numbering."""
        if self.jitter_p == 0:
            return ()
        strengths = (self.brightness, self.contrast, self.saturation, self.hue)
        ops = tuple(i for i, s in enumerate(strengths) if s > 0)
        return ops if channels == 3 else tuple(i for i in ops if i in (BRIGHTNESS, CONTRAST))

    def blur_kernel_size(self) -> int:
        """int(0.1 S), made odd (SimCLR / CC); 1 means no blur."""
        k = int(0.1 * self.image_size)
        return k + 1 if k % 2 == 0 else k

    def blur_on(self) -> bool:
        return self.blur_p > 0 and self.blur_kernel_size() > 1

    def border_max_width(self) -> int:
        """The widest random frame, in pixels of the view (at least 1)."""
        return max(1, int(round(self.border_width * self.image_size)))

    def channel_stats(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """mean, std as float32 [C]; one-channel images use the first entries."""

        def pick(v: tuple[float, ...]) -> np.ndarray:
            v = v[:1] if channels == 1 else (v * 3 if len(v) == 1 else v)
            return np.asarray(v, np.float32)

        return pick(self.mean), pick(self.std)


def default_fields() -> dict:
    """{field: CC's default} of every augmentation field, in declaration order."""
    return {f.name: f.default for f in dataclasses.fields(AugmentParams)}
