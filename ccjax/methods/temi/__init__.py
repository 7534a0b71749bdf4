"""TEMI (Adaloglou et al., BMVC 2023): clustering heads trained on frozen features (docs/temi.md).

- here: the `temi` and `features` fields of the base config, `features.source`'s parsing, the checks;
- loss.py: the multi-head TEMI loss (the official code's reading);
- step.py: one epoch of training on cached features (jit, lax.scan over its steps).

The heads and the EMA teacher are ccjax/models/temi_heads.py; the frozen features, the kNN and the
k-means baseline ccjax/features/; the run (features cache, kNN, checkpoints, resume, evaluation)
ccjax/train/temi.py. TEMI does not train through ccjax's image loop: `loss_fn` is not used;
ccjax.train.loop.train_and_evaluate dispatches method=temi to ccjax.train.temi.train_temi.
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from ccjax.errors import UserError

SOURCE_KINDS = ("clip", "dinov2", "run")


def features_config() -> ml_collections.ConfigDict:
    """The `features` fields of the base config (used by method=temi; ccjax/features/)."""
    c = ml_collections.ConfigDict()
    c.source = "clip:openai/clip-vit-base-patch32"  # clip:<model> | dinov2:<model> | run:<workdir>
    c.batch_size = 256  # images per step when embedding
    c.cache_dir = placeholder(str)  # None: dataset.data_dir, else ~/.cache/ccjax
    return c


def parse_source(source: str) -> tuple[str, str]:
    """('clip' | 'dinov2' | 'run', model name or workdir) from `features.source`; UserError otherwise."""
    kind, sep, name = str(source).partition(":")
    if not sep or kind not in SOURCE_KINDS or not name:
        raise UserError(f"features.source={source!r} must be clip:<model>, dinov2:<model> or run:<workdir>; "
                        "e.g. --config.features.source=clip:openai/clip-vit-base-patch32")
    return kind, name


def temi_config() -> ml_collections.ConfigDict:
    """The `temi` fields of the base config; defaults are the official README's CIFAR command."""
    c = ml_collections.ConfigDict()
    c.num_heads = 16  # H independent heads; the one with the lowest training loss is used
    c.beta = 0.6  # the PMI's exponent (Eq. 7)
    c.knn = 50  # each example's partner is one of its knn nearest neighbours (cosine), drawn each epoch
    c.student_temp = 0.1
    c.teacher_temp = 0.1
    c.warmup_teacher_temp = 0.1  # linear from this to teacher_temp over warmup_teacher_temp_epochs
    c.warmup_teacher_temp_epochs = 30
    c.momentum_teacher = 0.996  # EMA of the teacher, cosine from this to max_momentum_teacher over the run
    c.max_momentum_teacher = 0.996
    c.probs_momentum = 0.9  # EMA of the cluster marginals p_h(k)
    c.hidden_dim = 512
    c.bottleneck_dim = 256
    c.nlayers = 2
    c.freeze_last_layer_epochs = 1  # the last layer is not updated during the first epochs
    c.min_learning_rate = 1e-4  # the cosine schedule's end (official min_lr; scaled by batch_size / 256)
    c.embed_norm = False  # standardise each feature dimension (dataset mean / std) before the heads
    c.l2_norm = False  # L2-normalise the features before the heads
    c.positive_pmi = False  # clip the PMI at 0
    c.kmeans_baseline = True  # also cluster the same features with scikit-learn's k-means, in metrics.json
    c.knn_query_block = 1024  # exact kNN: queries per block (memory: block / devices x key_chunk floats)
    c.knn_key_chunk = 8192
    return c


_POSITIVE = ("num_heads", "knn", "hidden_dim", "bottleneck_dim", "nlayers", "knn_query_block", "knn_key_chunk")
_UNIT = ("momentum_teacher", "max_momentum_teacher", "probs_momentum")


def check_config(config) -> None:
    t = config.temi
    parse_source(config.features.source)
    for f in _POSITIVE:
        if not isinstance(t[f], int) or t[f] < 1:
            raise UserError(f"temi.{f}={t[f]!r} must be an integer >= 1; set --config.temi.{f}")
    for f in ("beta", "student_temp", "teacher_temp", "warmup_teacher_temp"):
        if not t[f] > 0:
            raise UserError(f"temi.{f}={t[f]!r} must be > 0; set --config.temi.{f}")
    for f in _UNIT:
        if not 0 <= t[f] <= 1:
            raise UserError(f"temi.{f}={t[f]!r} must be in [0, 1]; set --config.temi.{f}")
    if t.min_learning_rate < 0 or t.warmup_teacher_temp_epochs < 0 or t.freeze_last_layer_epochs < 0:
        raise UserError("temi.min_learning_rate, temi.warmup_teacher_temp_epochs and "
                        "temi.freeze_last_layer_epochs must be >= 0")


def loss_fn(*args, **kwargs):
    raise NotImplementedError("method=temi trains on cached features (ccjax/train/temi.py), "
                              "not through the image step")
