"""ccjax datasets: every dataset by name, prepared once with TFDS, held in host memory.

`open_dataset(dataset_cfg) -> ImageDataset` is the contract of
docs/architecture.md (section Data); docs/datasets.md lists the datasets.
"""

from ccjax.data.catalog import (
    FOLDER_PREFIX,
    dataset_names,
    dataset_spec,
    open_dataset,
    prepare_dataset,
    resolve_data_dir,
)
from ccjax.data.dataset import ImageDataset

__all__ = [
    "FOLDER_PREFIX",
    "ImageDataset",
    "dataset_names",
    "dataset_spec",
    "open_dataset",
    "prepare_dataset",
    "resolve_data_dir",
]
