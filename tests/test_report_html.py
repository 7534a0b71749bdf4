"""report/index.html over an unlabelled image folder, built from hand-made report files (no training, no
browser): links to the original files, the label-free header, small and empty clusters, stale sprites."""

from __future__ import annotations

import json
import os
import pathlib
import re

import numpy as np
from PIL import Image


def folder_run(tmp_path, sizes: list[int]):
    """A workdir whose report holds an assignment of a flat folder of 12x12 RGB images: cluster c gets
    sizes[c] images, top probability falling within each cluster."""
    from ccjax.config import get_base_config
    from ccjax.report.report import write_assignments

    root = tmp_path / "my photos"  # a space: links must be encoded
    root.mkdir()
    n, k = sum(sizes), len(sizes)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 12, 12, 3), dtype=np.uint8)
    ids = [f"img {i:03d}.png" for i in range(n)]
    for i, name in enumerate(ids):
        Image.fromarray(images[i]).save(root / name)
    cluster = np.repeat(np.arange(k), sizes)
    probs = np.full((n, k), 0.02, np.float32)
    probs[np.arange(n), cluster] = 0.98 - 0.01 * (np.arange(n) % 40)
    c = get_base_config()
    c.dataset.name, c.dataset.num_clusters = f"folder:{root}", k
    workdir = tmp_path / "run"
    (workdir / "report").mkdir(parents=True)
    (workdir / "config.json").write_text(c.to_json_best_effort())
    (workdir / "run.json").write_text(json.dumps({"dataset": f"folder:{root}", "num_clusters": k}))
    (workdir / "report" / "metrics.json").write_text(json.dumps({"last": {"num_clusters": k, "entropy": 0.5}}))
    write_assignments(str(workdir / "report" / "assignments.csv"), probs, ids, None, None)
    return str(workdir), root, images, ids, cluster


def test_a_folder_runs_page_links_each_thumbnail_to_its_file(tmp_path):
    from ccjax.report.page import write_page

    workdir, root, images, ids, cluster = folder_run(tmp_path, [30, 5, 0, 12])
    stale = os.path.join(workdir, "report", "thumbs", "c7.jpg")  # a sprite from an earlier build
    os.makedirs(os.path.dirname(stale))
    open(stale, "wb").close()
    page = open(write_page(workdir, lambda idx: images[np.asarray(idx)])).read()
    assert not os.path.exists(stale)
    assert sorted(os.listdir(os.path.join(workdir, "report", "thumbs"))) == ["c0.jpg", "c1.jpg", "c3.jpg"]
    links = re.findall(r'<a href="([^"]+)"><img', page)
    assert len(links) == 16 + 5 + 12  # 8 + 8 of the large cluster, all the images of the small ones
    for link in links:
        assert link.startswith("file://") and " " not in link
        assert os.path.exists(pathlib.Path(link[len("file://"):].replace("%20", " ")))
    assert pathlib.Path(root, ids[0]).as_uri() in links  # cluster 0's most confident image
    # Sections: all four clusters, largest first, the empty one says so.
    sections = re.findall(r'data-cluster="(\d+)" data-size="(\d+)"', page)
    assert sections == [("0", "30"), ("3", "12"), ("1", "5"), ("2", "0")]
    assert "Empty: no image has its highest probability in this cluster." in page
    assert "all its images, most confident first" in page  # the clusters of at most 16 images
    # Without labels: no ACC line, the sizes and the mean top probability instead; no network reference.
    assert "against the labels" not in page and "30, 12, 5, 0 (largest first; 1 empty)" in page
    assert re.search(r"mean top probability</td><td>0\.\d{3}", page)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    # Each tile is its sprite cropped at its position: the third tile of cluster 0 is its third most confident.
    tiles = re.findall(r'<img src="thumbs/c0.jpg" width=64 height=64 style="object-position:-(\d+)px 0" alt="([^"]+)"', page)
    members = np.flatnonzero(cluster == 0)
    order = members[np.lexsort((members, -(0.98 - 0.01 * (members % 40))))]
    assert tiles[2] == ("128", ids[order[2]])
    with Image.open(os.path.join(workdir, "report", "thumbs", "c0.jpg")) as im:
        assert im.size == (16 * 64, 64)
        tile = np.asarray(im.convert("RGB"), np.int64)[:, 128:192]

    def error(i):  # mean absolute difference to image i enlarged as a tile (nearest neighbour)
        return np.abs(tile - np.asarray(Image.fromarray(images[i]).resize((64, 64), Image.Resampling.NEAREST),
                                        np.int64)).mean()

    # The same picture through JPEG (noise images: the worst case), far from any other image of the cluster.
    assert error(order[2]) < 0.4 * min(error(i) for i in members if i != order[2])
