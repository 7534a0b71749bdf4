"""ccjax datasets: every dataset by name, prepared once with TFDS, held in host memory or streamed.

`open_dataset(dataset_cfg) -> ImageDataset | StreamingDataset` (both the
`Dataset` contract of docs/architecture.md, section Data); docs/datasets.md
lists the datasets and says when a dataset is streamed.
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
from ccjax.data.streaming import StreamingDataset

__all__ = [
    "FOLDER_PREFIX",
    "ImageDataset",
    "StreamingDataset",
    "dataset_names",
    "dataset_spec",
    "open_dataset",
    "prepare_dataset",
    "resolve_data_dir",
]
