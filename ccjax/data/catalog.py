"""Datasets by name: what each one is, how it is prepared, and opening it (in memory or streamed).

Three families:
- TFDS catalog datasets (cifar10, cifar100_20, stl10, uc_merced): TFDS's own
  builders, prepared once as array_record by `python -m ccjax.prepare`
  (downloads; TFDS's builders for these need TensorFlow to prepare).
- Local sources, built by ccjax's `CcjaxImages` builder: ImageNet-10 and
  ImageNet-Dogs from a manual ImageNet download, rsod / siri_whu / aid from
  the user's extracted folder, and `folder:<path>` for any image folder.
- `digits`, the embedded default: prepared automatically on first use.

Every one is read through TFDS `data_source` (no TensorFlow), either decoded
once into host memory (`ImageDataset`) or decoded batch by batch as training
reads it (`StreamingDataset`), by `dataset.in_memory`; see docs/datasets.md.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import sys

import tensorflow_datasets as tfds

from ccjax.data import builder as builder_lib
from ccjax.data import folder as folder_lib
from ccjax.data import imagenet
from ccjax.data.dataset import ImageDataset, Sources, load_sources
from ccjax.data.masking import with_mask_noise
from ccjax.data.streaming import StreamingDataset
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


def _cfg(cfg, field: str, default=None):
    value = getattr(cfg, field, default) if not isinstance(cfg, dict) else cfg.get(field, default)
    return default if value is None else value


def resolve_data_dir(cfg) -> str:
    """The TFDS data_dir: the config's, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    d = _cfg(cfg, "data_dir") or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return os.path.abspath(os.path.expanduser(d))


def _manual_dir(cfg, data_dir: str, name: str) -> str | None:
    """The manual download folder: the config's, else under TFDS's default `<data_dir>/downloads/manual`.

    ImageNet subsets look in `downloads/manual` itself (where TFDS's imagenet2012
    expects ILSVRC2012_img_train.tar); folder datasets in `downloads/manual/<name>`.
    """
    given = _cfg(cfg, "manual_dir")
    if given:
        return os.path.abspath(os.path.expanduser(given))
    default = os.path.join(data_dir, "downloads", "manual")
    if LOCAL_CATALOG[name].kind == "folder":
        default = os.path.join(default, name)
    return default if os.path.isdir(default) else None


def _check_name(name: str) -> None:
    if name.startswith(FOLDER_PREFIX) or name in dataset_names():
        if name == FOLDER_PREFIX:
            raise UserError("folder: needs a path, e.g. --config.dataset.name=folder:/data/my_images")
        return
    raise UserError(f"unknown dataset {name!r}; valid names: {', '.join(dataset_names())}, folder:<path>")


def _prepare_cmd(name: str, data_dir: str, extra: str = "") -> str:
    return f"python -m ccjax.prepare --dataset={name} --data_dir={data_dir}{extra}"


# ----------------------------------------------------------------------------- preparation


def _local_plan(name: str, cfg, data_dir: str) -> builder_lib.Plan:
    """The Plan of a local-source dataset (validates the user's folder; UserError if unusable)."""
    size = int(_cfg(cfg, "image_size", 0))
    if name.startswith(FOLDER_PREFIX):
        return folder_lib.folder_plan(name, name[len(FOLDER_PREFIX):], size, named=False)
    entry = LOCAL_CATALOG[name]
    manual_dir = _manual_dir(cfg, data_dir, name)
    if entry.kind == "imagenet":
        return imagenet.imagenet_plan(name, manual_dir, size)
    if not manual_dir or not os.path.isdir(manual_dir):
        where = f"{manual_dir} does not exist" if manual_dir else "no manual_dir given"
        raise UserError(
            f"{name} needs {entry.download}, downloaded and extracted ({where}); run "
            f"`{_prepare_cmd(name, data_dir, ' --manual_dir=<extracted folder>')}`"
        )
    return folder_lib.folder_plan(name, manual_dir, size, named=True, expected_classes=entry.num_classes)


def _build_local(plan: builder_lib.Plan, data_dir: str, overwrite: bool = False) -> None:
    """Prepares `plan`; tolerates another process finishing the same preparation first."""
    try:
        builder_lib.build(plan, data_dir, overwrite=overwrite)
    except OSError:
        if not builder_lib.is_prepared(data_dir, plan.config_name):
            raise
    if not builder_lib.is_prepared(data_dir, plan.config_name):  # e.g. under tfds.testing.mock_data
        raise RuntimeError(f"preparing {plan.config_name} wrote nothing to {data_dir} "
                           "(folder datasets cannot be prepared inside tfds.testing.mock_data)")


def _prepare_digits(data_dir: str) -> bool:
    """Prepares digits unless prepared; True when this call prepared it."""
    from ccjax.data.digits import CcjaxDigits

    with builder_lib.quiet_tfds():
        b = CcjaxDigits(data_dir=data_dir, file_format="array_record")
        if b.is_prepared():
            return False
        try:
            b.download_and_prepare()
        except OSError:  # another process renamed its copy into place first
            if not CcjaxDigits(data_dir=data_dir).is_prepared():
                raise
    return True


def _prepare_tfds(name: str, cfg, data_dir: str, overwrite: bool) -> str:
    entry = TFDS_CATALOG[name]
    b = tfds.builder(entry.tfds_name, data_dir=data_dir, file_format="array_record")
    if b.is_prepared() and not overwrite:
        return f"{name}: already prepared in {b.data_dir}"
    if importlib.util.find_spec("tensorflow") is None:  # TFDS's builders for these read with tf.io
        raise UserError(f"TFDS needs TensorFlow to prepare {name} (training does not): {INSTALL_TF}, "
                        f"then run `{_prepare_cmd(name, data_dir)}`")
    mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    config = tfds.download.DownloadConfig(manual_dir=_cfg(cfg, "manual_dir"), download_mode=mode)
    try:
        b.download_and_prepare(download_config=config, file_format="array_record")
    except ImportError as e:
        if "tensorflow" in str(e).lower():
            raise UserError(f"TFDS needs TensorFlow to prepare {name}: {INSTALL_TF}, then re-run "
                            f"`{_prepare_cmd(name, data_dir)}`") from None
        raise
    except AssertionError as e:  # TFDS's words for a missing manual download (imagenet2012)
        if "manual" not in str(e).lower():
            raise
        raise UserError(f"{name} needs {entry.download}; put the files there (or pass --manual_dir=<folder>) "
                        f"and re-run `{_prepare_cmd(name, data_dir)}`") from None
    except OSError as e:
        raise UserError(
            f"downloading {entry.download} failed ({type(e).__name__}: {str(e)[:160]}); check the "
            f"network, or put the archive TFDS expects in {data_dir}/downloads/manual and re-run"
        ) from None
    return f"{name}: prepared in {b.data_dir}"


def prepare_dataset(cfg, overwrite: bool = False) -> str:
    """Prepares the dataset `cfg.name` once (a no-op when prepared); returns a one-line summary."""
    name = _cfg(cfg, "name", "digits")
    _check_name(name)
    data_dir = resolve_data_dir(cfg)
    if name == "digits":
        done = _prepare_digits(data_dir)
        return f"digits: {'prepared' if done else 'already prepared'} in {data_dir}/ccjax_digits"
    if name in TFDS_CATALOG:
        return _prepare_tfds(name, cfg, data_dir, overwrite)
    cname = _local_config_name(name, cfg)  # known without scanning: a large folder is not re-read
    path = builder_lib.prepared_path(data_dir, cname)
    if builder_lib.is_prepared(data_dir, cname) and not overwrite:
        return f"{name}: already prepared in {path}"
    plan = _local_plan(name, cfg, data_dir)
    _build_local(plan, data_dir, overwrite=overwrite)
    s = builder_lib.read_summary(data_dir, cname)
    return (f"{name}: prepared {s['num_examples']} images of {tuple(s['image_shape'])} in {path}; "
            f"{s['num_skipped']} files skipped (listed in {path / builder_lib.REPORT_FILE})")


# ----------------------------------------------------------------------------- opening


def _local_config_name(name: str, cfg) -> str:
    """The config name a local-source dataset is prepared under, computed without scanning."""
    size = int(_cfg(cfg, "image_size", 0))
    if name.startswith(FOLDER_PREFIX):
        return builder_lib.config_name(name, size, name[len(FOLDER_PREFIX):])
    if LOCAL_CATALOG[name].kind == "imagenet":
        size = size or imagenet.DEFAULT_SIZE
    return builder_lib.config_name(name, size)


def _not_prepared(name: str, cfg, data_dir: str, config_name: str) -> UserError:
    pattern = os.path.join(data_dir, builder_lib.TFDS_NAME, f"{name}_*", builder_lib.VERSION, "dataset_info.json")
    other = sorted(os.path.basename(os.path.dirname(os.path.dirname(p))) for p in glob.glob(pattern))
    size = int(_cfg(cfg, "image_size", 0))
    entry = LOCAL_CATALOG[name]
    where = "<folder with ILSVRC2012_img_train.tar or its <wnid> folders>" if entry.kind == "imagenet" \
        else "<extracted folder>"
    extra = f" --manual_dir={where}" + (f" --image_size={size}" if size else "")
    hint = f"; prepared at other sizes: {', '.join(other)}" if other else ""
    return UserError(f"{name} is not prepared in {data_dir}: download and extract {entry.download}, then run "
                     f"`{_prepare_cmd(name, data_dir, extra)}`{hint}")


def _data_sources(builder, split: str) -> tuple:
    """(source, meta source) of one split: the second leaves the image encoded, so labels and ids are
    read without decoding pixels."""
    return (builder.as_data_source(split=split),
            builder.as_data_source(split=split, decoders={"image": tfds.decode.SkipDecoding()}))


def _local_sources(name: str, cfg, data_dir: str) -> Sources:
    cname = _local_config_name(name, cfg)
    if not builder_lib.is_prepared(data_dir, cname):
        local_source = name.startswith(FOLDER_PREFIX) or _cfg(cfg, "manual_dir")
        if not local_source:
            raise _not_prepared(name, cfg, data_dir, cname)
        plan = _local_plan(name, cfg, data_dir)  # the files are at hand: prepare them now
        _build_local(plan, data_dir)
        summary = builder_lib.read_summary(data_dir, cname)
        if summary.get("num_skipped"):
            path = builder_lib.prepared_path(data_dir, cname)
            print(f"ccjax: prepared {summary['num_examples']} images of {name}; {summary['num_skipped']} files "
                  f"skipped (listed in {path / builder_lib.REPORT_FILE})", file=sys.stderr, flush=True)
    with builder_lib.quiet_tfds():
        b = tfds.builder_from_directory(os.fspath(builder_lib.prepared_path(data_dir, cname)))
        labelled = "label" in b.info.features
        source, meta = _data_sources(b, "train")
    class_names = list(b.info.features["label"].names) if labelled else None
    return Sources(name, [source], "label" if labelled else None, "file", None, class_names,
                   meta_sources=[meta])


def _tfds_sources(name: str, cfg, data_dir: str) -> Sources:
    entry = TFDS_CATALOG[name]
    splits = list(entry.splits)
    if name == "stl10" and _cfg(cfg, "use_unlabeled", False):
        splits.append(STL10_UNLABELLED[0])
    with builder_lib.quiet_tfds():
        b = tfds.builder(entry.tfds_name, data_dir=data_dir)
    try:
        with builder_lib.quiet_tfds():
            pairs = [_data_sources(b, s) for s in splits]
        sources, meta = [src for src, _ in pairs], [m for _, m in pairs]
    except Exception as e:  # TFDS raises KeyError/ValueError/... for a missing or tfrecord-only dataset
        if b.is_prepared():
            raise UserError(
                f"{name} in {b.data_dir} is prepared in a format data_source cannot read ({e}); convert "
                f"it: `tfds convert_format --dataset_version_dir={b.data_dir} --out_file_format=array_record`"
            ) from None
        raise UserError(
            f"{name} is not prepared in {data_dir}: run `{_prepare_cmd(name, data_dir)}` "
            f"(downloads {entry.download}; TFDS needs TensorFlow for it: {INSTALL_TF})"
        ) from None
    size_cfg = int(_cfg(cfg, "image_size", 0))
    if entry.shape is None:
        side = size_cfg or entry.default_size
        size = (side, side)
    else:
        size = (size_cfg, size_cfg) if size_cfg and (size_cfg, size_cfg) != entry.shape[:2] else None
    class_names = list(b.info.features[entry.label_key].names)
    return Sources(name, sources, entry.label_key, entry.id_key, size, class_names,
                   unlabeled=[s == STL10_UNLABELLED[0] for s in splits], meta_sources=meta)


def _digits_sources(cfg, data_dir: str) -> Sources:
    from ccjax.data.digits import TFDS_NAME

    _prepare_digits(data_dir)
    size = int(_cfg(cfg, "image_size", 0))
    with builder_lib.quiet_tfds():
        b = tfds.builder(TFDS_NAME, data_dir=data_dir)
        source, meta = _data_sources(b, "train")
    return Sources("digits", [source], "label", "file", (size, size) if size else None,
                   [str(i) for i in range(10)], meta_sources=[meta])


def dataset_sources(dataset_cfg) -> Sources:
    """Where `dataset_cfg.name`'s examples are read from (prepared first where the files are at hand)."""
    name = _cfg(dataset_cfg, "name", "digits")
    _check_name(name)
    data_dir = resolve_data_dir(dataset_cfg)
    if name == "digits":
        return _digits_sources(dataset_cfg, data_dir)
    if name in TFDS_CATALOG:
        return _tfds_sources(name, dataset_cfg, data_dir)
    return _local_sources(name, dataset_cfg, data_dir)


def open_dataset(dataset_cfg) -> ImageDataset | StreamingDataset:
    """Opens `dataset_cfg.name` (see docs/datasets.md): in host memory, or streamed from its files.

    Fields read: name, data_dir, image_size, manual_dir, use_unlabeled,
    num_clusters (must be > 0 for a dataset without labels), in_memory /
    memory_share / stream_workers / stream_buffer (see `choose_in_memory`), and
    mask_noise (ccjax/data/masking.py).
    The result's `how_opened` says which way it was opened and why (training's
    start-up line shows it).
    """
    spec = dataset_sources(dataset_cfg)
    if spec.class_names is None and int(_cfg(dataset_cfg, "num_clusters", -1)) <= 0:
        raise UserError(
            f"dataset {spec.name!r} has no labels, so the number of clusters cannot be inferred; "
            "set --config.dataset.num_clusters=K"
        )
    in_memory, why = choose_in_memory(dataset_cfg, spec.decoded_bytes)
    if in_memory:
        ds = load_sources(spec, desc=f"loading {spec.name}")
    else:
        ds = StreamingDataset(spec, workers=int(_cfg(dataset_cfg, "stream_workers", -1)),
                              buffer=int(_cfg(dataset_cfg, "stream_buffer", 2)))
    ds = with_mask_noise(ds, dataset_cfg)  # MFAVBs-CC Sec. 4.7: a fixed black rectangle per image, when enabled
    ds.how_opened = f"{'in memory' if in_memory else 'streamed'}: {why}"
    return ds


def host_memory_bytes() -> int:
    """Physical memory of this host."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def choose_in_memory(dataset_cfg, decoded_bytes: int) -> tuple[bool, str]:
    """(hold in memory?, why) from `dataset.in_memory` = auto | true | false.

    auto holds the decoded dataset in memory when it takes at most
    `dataset.memory_share` of this host's physical memory (each training
    process holds its own copy), and streams it otherwise.
    """
    from ccjax.config import in_memory_mode

    forced = in_memory_mode(_cfg(dataset_cfg, "in_memory", "auto"))
    size = f"{decoded_bytes / 1e9:.2f} GB decoded"
    if forced is not None:
        return forced, f"{size}; dataset.in_memory={'true' if forced else 'false'}"
    share, ram = float(_cfg(dataset_cfg, "memory_share", 0.5)), host_memory_bytes()
    if decoded_bytes <= share * ram:
        return True, f"{size} <= {share:g} of {ram / 1e9:.1f} GB RAM"
    return False, f"{size} > {share:g} of {ram / 1e9:.1f} GB RAM; --config.dataset.in_memory=true holds it anyway"


def dataset_spec(dataset_cfg) -> dict:
    """image_shape, num_classes and num_examples of a dataset, without reading its images.

    From the prepared dataset's metadata when there is one, else from the
    catalog (published sizes). Used to size synthetic benchmarks.
    """
    name = _cfg(dataset_cfg, "name", "digits")
    _check_name(name)
    data_dir = resolve_data_dir(dataset_cfg)
    size = int(_cfg(dataset_cfg, "image_size", 0))
    if name == "digits":
        side = size or 8
        return dict(image_shape=(side, side, 1), num_classes=10, num_examples=1797)
    if name in TFDS_CATALOG:
        e = TFDS_CATALOG[name]
        n = e.num_examples
        if name == "stl10" and _cfg(dataset_cfg, "use_unlabeled", False):
            n += STL10_UNLABELLED[1]
        side = size or (e.default_size if e.shape is None else 0)
        shape = (side, side, 3) if side else e.shape
        return dict(image_shape=shape, num_classes=e.num_classes, num_examples=n)
    cname = _local_config_name(name, dataset_cfg)
    if builder_lib.is_prepared(data_dir, cname):
        s = builder_lib.read_summary(data_dir, cname)
        classes = s["class_names"]
        return dict(image_shape=tuple(s["image_shape"]), num_classes=None if classes is None else len(classes),
                    num_examples=s["num_examples"])
    if name.startswith(FOLDER_PREFIX):
        raise UserError(f"{name} is not prepared yet: run `{_prepare_cmd(name, data_dir)}` first")
    e = LOCAL_CATALOG[name]
    if e.kind == "imagenet":
        size = size or imagenet.DEFAULT_SIZE
    shape = (size, size, 3) if size else e.native_shape
    if shape is None:
        raise _not_prepared(name, dataset_cfg, data_dir, cname)
    return dict(image_shape=shape, num_classes=e.num_classes, num_examples=e.num_examples)

