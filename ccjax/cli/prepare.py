"""Prepare a dataset once:

    python -m ccjax prepare --dataset=cifar10
    python -m ccjax prepare --dataset=imagenet10 --manual_dir=/data/imagenet/train
    python -m ccjax prepare --dataset=aid --manual_dir=/data/AID --image_size=256
    python -m ccjax prepare --dataset=folder:/data/my_images --image_size=128

(also `ccjax prepare` and `python -m ccjax prepare`). Builds the TFDS array_record dataset (with a
progress bar) that training then reads through `tfds.data_source`. Preparing a prepared dataset is a
no-op; an interrupted preparation leaves nothing that counts as prepared, so simply run the command
again. Datasets and layouts: docs/datasets.md.
"""

from __future__ import annotations

import ml_collections

from ccjax.cli.flags import run_command
from ccjax.errors import UserError, exit_on_user_error


def _define_flags():
    """The command line's flags, defined only when it runs (importing this module defines none)."""
    from absl import flags

    return (
        flags.DEFINE_string("dataset", None, "Dataset name: digits, cifar10, ..., or folder:<path> (required)."),
        flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)."),
        flags.DEFINE_string("manual_dir", None, "Folder with the manual download: ImageNet train (tar or <wnid>/ "
                            "folders), or the extracted rsod / siri_whu / aid folder (default: "
                            "<data_dir>/downloads/manual)."),
        flags.DEFINE_integer("image_size", 0, "Storage side in pixels for folder/ImageNet datasets (0: native; "
                             "ImageNet: 224). Must match the training config's dataset.image_size."),
        flags.DEFINE_bool("overwrite", False, "Prepare again even if already prepared."),
    )


def dataset_config(name: str, data_dir: str | None = None, manual_dir: str | None = None,
                   image_size: int = 0, **fields) -> ml_collections.ConfigDict:
    """A `config.dataset`-shaped ConfigDict for `prepare_dataset` / `open_dataset`; `fields` set
    any other `config.dataset` field (e.g. in_memory="false")."""
    values = dict(name=name, data_dir=data_dir, manual_dir=manual_dir, image_size=image_size,
                  use_unlabeled=False, num_clusters=-1)
    values.update(fields)
    return ml_collections.ConfigDict(values)


@exit_on_user_error
def prepare(argv, name: str | None, data_dir: str | None, manual_dir: str | None, image_size: int,
            overwrite: bool) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags are --dataset, --data_dir, "
                        "--manual_dir, --image_size, --overwrite")
    if not name:
        # imported when the command runs: its --help answers without loading the library
        from ccjax.data import dataset_names

        raise UserError(f"no dataset given; pass --dataset=<name> ({', '.join(dataset_names())}, folder:<path>)")
    if image_size < 0:
        raise UserError(f"--image_size={image_size}; use 0 (native) or a positive side in pixels")
    # imported when the command runs: its --help answers without loading the library
    from ccjax.data import prepare_dataset

    print(prepare_dataset(dataset_config(name, data_dir, manual_dir, image_size), overwrite=overwrite))


def main() -> None:
    holders = _define_flags()
    run_command(lambda argv: prepare(argv, *(h.value for h in holders)), __doc__, holders)


if __name__ == "__main__":
    main()
