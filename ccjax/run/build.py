"""What a training run is built from: the model and its state layout (`ModelSetup`), and with the
data, the batches and the train step (`TrainingRun`). Training and the benchmark build these;
inference builds less (ccjax/run/load.py).
"""

from __future__ import annotations

import sys

import jax

from ccjax.data import open_dataset
from ccjax.data.pipeline import TrainBatches
from ccjax.errors import UserError
from ccjax.methods import get_objective
from ccjax.models import build_model
from ccjax.run.state import make_optimizer, make_train_step, train_state_spec
from ccjax.runtime.mesh import check_batch_size, make_mesh


def resolve_num_clusters(config, dataset) -> int:
    """config.dataset.num_clusters, or the dataset's number of classes when it is -1; 2 <= K <= N.

    A K above the batch size is allowed with a warning: the cluster loss sees
    one batch's assignment columns, so most clusters are empty in every batch.
    """
    k = config.dataset.num_clusters
    if k <= 0:
        if dataset.num_classes is None:
            raise UserError(
                f"dataset {config.dataset.name!r} has no labels, so the number of clusters cannot be "
                "inferred; set --config.dataset.num_clusters=K"
            )
        k = dataset.num_classes
    k = int(k)
    if k < 2:
        raise UserError(f"{k} cluster: clustering needs at least 2; set --config.dataset.num_clusters=K (K >= 2)")
    if k > dataset.num_examples:
        raise UserError(f"dataset.num_clusters={k} is more than the {dataset.num_examples} images of "
                        f"{config.dataset.name!r}; set --config.dataset.num_clusters to at most {dataset.num_examples}")
    if k > config.batch_size and jax.process_index() == 0:
        print(f"ccjax: warning: {k} clusters but batches of {config.batch_size}: the cluster loss sees one batch, "
              f"so most clusters are empty in each; raise --config.batch_size to at least {k}", file=sys.stderr,
              flush=True)
    return k


def load_anchors(config, dataset, mesh):
    """The cached frozen-CLIP embeddings [N, A], or None when the run uses no anchor."""
    if not config.anchor.enabled:
        return None
    from ccjax.clip import load_or_build_anchors

    return load_or_build_anchors(config, dataset, mesh)


class ModelSetup:
    """The model, optimiser and train-state layout of a run: what a checkpoint needs, no data.

    `module` is the Flax model; `init_state()` builds a fresh sharded TrainState and
    `abstract_state` is its layout (ShapeDtypeStructs with shardings) to restore into.
    """

    def __init__(self, config, num_clusters: int, image_shape, anchor_dim: int | None, mesh,
                 steps_per_epoch: int = 1):
        """`steps_per_epoch` sets the learning-rate schedule's length only (any value restores a checkpoint)."""
        self.config = config
        self.mesh = mesh
        self.num_clusters = num_clusters
        self.image_shape = tuple(image_shape)
        self.anchor_dim = anchor_dim
        self.module = build_model(config, num_clusters)
        self.tx = make_optimizer(config, steps_per_epoch)
        self.init_state, self.abstract_state = train_state_spec(
            self.module, self.tx, config, mesh, self.image_shape, anchor_dim
        )


class TrainingRun(ModelSetup):
    """A ModelSetup with its data: the dataset, the anchors, the training batches and the train step."""

    def __init__(self, config, mesh=None, dataset=None, anchors="load"):
        """`dataset` and `anchors` default to the config's (anchors computed or read from the cache)."""
        mesh = make_mesh() if mesh is None else mesh
        check_batch_size(config.batch_size, mesh)
        check_batch_size(config.eval.batch_size, mesh, "eval.batch_size")
        self.objective = get_objective(config.objective)
        self.dataset = open_dataset(config.dataset) if dataset is None else dataset
        self.anchors = load_anchors(config, self.dataset, mesh) if isinstance(anchors, str) else anchors
        anchor_dim = None if self.anchors is None else self.anchors.shape[1]
        self.batches = TrainBatches(self.dataset, config.batch_size, config.seed, mesh, self.anchors)
        self.steps_per_epoch = self.batches.steps_per_epoch
        super().__init__(config, resolve_num_clusters(config, self.dataset), self.dataset.image_shape,
                         anchor_dim, mesh, self.steps_per_epoch)
        self.train_step = make_train_step(self.module, self.tx, self.objective, config, self.steps_per_epoch)

    def describe(self) -> dict:
        """What inference needs to know about the training data (written to run.json)."""
        return {
            "dataset": self.config.dataset.name,
            "num_examples": self.dataset.num_examples,
            "image_shape": list(self.image_shape),
            "num_clusters": self.num_clusters,
            "class_names": self.dataset.class_names,
            "anchor_dim": None if self.anchor_dim is None else int(self.anchor_dim),
        }
