"""The TFDS builder behind every dataset ccjax prepares from local files (folders, ImageNet).

`CcjaxImages` is a `tfds.core.ShardBasedBuilder` driven by a `Plan`: the
examples to read, their labels, the class names and the storage size, all
worked out before the builder runs. Each image is decoded, converted to RGB,
resized to the storage size and written PNG-encoded into array_record files
(no TensorFlow needed). Files that cannot be used are skipped; their list is
written to `skipped_files.tsv`, and a summary to `ccjax_prepare.json`, in the
prepared dataset's folder.

TFDS writes everything into `<version>.incomplete*` and renames it to
`<data_dir>/ccjax_images/<config>/1.0.0` only when the whole dataset and its
metadata are written, so an interrupted preparation leaves nothing that counts
as prepared. Shuffling is disabled: example i is the i-th file in plan order.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import os
import re
from typing import Callable, Iterator

import tensorflow_datasets as tfds
from absl import logging as absl_logging
from etils import epath
from tensorflow_datasets.core.utils import tqdm_utils
from tqdm import tqdm

from ccjax.data.images import ImageSkipped, decode_image, encode_png
from ccjax.errors import UserError

TFDS_NAME = "ccjax_images"
VERSION = "1.0.0"
REPORT_FILE = "skipped_files.tsv"
SUMMARY_FILE = "ccjax_prepare.json"
_CHUNK = 256  # images decoded concurrently
SHARD_BYTES = 256 << 20  # decoded images per array_record shard: the most a preparation holds


@dataclasses.dataclass
class Plan:
    """Everything one preparation reads and writes, decided before the builder runs."""

    config_name: str  # the TFDS config: <data_dir>/ccjax_images/<config_name>/1.0.0
    description: str
    source: str  # the folder it reads (for the summary)
    class_names: list[str] | None  # None: unlabelled
    size: tuple[int, int]  # (H, W) storage size
    total: int  # candidate files (progress bar)
    examples: Callable[[], Iterator[tuple[str, int, bytes | str]]]  # (example id, label, bytes or path)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # found while scanning


def config_name(dataset: str, image_size: int, source: str | None = None) -> str:
    """The TFDS config name of a prepared dataset: name, size, and for `folder:` a path hash."""
    tag = f"s{image_size}" if image_size > 0 else "native"
    if source is None:
        return f"{dataset}_{tag}"
    real = os.path.realpath(os.path.expanduser(source))
    slug = re.sub(r"[^a-z0-9]+", "_", os.path.basename(real.rstrip("/")).lower()).strip("_")[:32]
    digest = hashlib.sha1(real.encode()).hexdigest()[:8]
    return f"folder_{slug or 'root'}_{digest}_{tag}"


def prepared_path(data_dir: str, name: str) -> epath.Path:
    """Where the dataset of config `name` lives once prepared."""
    return epath.Path(data_dir) / TFDS_NAME / name / VERSION


def is_prepared(data_dir: str, name: str) -> bool:
    """True only for a finished preparation (TFDS renames the folder into place at the end)."""
    return (prepared_path(data_dir, name) / "dataset_info.json").exists()


def _load(item: tuple[str, int, bytes | str], size: tuple[int, int]):
    ex_id, label, data = item
    try:
        if isinstance(data, str):
            try:
                with open(data, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise ImageSkipped(f"unreadable: {e.strerror}") from None
        return ex_id, label, encode_png(decode_image(data, size)), None
    except ImageSkipped as e:
        return ex_id, label, None, str(e)


def images_per_shard(size: tuple[int, int]) -> int:
    """How many images one shard holds: at most SHARD_BYTES of them decoded (RGB), at least 64."""
    return max(64, SHARD_BYTES // (size[0] * size[1] * 3))


class CcjaxImages(tfds.core.ShardBasedBuilder):
    """Images from a local folder or archive, converted to RGB at one storage size.

    Written shard by shard (TFDS's ShardBasedBuilder): each shard's images are
    decoded, encoded and written before the next shard is read, so preparing a
    folder of any size holds at most one shard (`SHARD_BYTES` of decoded
    images) in memory, and needs no TensorFlow (TFDS's shuffling writer spills
    to disk through tf.io past 1 GB).
    """

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {"1.0.0": "RGB PNG images at one storage size, optional class labels."}

    def __init__(self, *, plan: Plan, **kwargs):
        self._plan = plan
        config = tfds.core.BuilderConfig(name=plan.config_name, description=plan.description)
        super().__init__(config=config, **kwargs)

    # TFDS's "Downloading and preparing dataset Unknown size ..." banners: nothing is downloaded here.
    def _log_download_bytes(self) -> None:
        pass

    def _log_download_done(self) -> None:
        print(f"ccjax: prepared {self._plan.config_name} (once) in {self.data_dir}", flush=True)

    def _info(self) -> tfds.core.DatasetInfo:
        h, w = self._plan.size
        features = {
            "image": tfds.features.Image(shape=(h, w, 3), encoding_format="png"),
            "file": tfds.features.Text(),
        }
        if self._plan.class_names is not None:
            features["label"] = tfds.features.ClassLabel(names=self._plan.class_names)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            disable_shuffling=True,
        )

    def _shard_iterators_per_split(self, dl_manager):
        del dl_manager  # local files only
        return {"train": _Shards(self._plan, lambda: epath.Path(self.data_dir)).generators()}


class _Shards:
    """The shard generators of one preparation, reading the plan's examples in order.

    TFDS runs the generators one after another, in order (no Beam), so they share
    one iterator over the plan: shard k takes the next `per_shard` candidate files
    (an ImageNet tar can only be read in order), and the last one takes the rest.
    Files that cannot be used are left out, so example i is the i-th usable file
    in plan order. The last shard writes the skip report and the summary.
    """

    def __init__(self, plan: Plan, out_dir: Callable[[], epath.Path]):
        self.plan = plan
        self.out_dir = out_dir  # the incomplete folder, renamed into place at the end
        self.per_shard = images_per_shard(plan.size)
        self.num_shards = max(1, -(-plan.total // self.per_shard))
        self.skipped = list(plan.skipped)
        self.written = 0
        self._items: Iterator | None = None
        self._bar = None

    def generators(self) -> list[Callable[[], Iterator]]:
        return [functools.partial(self._shard, k) for k in range(self.num_shards)]

    def _shard(self, k: int) -> Iterator:
        plan = self.plan
        if self._items is None:
            self._items = iter(plan.examples())
            self._bar = tqdm(total=plan.total, desc=f"preparing {plan.config_name}", unit="img")
        last = k == self.num_shards - 1
        take = self._items if last else itertools.islice(self._items, self.per_shard)
        workers = max(1, min(8, os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            while chunk := list(itertools.islice(take, _CHUNK)):
                for ex_id, label, png, reason in pool.map(lambda it: _load(it, plan.size), chunk):
                    self._bar.update(1)
                    if png is None:
                        self.skipped.append((ex_id, reason))
                        continue
                    example = {"image": png, "file": ex_id}
                    if plan.class_names is not None:
                        example["label"] = label
                    self.written += 1
                    yield ex_id, example
        if last:
            self._finish()

    def _finish(self) -> None:
        self._bar.close()
        plan = self.plan
        if self.written == 0:
            raise UserError(f"no usable images in {plan.source} ({len(self.skipped)} files skipped)")
        out = self.out_dir()
        lines = ["file\treason"] + [f"{f}\t{r}" for f, r in self.skipped]
        (out / REPORT_FILE).write_text("\n".join(lines) + "\n")
        summary = dict(
            config=plan.config_name, source=plan.source, image_shape=[*plan.size, 3],
            num_examples=self.written, num_skipped=len(self.skipped), class_names=plan.class_names,
        )
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")


def build(plan: Plan, data_dir: str, overwrite: bool = False) -> epath.Path:
    """Prepares `plan` into `data_dir` (a no-op when already prepared, unless `overwrite`)."""
    with quiet_tfds():
        builder = CcjaxImages(plan=plan, data_dir=data_dir, file_format="array_record")
    mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    config = tfds.download.DownloadConfig(download_mode=mode)
    with quiet_tfds():  # our own progress bar counts the images
        builder.download_and_prepare(download_config=config)
    return prepared_path(data_dir, plan.config_name)


@contextlib.contextmanager
def quiet_tfds():
    """Hides TFDS's own progress bars and its info/warning logging for the duration."""
    bars, level = tqdm_utils._active, absl_logging.get_verbosity()  # noqa: SLF001
    tfds.display_progress_bar(False)
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        tfds.display_progress_bar(bars)
        absl_logging.set_verbosity(level)


def read_summary(data_dir: str, name: str) -> dict:
    """The `ccjax_prepare.json` of a prepared dataset."""
    return json.loads((prepared_path(data_dir, name) / SUMMARY_FILE).read_text())
