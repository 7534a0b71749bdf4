"""The report page's thumbnails: per cluster one sprite of its most and least confident images.

`report/thumbs/c<k>.png` (or .jpg for colour images) holds, left to right, the cluster's PER_SIDE
most confident images (highest probability first) then its PER_SIDE least confident ones (lowest
first), each a THUMB x THUMB tile; a cluster of at most 2 x PER_SIDE images holds them all, most
confident first. The page shows each tile as an <img> of the sprite cropped by CSS, so the browser
fetches one file per cluster, and the thumbnails written are bounded by K x 2 x PER_SIDE tiles
whatever the number of images (docs/benchmarks.md, "The report page"). The where-the-model-looks
strips of ccjax/report/cam_figures.py are sprites of the same tile size (`write_cam_strip`).
"""

from __future__ import annotations

import glob
import io
import os

import numpy as np

from ccjax.run.rundir import write_atomic

THUMB = 64  # a tile's side in pixels
PER_SIDE = 8  # the most and the least confident images shown per cluster
THUMBS_DIR = "thumbs"
READ_CHUNK = 2048  # images read from the dataset at a time (bounds memory for many clusters)


def pick(cluster: np.ndarray, top_prob: np.ndarray, k: int, per_side: int = PER_SIDE) -> dict[int, dict]:
    """{cluster: {'most': indices, most confident first; 'least': indices, least confident first}} for
    every non-empty cluster; 'least' is empty when the cluster has at most 2 x per_side images."""
    cluster, top_prob = np.asarray(cluster), np.asarray(top_prob)
    order = np.lexsort((np.arange(len(cluster)), -top_prob, cluster))  # by cluster, then confidence (desc)
    bounds = np.searchsorted(cluster[order], np.arange(k + 1))
    out = {}
    for c in range(k):
        members = order[bounds[c]:bounds[c + 1]]
        if not len(members):
            continue
        if len(members) <= 2 * per_side:
            out[c] = {"most": members, "least": members[:0]}
        else:
            out[c] = {"most": members[:per_side], "least": members[::-1][:per_side]}
    return out


def tile(image: np.ndarray, side: int = THUMB) -> np.ndarray:
    """A uint8 image [H, W, C] as a side x side tile [side, side, C]: nearest-neighbour when enlarging
    (pixels stay sharp), an area filter when shrinking."""
    from PIL import Image

    if image.shape[:2] == (side, side):
        return image
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    smaller = max(image.shape[:2]) > side
    out = np.asarray(pil.resize((side, side), Image.Resampling.BOX if smaller else Image.Resampling.NEAREST))
    return out[..., None] if out.ndim == 2 else out


def sprite_bytes(tiles: list[np.ndarray]) -> tuple[bytes, str]:
    """(the encoded sprite of `tiles` side by side, its extension): PNG for grayscale, JPEG for colour."""
    from PIL import Image

    strip = np.concatenate(tiles, axis=1)
    buf = io.BytesIO()
    if strip.shape[-1] == 1:
        Image.fromarray(strip[..., 0]).save(buf, format="PNG", optimize=True)
        return buf.getvalue(), "png"
    Image.fromarray(strip[..., :3]).save(buf, format="JPEG", quality=85)
    return buf.getvalue(), "jpg"


def write_sprite(path_without_ext: str, tiles: list[np.ndarray]) -> str:
    """Writes the sprite atomically; returns its file name."""
    data, ext = sprite_bytes(tiles)
    path = f"{path_without_ext}.{ext}"
    write_atomic(path, lambda f: f.write(data))
    return os.path.basename(path)


def write_thumbnails(report_dir: str, read_images, picks: dict[int, dict]) -> dict[int, str]:
    """Writes thumbs/c<k>.* for every picked cluster; `read_images(sorted indices)` -> uint8 [n, H, W, C].
    Returns {cluster: the sprite's path relative to report_dir}. Sprites of clusters not picked now
    (left by an earlier build) are removed."""
    folder = os.path.join(report_dir, THUMBS_DIR)  # write_atomic creates it
    clusters = sorted(picks)
    written = {}
    start = 0
    while start < len(clusters):  # a chunk of clusters whose images fit READ_CHUNK (at least one cluster)
        chunk, count = [], 0
        while start < len(clusters) and (not chunk or count + _count(picks[clusters[start]]) <= READ_CHUNK):
            chunk.append(clusters[start])
            count += _count(picks[clusters[start]])
            start += 1
        idx = np.unique(np.concatenate([np.concatenate([picks[c]["most"], picks[c]["least"]]) for c in chunk]))
        by_index = dict(zip(idx.tolist(), read_images(idx)))
        for c in chunk:
            members = np.concatenate([picks[c]["most"], picks[c]["least"]]).tolist()
            name = write_sprite(os.path.join(folder, f"c{c}"), [tile(by_index[i]) for i in members])
            written[c] = f"{THUMBS_DIR}/{name}"
    keep = {os.path.basename(p) for p in written.values()}
    for stale in glob.glob(os.path.join(folder, "c[0-9]*.*")):
        if os.path.basename(stale) not in keep:
            os.remove(stale)
    return written


def _count(p: dict) -> int:
    return len(p["most"]) + len(p["least"])


def heat_overlay(view: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """A view [S, S, C] in [0, 1] under a heat map [S, S] in [0, 1] (jet, red = high), as uint8 RGB:
    what ccjax/report/cam_figures.py's grid draws with matplotlib, as pixels."""
    from matplotlib import colormaps

    rgb = np.repeat(view[..., :1], 3, -1) if view.shape[-1] == 1 else view[..., :3]
    hot = colormaps["jet"](np.clip(heat, 0.0, 1.0))[..., :3]
    return np.clip(255 * ((1 - alpha) * rgb + alpha * hot) + 0.5, 0, 255).astype(np.uint8)


def write_cam_strip(report_dir: str, cluster: int, views: np.ndarray, maps: np.ndarray) -> str:
    """thumbs/cam_c<k>.*: the maps over their views, as tiles; returns its path relative to report_dir."""
    tiles = [tile(heat_overlay(v, m)) for v, m in zip(views, maps)]
    name = write_sprite(os.path.join(report_dir, THUMBS_DIR, f"cam_c{cluster}"), tiles)
    return f"{THUMBS_DIR}/{name}"


CAMS_INDEX = "cams.json"


def write_cam_strips(report_dir: str, picks: list[tuple[int, np.ndarray]], explained) -> None:
    """Per cluster of `picks` [(cluster, example indices)], its strip of `explained` (ccjax/explain/cam.py's
    Explained, in the picks' order), and report/cams.json: {'kind', 'where', 'clusters': {cluster:
    {'indices', 'probs', 'strip'}}}, what the page puts beside each cluster's images."""
    from ccjax.run.rundir import write_json_atomic

    clusters, pos = {}, 0
    for c, members in picks:
        n = len(members)
        strip = write_cam_strip(report_dir, c, explained.views[pos:pos + n], explained.maps[pos:pos + n])
        clusters[str(c)] = {"indices": [int(i) for i in members],
                            "probs": [float(p) for p in explained.prob[pos:pos + n]], "strip": strip}
        pos += n
    write_json_atomic(os.path.join(report_dir, CAMS_INDEX),
                      {"kind": explained.kind, "where": explained.where, "clusters": clusters})
