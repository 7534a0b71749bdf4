"""What every training run checks of its data and its training: the number of clusters against the
opened dataset (`resolve_num_clusters`), and the error a run that diverged ends with (`TrainingDiverged`).
Both the image loop (loop.py) and TEMI's run on frozen features (temi.py) use them.
"""

from __future__ import annotations

import sys

from ccjax.data.opening import check_num_clusters_known
from ccjax.errors import UserError
from ccjax.runtime.distributed import is_main_process


class TrainingDiverged(UserError):
    """Loss or gradients became NaN/inf."""


def resolve_num_clusters(config, dataset) -> int:
    """config.dataset.num_clusters, or the dataset's number of classes when it is -1; 2 <= K <= N.

    A K above the batch size is allowed with a warning: the cluster loss sees
    one batch's assignment columns, so most clusters are empty in every batch.
    """
    k = config.dataset.num_clusters
    if k <= 0:
        check_num_clusters_known(config.dataset.name, dataset.num_classes is not None, k)
        k = dataset.num_classes
    k = int(k)
    if k < 2:
        raise UserError(f"{k} cluster: clustering needs at least 2; set --config.dataset.num_clusters=K (K >= 2)")
    if k > dataset.num_examples:
        raise UserError(f"dataset.num_clusters={k} is more than the {dataset.num_examples} images of "
                        f"{config.dataset.name!r}; set --config.dataset.num_clusters to at most {dataset.num_examples}")
    if k > config.batch_size and is_main_process():
        print(f"ccjax: warning: {k} clusters but batches of {config.batch_size}: the cluster loss sees one batch, "
              f"so most clusters are empty in each; raise --config.batch_size to at least {k}", file=sys.stderr,
              flush=True)
    return k
