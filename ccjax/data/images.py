"""Decoding real-world image files into uint8 RGB arrays, and PNG encoding.

Used once, when a dataset is prepared: every image is decoded, converted to
RGB and resized to the dataset's storage size, then stored PNG-encoded. Files
that cannot be used raise `ImageSkipped` with a short reason; the caller skips
and reports them, nothing crashes.

Conversions follow what the papers' reference pipelines (torchvision's
`pil_loader`: `Image.open(f).convert("RGB")`) see: grayscale is replicated to
three channels, CMYK goes through PIL's conversion, an alpha channel is
dropped, palette images are expanded, an EXIF orientation tag is applied.
16-bit and float images (some TIFFs) are scaled to 0..255 first. `load_image`
decodes images from outside a dataset (prediction, attention maps) the same way.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# PIL reads MAX_IMAGE_PIXELS at call time, so a user who raises it gets it.
_RESAMPLE = Image.Resampling.BICUBIC


class ImageSkipped(Exception):
    """A file that cannot be used as an image; the message is the reason."""


def _open(source: bytes | str) -> Image.Image:
    """Opens (headers only; bytes or a path) and refuses decompression bombs before decoding."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageSkipped("empty file")
        source = io.BytesIO(source)
    else:
        try:
            if os.path.getsize(source) == 0:
                raise ImageSkipped("empty file")
        except OSError as e:
            raise ImageSkipped(f"unreadable: {e.strerror}") from None
    try:
        # PIL raises DecompressionBombError above 2x MAX_IMAGE_PIXELS and only warns
        # between 1x and 2x; the explicit check below refuses those too. (No
        # warnings.catch_warnings here: it is not thread-safe.)
        img = Image.open(source)
    except Image.DecompressionBombError as e:
        raise ImageSkipped(f"refused: decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise ImageSkipped("not an image") from None
    except Exception as e:  # PIL raises many types on malformed headers
        raise ImageSkipped(f"unreadable header: {type(e).__name__}: {e}") from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.width * img.height > limit:
        raise ImageSkipped(
            f"refused: decompression bomb ({img.width}x{img.height} pixels > {limit})"
        )
    return img


def image_size(source: bytes | str) -> tuple[int, int]:
    """(height, width) from the header alone (bytes or a path); ImageSkipped for non-images, bombs."""
    img = _open(source)
    try:
        return img.height, img.width
    finally:
        img.close()


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB (alpha dropped, palette expanded, >8-bit scaled to 0..255)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)  # [H, W]
        if img.mode.startswith("I;16") or (img.mode == "I" and a.max(initial=0) > 255):
            a = a / 257.0  # 16-bit range -> 8-bit range
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(a[:, :, None], 3, axis=2), "RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # avoids PIL's palette-transparency warning
    return img.convert("RGB")


def decode_image(data: bytes, size: tuple[int, int] | None) -> np.ndarray:
    """Decodes an encoded image to uint8 RGB [H, W, 3], resized to `size` = (H, W) if given.

    Raises ImageSkipped (empty, not an image, truncated/corrupt, decompression bomb).
    """
    img = _open(data)
    try:
        if size is not None and img.format == "JPEG":
            # DCT-domain downscaling: decodes at the smallest scale >= the target size.
            turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientation: a 90-degree turn
            img.draft("RGB", (size[0], size[1]) if turned else (size[1], size[0]))
        img.load()
        img = ImageOps.exif_transpose(img)  # a camera's rotation tag applied, as viewers show the photo
        img = _to_rgb(img)
        if size is not None and (img.height, img.width) != tuple(size):
            img = img.resize((size[1], size[0]), _RESAMPLE)
        arr = np.asarray(img, dtype=np.uint8)
    except ImageSkipped:
        raise
    except Exception as e:  # truncated data, broken streams, unsupported modes
        raise ImageSkipped(f"corrupt or truncated: {type(e).__name__}: {e}") from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageSkipped(f"unexpected decoded shape {arr.shape}")
    return arr


def load_image(source: bytes | str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """One image file (path or bytes) in a dataset's storage format: uint8 [H, W, C], C = 1 or 3.

    The one decoder for images from outside a prepared dataset (prediction,
    attention maps): converted to RGB as preparation does (16-bit scaled, palette
    expanded, alpha dropped; see decode_image), resized to (H, W) with bicubic, then
    to grayscale (PIL's "L" weights) when C = 1. Raises ImageSkipped with the reason.
    """
    h, w, c = (int(d) for d in image_shape)
    if not isinstance(source, (bytes, bytearray)):
        try:
            with open(source, "rb") as f:
                source = f.read()
        except OSError as e:
            raise ImageSkipped(f"unreadable: {e.strerror or e}") from None
    rgb = decode_image(source, (h, w))  # [H, W, 3]
    if c == 1:
        return np.asarray(Image.fromarray(rgb).convert("L"), np.uint8)[:, :, None]
    return rgb


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [H, W, C] (C = 1 or 3) -> PNG bytes (lossless; fast compression)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected uint8 [H, W, 1|3], got {image.dtype} {image.shape}")
    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def resize_uint8(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [h, w, C] -> uint8 [H, W, C] with PIL's bicubic (antialiased) resampling."""
    if image.shape[:2] == tuple(size):
        return image
    channels = image.shape[2]
    pil = Image.fromarray(image[:, :, 0] if channels == 1 else image)
    out = np.asarray(pil.resize((size[1], size[0]), _RESAMPLE), dtype=np.uint8)
    return out.reshape(size[0], size[1], channels)
