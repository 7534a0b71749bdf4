"""Opening a dataset by name: `open_dataset`, in host memory or streamed from its prepared files.

Every dataset is read through TFDS `data_source` (no TensorFlow): its splits
become one `Sources`, then either decoded once into host memory
(`ImageDataset`) or decoded batch by batch as training reads it
(`StreamingDataset`), by `dataset.in_memory` (`choose_in_memory`); the
`Dataset` returned says which (`streams`) and why (`how_opened`). See
docs/datasets.md, "Streaming".
"""

from __future__ import annotations

import os
import sys

import tensorflow_datasets as tfds

from ccjax.data import builder as builder_lib
from ccjax.data.catalog import (
    FOLDER_PREFIX,
    INSTALL_TF,
    STL10_UNLABELLED,
    TFDS_CATALOG,
    cfg_field,
    check_name,
    local_config_name,
    not_prepared,
    prepare_cmd,
    resolve_data_dir,
)
from ccjax.data.dataset import ImageDataset, Sources, load_sources
from ccjax.data.digits import TFDS_NAME
from ccjax.data.masking import with_mask_noise
from ccjax.data.preparation import build_local, local_plan, prepare_digits
from ccjax.data.streaming import StreamingDataset
from ccjax.errors import UserError


def _data_sources(builder, split: str) -> tuple:
    """(source, meta source) of one split: the second leaves the image encoded, so labels and ids are
    read without decoding pixels."""
    return (builder.as_data_source(split=split),
            builder.as_data_source(split=split, decoders={"image": tfds.decode.SkipDecoding()}))


def _local_sources(name: str, cfg, data_dir: str) -> Sources:
    cname = local_config_name(name, cfg)
    if not builder_lib.is_prepared(data_dir, cname):
        local_source = name.startswith(FOLDER_PREFIX) or cfg_field(cfg, "manual_dir")
        if not local_source:
            raise not_prepared(name, cfg, data_dir)
        plan = local_plan(name, cfg, data_dir)  # the files are at hand: prepare them now
        build_local(plan, data_dir)
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
    if name == "stl10" and cfg_field(cfg, "use_unlabeled"):
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
            f"{name} is not prepared in {data_dir}: run `{prepare_cmd(name, data_dir)}` "
            f"(downloads {entry.download}; TFDS needs TensorFlow for it: {INSTALL_TF})"
        ) from None
    size_cfg = int(cfg_field(cfg, "image_size"))
    if entry.shape is None:
        side = size_cfg or entry.default_size
        size = (side, side)
    else:
        size = (size_cfg, size_cfg) if size_cfg and (size_cfg, size_cfg) != entry.shape[:2] else None
    class_names = list(b.info.features[entry.label_key].names)
    return Sources(name, sources, entry.label_key, entry.id_key, size, class_names,
                   unlabeled=[s == STL10_UNLABELLED[0] for s in splits], meta_sources=meta)


def _digits_sources(cfg, data_dir: str) -> Sources:
    prepare_digits(data_dir)
    size = int(cfg_field(cfg, "image_size"))
    with builder_lib.quiet_tfds():
        b = tfds.builder(TFDS_NAME, data_dir=data_dir)
        source, meta = _data_sources(b, "train")
    return Sources("digits", [source], "label", "file", (size, size) if size else None,
                   [str(i) for i in range(10)], meta_sources=[meta])


def dataset_sources(dataset_cfg) -> Sources:
    """Where `dataset_cfg.name`'s examples are read from (prepared first where the files are at hand)."""
    name = cfg_field(dataset_cfg, "name")
    check_name(name)
    data_dir = resolve_data_dir(dataset_cfg)
    if name == "digits":
        return _digits_sources(dataset_cfg, data_dir)
    if name in TFDS_CATALOG:
        return _tfds_sources(name, dataset_cfg, data_dir)
    return _local_sources(name, dataset_cfg, data_dir)


def open_dataset(dataset_cfg) -> ImageDataset | StreamingDataset:
    """Opens `dataset_cfg.name` (see docs/datasets.md): in host memory, or streamed from its files.

    Fields read: name, data_dir, image_size, manual_dir, use_unlabeled,
    num_clusters (must be > 0 for a dataset without labels), and in_memory /
    memory_share / stream_workers / stream_buffer (see `choose_in_memory`), and
    mask_noise (ccjax/data/masking.py).
    The result's `streams` says which way it was opened and `how_opened` why
    (training's start-up line shows it).
    """
    spec = dataset_sources(dataset_cfg)
    check_num_clusters_known(spec.name, spec.class_names is not None, cfg_field(dataset_cfg, "num_clusters"))
    in_memory, why = choose_in_memory(dataset_cfg, spec.decoded_bytes)
    if in_memory:
        ds = load_sources(spec, desc=f"loading {spec.name}", how_opened=f"in memory: {why}")
    else:
        ds = StreamingDataset(spec, workers=int(cfg_field(dataset_cfg, "stream_workers")),
                              buffer=int(cfg_field(dataset_cfg, "stream_buffer")), how_opened=f"streamed: {why}")
    return with_mask_noise(ds, dataset_cfg)  # MFAVBs-CC Sec. 4.7: a fixed black rectangle per image, when enabled


def check_num_clusters_known(name: str, labelled: bool, num_clusters: int) -> None:
    """UserError when the number of clusters is left to the labels (num_clusters <= 0) and there are none."""
    if not labelled and int(num_clusters) <= 0:
        raise UserError(f"dataset {name!r} has no labels, so the number of clusters cannot be inferred; "
                        "set --config.dataset.num_clusters=K")


def readable_bytes(n: float) -> str:
    """'115 kB', '1.84 MB', '3.69 GB': three significant digits in the largest unit not above n."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


_IN_MEMORY = {"auto": None, "true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def in_memory_mode(value) -> bool | None:
    """`dataset.in_memory` read: True (hold in memory), False (stream) or None (auto); UserError otherwise."""
    mode = str(value).lower()
    if mode not in _IN_MEMORY:
        raise UserError(f"dataset.in_memory={value!r} must be auto, true or false; set --config.dataset.in_memory=auto")
    return _IN_MEMORY[mode]


def host_memory_bytes() -> int:
    """Physical memory of this host."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def choose_in_memory(dataset_cfg, decoded_bytes: int) -> tuple[bool, str]:
    """(hold in memory?, why) from `dataset.in_memory` = auto | true | false.

    auto holds the decoded dataset in memory when it takes at most
    `dataset.memory_share` of this host's physical memory (each training
    process holds its own copy), and streams it otherwise.
    """
    forced = in_memory_mode(cfg_field(dataset_cfg, "in_memory"))
    size = f"{readable_bytes(decoded_bytes)} decoded"
    if forced is not None:
        return forced, f"{size}; dataset.in_memory={'true' if forced else 'false'}"
    share, ram = float(cfg_field(dataset_cfg, "memory_share")), host_memory_bytes()
    if decoded_bytes <= share * ram:
        return True, f"{size} <= {share:g} of {ram / 1e9:.1f} GB RAM"
    return False, f"{size} > {share:g} of {ram / 1e9:.1f} GB RAM; --config.dataset.in_memory=true holds it anyway"
