"""Loading a trained run for inference: the one path evaluation, prediction and attention maps use.

`load_trained(workdir)` reads the run's config.json and run.json and builds
only what inference needs: the Flax model and the layout of its variables. No
dataset, no training batches, no optimiser; `restore()` reads the variables of
a checkpoint (its optimiser state is skipped). `model_outputs` runs a model over a whole dataset with
view 1's evaluation preprocessing: what scoring, --suggest_k and the `run:` features source read.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from ccjax.augment import preprocess_eval, view_augment_config
from ccjax.data.pipeline import map_batches
from ccjax.errors import UserError
from ccjax.models import build_model
from ccjax.models.spec import inference_spec
from ccjax.run.checkpoint import Checkpointer
from ccjax.run.rundir import CHECKPOINTS_DIR, load_run_config, read_run_info
from ccjax.runtime.mesh import make_mesh


@dataclasses.dataclass(frozen=True)
class Restored:
    """A checkpoint's model variables ({'params', 'batch_stats', ...}), its step and bookkeeping."""

    variables: dict
    step: int
    meta: dict


@dataclasses.dataclass(frozen=True, eq=False)
class TrainedModel:
    """A trained run's model: config, run.json info, Flax module, mesh and the variables' layout."""

    workdir: str
    config: Any
    info: dict  # run.json: dataset, num_examples, image_shape, num_clusters, class_names, anchor_dim
    module: Any
    mesh: Any
    abstract: dict  # {'step', 'params', 'model_state'} ShapeDtypeStructs with shardings

    @classmethod
    def build(cls, workdir: str, config, info: dict, mesh=None) -> "TrainedModel":
        mesh = make_mesh() if mesh is None else mesh
        return cls.of_module(workdir, config, info, build_model(config, int(info["num_clusters"])), mesh)

    @classmethod
    def of_module(cls, workdir: str, config, info: dict, module, mesh) -> "TrainedModel":
        """The run's model as training built it (`module`, from build_model): nothing is built again."""
        abstract = inference_spec(module, config, mesh, tuple(info["image_shape"]), info.get("anchor_dim"))
        return cls(workdir, config, info, module, mesh, abstract)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.info["image_shape"])

    def restore(self, subdir: str = CHECKPOINTS_DIR) -> Restored | None:
        """The newest checkpoint in `workdir/subdir` that restores, or None when it holds none."""
        directory = os.path.join(self.workdir, subdir)
        if not os.path.isdir(directory):
            return None
        ck = Checkpointer(directory, keep=1)
        try:
            newest = ck.restore_newest(self.abstract, subset=True)  # damaged newer steps are set aside
        finally:
            ck.close()
        if newest is None:
            return None
        _, state, meta = newest
        return Restored({"params": state["params"], **state["model_state"]}, int(state["step"]), meta)

    def restore_latest(self) -> Restored:
        """The newest complete training checkpoint; a UserError when there is none."""
        restored = self.restore(CHECKPOINTS_DIR)
        if restored is None:
            raise UserError(f"no complete checkpoint in {os.path.join(self.workdir, CHECKPOINTS_DIR)}; train first")
        return restored


def load_trained(workdir: str, mesh=None) -> TrainedModel:
    """The model of the run in `workdir` (config.json and run.json), ready to restore a checkpoint."""
    config = load_run_config(workdir)
    return TrainedModel.build(workdir, config, read_run_info(workdir), mesh)


def make_predict_fn(module, config, output: str = "c"):
    """jit(predict(variables, images_u8, anchors) -> the model's `output` for view 1's eval preprocessing:
    'c' cluster probabilities [B, K], 'z' instance features [B, D], 'h' backbone features [B, F])."""
    view_cfg = view_augment_config(config, 1)

    def predict(variables, images, anchors):
        x = preprocess_eval(images, view_cfg)  # [B, S, S, C]
        return module.apply(variables, [x], anchors, train=False)[0][output]

    return jax.jit(predict)


def model_outputs(module, variables: dict, config, dataset, mesh, anchors=None, output: str = "c",
                  progress: bool = False) -> np.ndarray:
    """One model output ('c', 'z' or 'h', see make_predict_fn) for every example, in dataset order:
    float32 host array [N, ...]. `variables` = {'params': ..., 'batch_stats': ...} of `module`."""
    predict = make_predict_fn(module, config, output)
    out = map_batches(lambda b: predict(variables, b["image"], b.get("anchor")), dataset,
                      config.eval.batch_size, mesh, anchors, desc="assign", progress=progress)
    return out.astype(np.float32)
