"""The embedded default dataset: scikit-learn's 1,797 8x8 handwritten digits as a TFDS dataset.

`CcjaxDigits` is a `tfds.core.GeneratorBasedBuilder` (registered as
`ccjax_digits`) that yields PNG-encoded 8x8x1 images, so it prepares without
TensorFlow into array_record files and is read back through `tfds.data_source`
like every other dataset. Pixel values 0..16 become uint8 round(v * 255 / 16).
Example i is scikit-learn's row i (shuffling is disabled).
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from ccjax.data.images import encode_png

TFDS_NAME = "ccjax_digits"


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (uint8 images [1797, 8, 8, 1], int labels [1797])."""
    # scikit-learn loads only when digits is prepared
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # [N, 8, 8, 1]
    return images, d.target.astype(np.int64)


class CcjaxDigits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 8x8 handwritten digits (UCI optdigits test set), 10 classes."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "scikit-learn load_digits, values scaled 0..16 -> 0..255."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1), encoding_format="png"),
                "label": tfds.features.ClassLabel(names=[str(i) for i in range(10)]),
                "file": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
            disable_shuffling=True,
        )

    # TFDS announces "Downloading and preparing dataset Unknown size ..." and "... downloaded and
    # prepared"; nothing is downloaded here, so one line says where the digits went instead.
    def _log_download_bytes(self) -> None:
        pass

    def _log_download_done(self) -> None:
        print(f"ccjax: prepared the embedded digits (once) in {self.data_dir}", flush=True)

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the data ships with scikit-learn
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        images, labels = digits_arrays()
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": encode_png(image), "label": int(label), "file": f"{i:04d}"}
