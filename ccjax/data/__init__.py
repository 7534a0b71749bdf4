"""ccjax datasets: every dataset by name, prepared once with TFDS, held in host memory or streamed.

`open_dataset(dataset_cfg) -> ImageDataset | StreamingDataset` (both the
`Dataset` contract of docs/architecture.md, section Data, whose `streams` and
`how_opened` say which); docs/datasets.md lists the datasets and says when a
dataset is streamed. The names: catalog.py; preparing: preparation.py;
opening: opening.py.
"""

from ccjax.data.catalog import FOLDER_PREFIX, dataset_names, dataset_spec, resolve_data_dir
from ccjax.data.dataset import Dataset, ImageDataset
from ccjax.data.opening import open_dataset
from ccjax.data.preparation import prepare_dataset
from ccjax.data.streaming import StreamingDataset

__all__ = [
    "FOLDER_PREFIX",
    "Dataset",
    "ImageDataset",
    "StreamingDataset",
    "dataset_names",
    "dataset_spec",
    "open_dataset",
    "prepare_dataset",
    "resolve_data_dir",
]
