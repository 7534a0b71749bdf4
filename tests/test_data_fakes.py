"""Generators of fake image folders and ImageNet manual directories for the data tests (no tests here)."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zlib

import numpy as np
from PIL import Image


def rgb(seed: int, h: int, w: int) -> np.ndarray:
    """A random uint8 RGB image [h, w, 3]."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(img: Image.Image, path: str, fmt: str, **kw) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, format=fmt, **kw)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    ihdr = data.index(b"IHDR")  # chunk: length(4) type(4) data(13) crc(4)
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def odd_folder(root: str, side: int = 16) -> dict:
    """A labelled folder with every real-world oddity. Returns {relpath: expected RGB [side,side,3] or None (skipped)}.

    Expected pixels are given for lossless files stored at `side` x `side`;
    lossy / resized files map to 'ok' (usable, pixels not compared exactly).
    """
    exp: dict = {}

    def put(rel, img, fmt, expected, **kw):
        save(img, os.path.join(root, rel), fmt, **kw)
        exp[rel] = expected

    a = rgb(1, side, side)
    put("airplane/rgb.png", Image.fromarray(a), "PNG", a)
    rgba = np.concatenate([rgb(2, side, side), np.full((side, side, 1), 7, np.uint8)], axis=2)
    put("airplane/rgba.png", Image.fromarray(rgba), "PNG", rgba[:, :, :3])
    b = rgb(3, side, side)
    put("airplane/bitmap.bmp", Image.fromarray(b), "BMP", b)
    put("airplane/photo.jpg", Image.fromarray(rgb(4, 2 * side, 3 * side)), "JPEG", "ok")  # larger, lossy
    g16 = np.random.default_rng(5).integers(0, 65536, (side, side), dtype=np.uint16)
    exp16 = np.rint(g16 / 257.0).astype(np.uint8)
    put("boat/gray16.tif", Image.fromarray(g16), "TIFF", np.repeat(exp16[:, :, None], 3, 2))
    gray = np.random.default_rng(6).integers(0, 256, (side, side), dtype=np.uint8)
    put("boat/gray.tiff", Image.fromarray(gray), "TIFF", np.repeat(gray[:, :, None], 3, 2))
    put("boat/cmyk.jpg", Image.fromarray(rgb(7, side, side)).convert("CMYK"), "JPEG", "ok")
    pal = Image.fromarray(rgb(8, side, side)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal_rgb = np.asarray(pal.convert("RGB"))
    put("boat/palette.png", pal, "PNG", pal_rgb, transparency=0)
    put("boat/nested/deeper/small.png", Image.fromarray(rgb(9, side // 2, side // 2)), "PNG", "ok")  # upsized
    c = rgb(10, side, side)
    put("car/ok.png", Image.fromarray(c), "PNG", c)

    # Files that must be skipped and reported.
    full = io.BytesIO()
    Image.fromarray(rgb(11, 64, 64)).save(full, format="JPEG")
    raw = {
        "car/truncated.jpg": full.getvalue()[: len(full.getvalue()) // 2],
        "car/empty.png": b"",
        "car/notes.txt": b"not an image\n",
        "car/garbage.jpg": os.urandom(300),
        "car/bomb.png": bomb_png(),
        "README.txt": b"top-level file outside the class folders\n",
        "car/.DS_Store": b"\x00\x01hidden",  # hidden: ignored, not reported
    }
    for rel, data in raw.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel)) or root, exist_ok=True)
        with open(os.path.join(root, rel), "wb") as f:
            f.write(data)
        if not os.path.basename(rel).startswith("."):
            exp[rel] = None
    return exp


def jpeg_bytes(seed: int, h: int = 12, w: int = 16, mode: str = "RGB") -> bytes:
    img = Image.fromarray(rgb(seed, h, w))
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def imagenet_folders(root: str, wnids: list[str], per_class: int = 2) -> None:
    """`root/train/<wnid>/<wnid>_<i>.JPEG`, with a CMYK JPEG and a PNG named .JPEG (as in the real set)."""
    for k, wnid in enumerate(wnids):
        d = os.path.join(root, "train", wnid)
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            data = jpeg_bytes(100 * k + i, mode="CMYK" if (k, i) == (0, 1) else "RGB")
            if (k, i) == (1, 0):
                data = png_bytes(Image.fromarray(rgb(7, 12, 16)))
            with open(os.path.join(d, f"{wnid}_{i}.JPEG"), "wb") as f:
                f.write(data)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def imagenet_tars(root: str, wnids: list[str], per_class: int = 2, outer: bool = True) -> None:
    """Per-wnid tars (files in reverse name order), wrapped in ILSVRC2012_img_train.tar if `outer`."""
    os.makedirs(root, exist_ok=True)
    inner = {}
    for k, wnid in enumerate(wnids):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for i in reversed(range(per_class)):
                _add(t, f"{wnid}_{i}.JPEG", jpeg_bytes(100 * k + i))
        inner[wnid] = buf.getvalue()
    if outer:
        with tarfile.open(os.path.join(root, "ILSVRC2012_img_train.tar"), "w") as t:
            for wnid in reversed(wnids):  # not in label order
                _add(t, f"{wnid}.tar", inner[wnid])
    else:
        for wnid, data in inner.items():
            with open(os.path.join(root, f"{wnid}.tar"), "wb") as f:
                f.write(data)
