"""The catalog: every dataset ccjax knows by name, what it is and where it comes from.

Three families:
- TFDS catalog datasets (cifar10, cifar100_20, stl10, uc_merced, imagenet1k):
  TFDS's own builders (`TFDS_CATALOG`), prepared once as array_record by
  `python -m ccjax prepare` (downloads; TFDS's builders for these need
  TensorFlow to prepare).
- Local sources (`LOCAL_CATALOG`), built by ccjax's `CcjaxImages` builder:
  ImageNet-10, ImageNet-Dogs and SCAN's subsets from a manual ImageNet
  download, rsod / siri_whu / aid from the user's extracted folder, and
  `folder:<path>` for any image folder.
- `digits`, the embedded default: prepared automatically on first use.

Preparing a dataset is ccjax.data.preparation; opening it (in host memory or
streamed) is ccjax.data.opening; see docs/datasets.md.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shlex

from ccjax.data import builder as builder_lib
from ccjax.data import imagenet
from ccjax.errors import UserError

FOLDER_PREFIX = "folder:"
INSTALL_TF = "pip install 'ccjax[tensorflow]'"


@dataclasses.dataclass(frozen=True)
class TfdsEntry:
    """A dataset of the TFDS catalog."""

    tfds_name: str
    splits: tuple[str, ...]  # concatenated in this order
    label_key: str
    id_key: str | None
    num_classes: int
    num_examples: int
    shape: tuple[int, int, int] | None  # None: images of varying size
    default_size: int  # storage side when shape is None and image_size = 0
    download: str  # what `prepare` downloads


@dataclasses.dataclass(frozen=True)
class LocalEntry:
    """A dataset ccjax builds from files the user downloads themselves."""

    kind: str  # "folder" (class sub-folders) | "imagenet"
    num_classes: int
    num_examples: int  # as published
    native_shape: tuple[int, int, int] | None  # None: varying sizes
    download: str  # what to download and where from


TFDS_CATALOG = {
    "cifar10": TfdsEntry("cifar10", ("train", "test"), "label", "id", 10, 60000, (32, 32, 3), 0,
                         "CIFAR-10 (163 MB, www.cs.toronto.edu)"),
    "cifar100_20": TfdsEntry("cifar100", ("train", "test"), "coarse_label", "id", 20, 60000, (32, 32, 3), 0,
                             "CIFAR-100 (161 MB, www.cs.toronto.edu)"),
    "stl10": TfdsEntry("stl10", ("train", "test"), "label", None, 10, 13000, (96, 96, 3), 0,
                       "STL-10 (2.6 GB, ai.stanford.edu)"),
    "uc_merced": TfdsEntry("uc_merced", ("train",), "label", "filename", 21, 2100, None, 256,
                           "UC Merced Land Use (317 MB, weegee.vision.ucmerced.edu)"),
    # TFDS's imagenet2012 from a manual download (ILSVRC2012_img_train.tar and _val.tar in
    # <data_dir>/downloads/manual): the 1,281,167 train images, decoded and resized to image_size
    # (224 by default) as they are read; far beyond host memory, so `in_memory=auto` streams it.
    "imagenet1k": TfdsEntry("imagenet2012", ("train",), "label", "file_name", 1000, 1281167, None, 224,
                            f"ImageNet-2012 (ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar, 147 GB, "
                            f"a manual download from {imagenet.DOWNLOAD_URL} into <data_dir>/downloads/manual)"),
}
STL10_UNLABELLED = ("unlabelled", 100000)

LOCAL_CATALOG = {
    "imagenet10": LocalEntry("imagenet", 10, 13000, None, f"the ImageNet-2012 train set ({imagenet.DOWNLOAD_URL})"),
    "imagenet_dogs": LocalEntry("imagenet", 15, 19500, None, f"the ImageNet-2012 train set ({imagenet.DOWNLOAD_URL})"),
    # SCAN's subsets: every train image of 50/100/200 classes (about 1,300 each; the sizes here
    # are that estimate, used only to size synthetic benchmarks before preparation).
    **{name: LocalEntry("imagenet", k, 1300 * k, None,
                        f"the ImageNet-2012 train set ({imagenet.DOWNLOAD_URL}) and SCAN's class list "
                        f"{imagenet.scan_list_file(name)}")
       for name, k in imagenet.SCAN_SUBSETS.items()},
    "rsod": LocalEntry("folder", 4, 976, None, "RSOD (https://github.com/RSIA-LIESMARS-WHU/RSOD-Dataset-)"),
    "siri_whu": LocalEntry("folder", 12, 2400, (200, 200, 3),
                           "SIRI-WHU (the 12-class Google image set of Wuhan University's RS-IDEA group)"),
    "aid": LocalEntry("folder", 30, 10000, (600, 600, 3), "AID (https://captain-whu.github.io/AID/)"),
}


def dataset_names() -> list[str]:
    """Every valid dataset name (plus `folder:<path>`)."""
    return ["digits", *TFDS_CATALOG, *LOCAL_CATALOG]


# The `dataset.*` fields the data modules read, and their defaults: the one copy of them, which
# ccjax/config.py's base config takes; a dataset config given as a dict or an object without a field
# (tests, tools) reads the default here.
DATASET_DEFAULTS = {
    "name": "digits", "data_dir": None, "manual_dir": None, "image_size": 0, "use_unlabeled": False,
    "num_clusters": -1, "in_memory": "auto", "memory_share": 0.5, "stream_workers": -1, "stream_buffer": 2,
}


def cfg_field(cfg, field: str):
    """`cfg.field` of a ConfigDict, an object or a dict; DATASET_DEFAULTS[field] when absent or None."""
    default = DATASET_DEFAULTS[field]
    value = getattr(cfg, field, default) if not isinstance(cfg, dict) else cfg.get(field, default)
    return default if value is None else value


DIGITS_DATA_DIR = "~/.cache/ccjax/datasets"  # the embedded digits are ccjax's own data, not a TFDS download


def resolve_data_dir(cfg) -> str:
    """The TFDS data_dir: the config's, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (for the
    embedded digits, which need no download, ccjax's own cache DIGITS_DATA_DIR)."""
    default = DIGITS_DATA_DIR if cfg_field(cfg, "name") == "digits" else "~/tensorflow_datasets"
    d = cfg_field(cfg, "data_dir") or os.environ.get("TFDS_DATA_DIR") or default
    return os.path.abspath(os.path.expanduser(d))


def manual_download_dir(cfg, data_dir: str, name: str) -> str | None:
    """The manual download folder: the config's, else under TFDS's default `<data_dir>/downloads/manual`.

    ImageNet subsets look in `downloads/manual` itself (where TFDS's imagenet2012
    expects ILSVRC2012_img_train.tar); folder datasets in `downloads/manual/<name>`.
    """
    given = cfg_field(cfg, "manual_dir")
    if given:
        return os.path.abspath(os.path.expanduser(given))
    default = os.path.join(data_dir, "downloads", "manual")
    if LOCAL_CATALOG[name].kind == "folder":
        default = os.path.join(default, name)
    return default if os.path.isdir(default) else None


def check_name(name: str) -> None:
    """UserError unless `name` is a catalog name or `folder:<path>`."""
    if name.startswith(FOLDER_PREFIX) or name in dataset_names():
        if name == FOLDER_PREFIX:
            raise UserError("folder: needs a path, e.g. --config.dataset.name=folder:/data/my_images")
        return
    raise UserError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}, folder:<path>")


def prepare_cmd(name: str, data_dir: str, extra: str = "", image_size: int = 0) -> str:
    """The `python -m ccjax prepare` command line that prepares `name` (at `image_size`, 0: native) in
    `data_dir`, ready to paste into a shell."""
    size = f" --image_size={image_size}" if image_size else ""
    return (f"python -m ccjax prepare {shlex.quote(f'--dataset={name}')} "
            f"{shlex.quote(f'--data_dir={data_dir}')}{extra}{size}")


def local_config_name(name: str, cfg) -> str:
    """The config name a local-source dataset is prepared under, computed without scanning."""
    size = int(cfg_field(cfg, "image_size"))
    if name.startswith(FOLDER_PREFIX):
        return builder_lib.config_name(name, size, name[len(FOLDER_PREFIX):])
    if LOCAL_CATALOG[name].kind == "imagenet":
        size = size or imagenet.DEFAULT_SIZE
    return builder_lib.config_name(name, size)


def not_prepared(name: str, cfg, data_dir: str) -> UserError:
    """The one-line error for a local-source dataset that is not prepared, naming the command."""
    pattern = os.path.join(data_dir, builder_lib.TFDS_NAME, f"{name}_*", builder_lib.VERSION, "dataset_info.json")
    other = sorted(os.path.basename(os.path.dirname(os.path.dirname(p))) for p in glob.glob(pattern))
    size = int(cfg_field(cfg, "image_size"))
    entry = LOCAL_CATALOG[name]
    where = "<folder with ILSVRC2012_img_train.tar or its <wnid> folders>" if entry.kind == "imagenet" \
        else "<extracted folder>"
    hint = f"; prepared at other sizes: {', '.join(other)}" if other else ""
    return UserError(f"{name} is not prepared in {data_dir}: download and extract {entry.download}, then run "
                     f"`{prepare_cmd(name, data_dir, f' --manual_dir={where}', size)}`{hint}")


def folder_not_prepared(name: str, cfg, data_dir: str) -> UserError:
    """The one-line error for an image folder not prepared at the config's size: the command that
    prepares it at that size, and the sizes it is prepared at."""
    size = int(cfg_field(cfg, "image_size"))
    stem = builder_lib.config_name(name, size, name[len(FOLDER_PREFIX):]).rsplit("_", 1)[0]
    found = glob.glob(os.path.join(data_dir, builder_lib.TFDS_NAME, f"{glob.escape(stem)}_*", builder_lib.VERSION,
                                   "dataset_info.json"))
    other = sorted(os.path.basename(os.path.dirname(os.path.dirname(p))).rsplit("_", 1)[1] for p in found)
    sizes = [o if o == "native" else f"image_size={o[1:]}" for o in other]  # tags: native, s96, ...
    hint = f" (it is prepared at: {', '.join(sizes)})" if sizes else ""
    at = f"at image_size={size}" if size else "at its native size"
    return UserError(f"{name} is not prepared {at} in {data_dir}{hint}: run "
                     f"`{prepare_cmd(name, data_dir, image_size=size)}` first")


def dataset_spec(dataset_cfg) -> dict:
    """image_shape, num_classes and num_examples of a dataset, without reading its images.

    From the prepared dataset's metadata when there is one, else from the
    catalog (published sizes). Used to size synthetic benchmarks.
    """
    name = cfg_field(dataset_cfg, "name")
    check_name(name)
    data_dir = resolve_data_dir(dataset_cfg)
    size = int(cfg_field(dataset_cfg, "image_size"))
    if name == "digits":
        side = size or 8
        return dict(image_shape=(side, side, 1), num_classes=10, num_examples=1797)
    if name in TFDS_CATALOG:
        e = TFDS_CATALOG[name]
        n = e.num_examples
        if name == "stl10" and cfg_field(dataset_cfg, "use_unlabeled"):
            n += STL10_UNLABELLED[1]
        side = size or (e.default_size if e.shape is None else 0)
        shape = (side, side, 3) if side else e.shape
        return dict(image_shape=shape, num_classes=e.num_classes, num_examples=n)
    cname = local_config_name(name, dataset_cfg)
    if builder_lib.is_prepared(data_dir, cname):
        s = builder_lib.read_summary(data_dir, cname)
        classes = s["class_names"]
        return dict(image_shape=tuple(s["image_shape"]), num_classes=None if classes is None else len(classes),
                    num_examples=s["num_examples"])
    if name.startswith(FOLDER_PREFIX):
        raise folder_not_prepared(name, dataset_cfg, data_dir)
    e = LOCAL_CATALOG[name]
    if e.kind == "imagenet":
        size = size or imagenet.DEFAULT_SIZE
    shape = (size, size, 3) if size else e.native_shape
    if shape is None:
        raise not_prepared(name, dataset_cfg, data_dir)
    return dict(image_shape=shape, num_classes=e.num_classes, num_examples=e.num_examples)

