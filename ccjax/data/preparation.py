"""Preparing a dataset once: `prepare_dataset` (what `python -m ccjax prepare` runs).

A TFDS catalog dataset is downloaded and written as array_record by TFDS's own
builder (TensorFlow needed for that step only); digits and the local-source
datasets (ImageNet subsets, image folders) are written by ccjax's builder
(ccjax.data.builder) from files at hand. Opening a dataset prepares digits and
local-source datasets itself when their files are at hand (ccjax.data.opening).
"""

from __future__ import annotations

import importlib.util
import os
import shlex

import tensorflow_datasets as tfds

from ccjax.data import builder as builder_lib
from ccjax.data import folder as folder_lib
from ccjax.data import imagenet
from ccjax.data.downloads import (
    archive_at_hand,
    manual_download_advice,
    removing_created_empty_folders,
    unreachable,
)
from ccjax.data.catalog import (
    FOLDER_PREFIX,
    INSTALL_TF,
    LOCAL_CATALOG,
    TFDS_CATALOG,
    cfg_field,
    check_name,
    local_config_name,
    manual_download_dir,
    prepare_cmd,
    resolve_data_dir,
)
from ccjax.data.digits import CcjaxDigits
from ccjax.errors import UserError


def local_plan(name: str, cfg, data_dir: str) -> builder_lib.Plan:
    """The Plan of a local-source dataset (validates the user's folder; UserError if unusable)."""
    size = int(cfg_field(cfg, "image_size"))
    if name.startswith(FOLDER_PREFIX):
        return folder_lib.folder_plan(name, name[len(FOLDER_PREFIX):], size, named=False)
    entry = LOCAL_CATALOG[name]
    manual_dir = manual_download_dir(cfg, data_dir, name)
    if entry.kind == "imagenet":
        return imagenet.imagenet_plan(name, manual_dir, size)
    if not manual_dir or not os.path.isdir(manual_dir):
        where = f"{manual_dir} does not exist" if manual_dir else "no manual_dir given"
        raise UserError(
            f"{name} needs {entry.download}, downloaded and extracted ({where}); run "
            f"`{prepare_cmd(name, data_dir, ' --manual_dir=<extracted folder>', size)}`"
        )
    return folder_lib.folder_plan(name, manual_dir, size, named=True, expected_classes=entry.num_classes)


def build_local(plan: builder_lib.Plan, data_dir: str, overwrite: bool = False) -> None:
    """Prepares `plan`; tolerates another process finishing the same preparation first."""
    try:
        builder_lib.build(plan, data_dir, overwrite=overwrite)
    except OSError:
        if not builder_lib.is_prepared(data_dir, plan.config_name):
            raise
    if not builder_lib.is_prepared(data_dir, plan.config_name):  # e.g. under tfds.testing.mock_data
        raise RuntimeError(f"preparing {plan.config_name} wrote nothing to {data_dir} "
                           "(folder datasets cannot be prepared inside tfds.testing.mock_data)")


def prepare_digits(data_dir: str) -> bool:
    """Prepares digits unless prepared; True when this call prepared it."""
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
    manual_dir = cfg_field(cfg, "manual_dir") or os.path.join(data_dir, "downloads", "manual")
    given = cfg_field(cfg, "manual_dir")
    retry = prepare_cmd(name, data_dir, f" {shlex.quote(f'--manual_dir={given}')}" if given else "")
    _check_can_download(name, b, data_dir, manual_dir, retry)  # in seconds, before TFDS retries for minutes
    if importlib.util.find_spec("tensorflow") is None:  # TFDS's builders for these read with tf.io
        raise UserError(f"TFDS needs TensorFlow to prepare {name} (training does not): {INSTALL_TF}, "
                        f"then run `{prepare_cmd(name, data_dir)}`")
    mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    config = tfds.download.DownloadConfig(manual_dir=cfg_field(cfg, "manual_dir"), download_mode=mode)
    created = [os.path.join(data_dir, entry.tfds_name), os.path.join(data_dir, "downloads"), data_dir]
    try:
        with removing_created_empty_folders(*created):
            b.download_and_prepare(download_config=config, file_format="array_record")
    except ImportError as e:
        if "tensorflow" in str(e).lower():
            raise UserError(f"TFDS needs TensorFlow to prepare {name}: {INSTALL_TF}, then re-run "
                            f"`{prepare_cmd(name, data_dir)}`") from None
        raise
    except AssertionError as e:  # TFDS's words for a missing manual download (imagenet2012)
        if "manual" not in str(e).lower():
            raise
        raise UserError(f"{name} needs {entry.download}; put the files there (or pass --manual_dir=<folder>) "
                        f"and re-run `{prepare_cmd(name, data_dir)}`") from None
    except OSError as e:  # requests' errors are OSErrors too
        urls = [(url, info.filename) for url, info in b.url_infos.items()] if b.url_infos else []
        advice = (manual_download_advice(urls, manual_dir, retry) if urls
                  else f"check the network, then run `{retry}`")
        raise UserError(f"downloading {entry.download} failed ({download_failure(e)}); {advice}") from None
    return f"{name}: prepared in {b.data_dir}"


def _check_can_download(name: str, builder, data_dir: str, manual_dir: str, retry: str) -> None:
    """UserError in seconds when an archive the builder downloads is neither at hand nor reachable."""
    entry = TFDS_CATALOG[name]
    missing = [(url, info) for url, info in (builder.url_infos or {}).items()
               if not archive_at_hand(url, info.filename, manual_dir, os.path.join(data_dir, "downloads"),
                                      info.checksum)]
    for url, _ in missing:
        why = unreachable(url)
        if why:
            advice = manual_download_advice([(u, info.filename) for u, info in missing], manual_dir, retry)
            raise UserError(f"cannot download {entry.download}: {why}; {advice}")


def download_failure(e: BaseException) -> str:
    """A failed download's cause in a few whole words (a requests error's text is a nested repr)."""
    text = str(e)
    for marker, words in (("NameResolution", "a host name does not resolve"), ("timed out", "timed out"),
                          ("Connection refused", "connection refused"), ("No space left", "the disk is full")):
        if marker in text:
            return words
    return type(e).__name__


def prepare_dataset(cfg, overwrite: bool = False) -> str:
    """Prepares the dataset `cfg.name` once (a no-op when prepared); returns a one-line summary."""
    name = cfg_field(cfg, "name")
    check_name(name)
    data_dir = resolve_data_dir(cfg)
    if name == "digits":
        done = prepare_digits(data_dir)
        return f"digits: {'prepared' if done else 'already prepared'} in {data_dir}/ccjax_digits"
    if name in TFDS_CATALOG:
        return _prepare_tfds(name, cfg, data_dir, overwrite)
    cname = local_config_name(name, cfg)  # known without scanning: a large folder is not re-read
    path = builder_lib.prepared_path(data_dir, cname)
    if builder_lib.is_prepared(data_dir, cname) and not overwrite:
        return f"{name}: already prepared in {path}"
    plan = local_plan(name, cfg, data_dir)
    build_local(plan, data_dir, overwrite=overwrite)
    s = builder_lib.read_summary(data_dir, cname)
    return (f"{name}: prepared {s['num_examples']} images of {tuple(s['image_shape'])} in {path}; "
            f"{s['num_skipped']} files skipped (listed in {path / builder_lib.REPORT_FILE})")
