"""Every field of the augmentation, model and method configs reaches what it configures.

For each field the test changes its value and checks that the component changes its output:
- augment.* and augment2.*: the two views CC's objective hands to the model (the real path:
  view_augment_config -> augment_batch inside the objective), with view 2 inheriting view 1's
  value unless augment2 sets its own; an augment2 field moves view 2 only;
- model.*, anchor.enabled/project, dtype: the built model's parameter shapes, or its outputs;
- method, loss.*, gecc.*: the loss of the method's objective on one fixed batch, key and model;
- temi.*: the heads' parameter shapes, or two epochs of TEMI on fixed features (the last epoch's
  per-head losses and the final clustering), through fit_features, the path the run's pieces share.

Fields read elsewhere or only for bookkeeping are listed below with where and why, so that a new
field fails `test_every_field_is_classified` until someone says what it reaches.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ccjax.augment import augment_config
from ccjax.config import get_base_config
from ccjax.methods import METHODS
from ccjax.models import build_model
from ccjax.run.rundir import BOOKKEEPING_FIELDS, flatten

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("method", "dtype", "model.", "anchor.", "loss.", "gecc.", "augment.", "augment2.", "temi.", "features.")

# field -> (the base changes that let it act, its new value)
AUGMENT_CASES = {
    "image_size": ({}, 24),
    "crop_scale": ({}, (0.2, 0.4)),
    "crop_ratio": ({}, (0.5, 2.0)),
    "flip_p": ({}, 1.0),
    "jitter_p": ({}, 0.0),
    "brightness": ({}, 0.9),
    "contrast": ({}, 0.9),
    "saturation": ({}, 0.9),
    "hue": ({}, 0.45),
    "grayscale_p": ({}, 1.0),
    "blur_p": ({}, 1.0),
    "blur_sigma": ({"blur_p": 1.0}, (3.0, 4.0)),
    "solarize_p": ({}, 1.0),
    "noise_std": ({}, 0.2),
    "mean": ({}, (0.5, 0.4, 0.3)),
    "std": ({}, (2.0, 1.5, 3.0)),
    "always_gray": ({}, True),
    "standardize": ({}, True),
    "invert_p": ({}, 1.0),
    "border_p": ({}, 1.0),
    "border_width": ({"border_p": 1.0}, 0.5),
}
# model field -> (backbone of the base model, its new value, what changes: 'shapes' or 'outputs')
MODEL_CASES = {
    "model.backbone": ("convnet", "resnet18", "shapes"),
    "model.stem": ("resnet18", "small", "shapes"),
    "model.feature_dim": ("convnet", 12, "shapes"),
    "model.convnet_width": ("convnet", 6, "shapes"),
    "model.vit.embed_dim": ("vit", 32, "shapes"),
    "model.vit.depth": ("vit", 3, "shapes"),
    "model.vit.num_heads": ("vit", 4, "outputs"),
    "model.vit.patch_size": ("vit", 4, "shapes"),
    "model.vit.mlp_ratio": ("vit", 3.0, "shapes"),
    "model.vit.num_fusing_blocks": ("vit", 0, "outputs"),
    "model.vit.fusion": ("vit", "none", "outputs"),
    "anchor.enabled": ("vit", True, "outputs"),
    "anchor.project": ("vit", True, "shapes"),
    "dtype": ("convnet", "bfloat16", "outputs"),
}
# method field -> (base changes, new value); the loss of the base's objective must change
METHOD_CASES = {
    "method": ({}, "gecc"),
    "loss.instance_temperature": ({}, 0.2),
    "loss.cluster_temperature": ({}, 0.3),
    "gecc.reference": ({"method": "gecc"}, "aug"),
    "gecc.weights": ({"method": "gecc"}, "none"),
    "gecc.lambda_instance": ({"method": "gecc"}, 0.3),
    "gecc.lambda_cluster": ({"method": "gecc"}, 0.3),
    "gecc.schedule_stages": ({"method": "gecc"}, 1),  # t: 0.1 -> 1 at epoch 0 of 10
    "gecc.positions": ({"method": "gecc", "gecc.schedule_stages": 1, "model.backbone": "vit"}, "stem_and_stages"),
    "gecc.reference_input": ({"method": "gecc"}, "clean"),
}
# temi field -> (base changes, new value): the heads' parameter shapes must change
TEMI_SHAPE_CASES = {
    "temi.num_heads": ({}, 3),
    "temi.hidden_dim": ({}, 12),
    "temi.bottleneck_dim": ({}, 6),
    "temi.nlayers": ({}, 3),
}
# temi field -> (base changes, new value): two epochs of TEMI on fixed features must change
TEMI_CASES = {
    "temi.beta": ({}, 1.0),
    "temi.student_temp": ({}, 0.2),
    "temi.teacher_temp": ({"temi.warmup_teacher_temp_epochs": 0}, 0.2),
    "temi.warmup_teacher_temp": ({}, 0.05),  # epoch 0 of a 30-epoch warm-up
    "temi.warmup_teacher_temp_epochs": ({"temi.warmup_teacher_temp": 0.05}, 0),
    "temi.momentum_teacher": ({}, 0.5),
    "temi.max_momentum_teacher": ({}, 0.5),
    "temi.probs_momentum": ({}, 0.5),
    "temi.freeze_last_layer_epochs": ({}, 0),
    "temi.min_learning_rate": ({}, 0.0),
    "temi.embed_norm": ({}, True),
    "temi.l2_norm": ({}, True),
    "temi.positive_pmi": ({}, True),
    "temi.knn": ({}, 3),
}
# Read elsewhere, with the test that shows it (the file and test must exist).
ELSEWHERE = {
    "anchor.model": ("the CLIP encoder that computes the anchors (ccjax/clip/)",
                     "tests/test_anchors.py::test_embeddings_equal_unbatched_clip_and_cache_round_trip"),
    "model.vit.bn_unbiased_running_var": (
        "the running variance a training step leaves (outputs in train mode do not change)",
        "tests/test_official_goldens.py::test_released_vit_train_matches_including_running_statistics"),
    "features.source": ("the frozen encoder whose features TEMI clusters (ccjax/features/encoders.py)",
                        "tests/test_temi_run.py::test_clip_source_is_the_anchor_embedding"),
    "temi.kmeans_baseline": ("the k-means baseline in metrics.json (ccjax/train/temi.py)",
                             "tests/test_temi_run.py::test_temi_on_a_run_resumes_exactly_and_predicts_like_it_evaluates"),
}
# Only bookkeeping: how the anchors or features are computed or where they are cached, not what they are.
BOOKKEEPING = {
    "anchor.batch_size": "images per step of the anchor pass",
    "anchor.cache_dir": "where the anchor cache is kept",
    "features.batch_size": "images per step of the features pass",
    "features.cache_dir": "where the features cache is kept",
    # exact kNN: the same neighbours for any block and chunk (tests/test_temi_knn.py), and a run
    # reads its kNN back from <workdir>/knn.npz, keyed by the features and temi.knn only
    "temi.knn_query_block": "queries per block of the exact kNN",
    "temi.knn_key_chunk": "keys per chunk of the exact kNN",
}


def section_fields() -> set[str]:
    flat = flatten(get_base_config().to_dict())
    return {k for k in flat if any(k == s or k.startswith(s) for s in SECTIONS)}


def test_every_field_is_classified():
    cases = {f"augment.{k}" for k in AUGMENT_CASES} | {f"augment2.{k}" for k in AUGMENT_CASES}
    cases |= set(MODEL_CASES) | set(METHOD_CASES) | set(TEMI_SHAPE_CASES) | set(TEMI_CASES)
    assert not cases & (set(ELSEWHERE) | set(BOOKKEEPING))
    assert section_fields() == cases | set(ELSEWHERE) | set(BOOKKEEPING), (
        "a config field is neither checked here nor classified: add a case or say where it is read")
    for field in BOOKKEEPING:  # a run may change these and resume: they change nothing computed
        assert any(field == f or (f.endswith(".") and field.startswith(f)) for f in BOOKKEEPING_FIELDS), field
    for _, where in ELSEWHERE.values():
        path, name = where.split("::")
        with open(os.path.join(ROOT, path)) as f:
            assert f"def {name}(" in f.read(), where


# ----------------------------------------------------------------------------- augmentation, through the objective
class ViewRecorder:
    """A model (duck-typed: `apply` only) that keeps the views the objective hands it."""

    def __init__(self):
        self.views = None

    def apply(self, variables, views, anchors=None, *, train, shift_hook=None, mutable=()):
        self.views = [np.asarray(v) for v in views]
        b = views[0].shape[0]
        out = dict(z=jnp.full((b, 4), 0.5), c=jnp.full((b, 3), 1 / 3), h=jnp.zeros((b, 4)))
        return [out] * len(views), {}


IMAGES = jnp.asarray(np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)), jnp.uint8)


def objective_views(changes: dict) -> list[np.ndarray]:
    """The two views CC's objective builds from IMAGES with the base pipeline plus `changes`
    ({'augment.flip_p': 1.0, 'augment2.hue': 0.3, ...}), with one fixed key."""
    c = get_base_config()
    c.augment = augment_config(image_size=20, crop_scale=(0.5, 1.0))  # 20: the blur kernel is 3 wide
    for field, value in changes.items():
        section, name = field.split(".")
        c[section][name] = value
    model = ViewRecorder()
    METHODS["cc"].loss_fn({}, {}, model=model, config=c, images=IMAGES, anchors=None,
                          rng=jax.random.key(3), epoch=jnp.int32(0))
    return model.views


def differs(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape != b.shape or not np.allclose(a, b, atol=1e-5)


@pytest.fixture(scope="module")
def base_views():
    return objective_views({})


@pytest.mark.parametrize("name", sorted(AUGMENT_CASES))
def test_augment_field_reaches_both_views_and_augment2_view_2_only(name, base_views):
    setup, value = AUGMENT_CASES[name]
    base = objective_views({f"augment.{k}": v for k, v in setup.items()}) if setup else base_views
    one = objective_views({**{f"augment.{k}": v for k, v in setup.items()}, f"augment.{name}": value})
    assert differs(one[0], base[0]), f"augment.{name} does not change view 1"
    assert differs(one[1], base[1]), f"augment.{name} does not reach view 2 (inherited)"
    two = objective_views({**{f"augment.{k}": v for k, v in setup.items()}, f"augment2.{name}": value})
    np.testing.assert_array_equal(two[0], base[0], err_msg=f"augment2.{name} changes view 1")
    assert differs(two[1], base[1]), f"augment2.{name} does not change view 2"


# ----------------------------------------------------------------------------- the model
def model_config(backbone: str):
    c = get_base_config()
    c.model.backbone = backbone
    c.model.feature_dim = 8
    c.model.convnet_width = 4
    c.model.vit.update(embed_dim=16, depth=2, num_heads=2, patch_size=8, mlp_ratio=2.0, num_fusing_blocks=1)
    return c


def set_field(c, field: str, value) -> None:
    *parents, name = field.split(".")
    node = c
    for p in parents:
        node = node[p]
    node[name] = value


def model_outputs(c, outputs: bool) -> tuple[dict, list | None]:
    """(parameter shapes, the outputs of two views or None) of the model `c` builds, with fixed inputs.
    Shapes come from tracing alone (jax.eval_shape); outputs run un-jitted (a tiny model: cheaper than
    compiling it)."""
    model = build_model(c, num_clusters=3)
    rng = np.random.default_rng(1)
    views = [jnp.asarray(rng.normal(size=(2, 16, 16, 3)), jnp.float32) for _ in range(2)]
    anchors = jnp.asarray(rng.normal(size=(2, 16)), jnp.float32) if c.anchor.enabled else None
    def init(key):
        return model.init(key, views, anchors, train=False)

    shapes = jax.tree.map(lambda x: x.shape, jax.eval_shape(init, jax.random.key(0)))
    if not outputs:
        return shapes, None
    variables = init(jax.random.key(0))
    return shapes, jax.device_get(model.apply(variables, views, anchors, train=False))


@pytest.mark.parametrize("field", sorted(MODEL_CASES))
def test_model_field_changes_the_model(field):
    backbone, value, what = MODEL_CASES[field]
    c = model_config(backbone)
    if field == "anchor.project":
        c.anchor.enabled = True  # anchors of width 16 = embed_dim, so without projection none is built
    shapes, outs = model_outputs(c, what == "outputs")
    set_field(c, field, value)
    new_shapes, new_outs = model_outputs(c, what == "outputs")
    if what == "shapes":
        assert new_shapes != shapes, f"{field} does not change the parameters"
    else:
        assert new_shapes == shapes
        changed = any(differs(np.asarray(a[k], np.float32), np.asarray(b[k], np.float32))
                      for a, b in zip(outs, new_outs) for k in ("z", "c"))
        assert changed, f"{field} does not change the model's outputs"


# ----------------------------------------------------------------------------- the method
def method_loss(changes: dict) -> float:
    """The loss of `config.method`'s objective with the base config plus `changes`, on one batch, key
    and initialisation (a tiny ConvNet, or ViT with changes['model.backbone'] = 'vit')."""
    return _method_loss(tuple(sorted(changes.items())))


@functools.lru_cache(maxsize=None)  # several fields share one base setup: its loss is computed once
def _method_loss(items: tuple) -> float:
    changes = dict(items)
    c = model_config("convnet")
    c.augment = augment_config(image_size=16, crop_scale=(0.5, 1.0))
    c.num_epochs = 10
    for field, value in changes.items():
        set_field(c, field, value)
    model = build_model(c, num_clusters=3)
    images = IMAGES
    x = jnp.zeros((2, 16, 16, 3))
    variables = dict(model.init(jax.random.key(0), [x, x], train=False))  # un-jitted: cheaper than compiling
    params = variables.pop("params")
    objective = METHODS[c.method]
    loss = jax.jit(lambda p, s: objective.loss_fn(p, s, model=model, config=c, images=images, anchors=None,
                                                  rng=jax.random.key(4), epoch=jnp.int32(0))[0])
    return float(loss(params, variables))


@pytest.mark.parametrize("field", sorted(METHOD_CASES))
def test_method_field_changes_the_loss(field):
    setup, value = METHOD_CASES[field]
    before = method_loss(setup)
    after = method_loss({**setup, field: value})
    assert np.isfinite(before) and np.isfinite(after)
    assert not np.isclose(before, after, rtol=1e-6, atol=0), f"{field} does not change the loss"


# ----------------------------------------------------------------------------- TEMI's heads on frozen features
FEATURES = np.random.default_rng(2).normal(size=(32, 6)).astype(np.float32) + 0.5  # offset: embed_norm acts


def temi_config(changes: dict):
    c = get_base_config()
    c.method = "temi"
    c.batch_size = 16  # 2 steps per epoch
    c.num_epochs = 2
    c.learning_rate = 1e-2
    c.temi.update(num_heads=2, hidden_dim=8, bottleneck_dim=4, knn=4)
    for field, value in changes.items():
        set_field(c, field, value)
    return c


@pytest.mark.parametrize("field", sorted(TEMI_SHAPE_CASES))
def test_temi_field_changes_the_heads(field):
    def shapes(changes):
        module = build_model(temi_config(changes), num_clusters=3)
        init = functools.partial(module.init, views=[None], anchors=jnp.zeros((2, 6)), train=False)
        return jax.tree.map(lambda x: x.shape, jax.eval_shape(init, jax.random.key(0)))

    setup, value = TEMI_SHAPE_CASES[field]
    assert shapes({**setup, field: value}) != shapes(setup), f"{field} does not change the heads"


@functools.lru_cache(maxsize=None)
def _temi_result(items: tuple) -> np.ndarray:
    """The last epoch's per-head losses and the final cluster probabilities of two TEMI epochs on
    FEATURES (exact kNN, fixed seed), un-jitted: each config would compile its own epoch otherwise."""
    from ccjax.runtime.mesh import make_mesh
    from ccjax.train.temi import assign_features, fit_features

    with jax.disable_jit():
        state, module, losses = fit_features(temi_config(dict(items)), FEATURES, 3, make_mesh(jax.devices()[:1]))
        probs = assign_features(module, state, FEATURES)
    return np.concatenate([np.asarray(losses, np.float32).ravel(), probs.ravel()])


@pytest.mark.parametrize("field", sorted(TEMI_CASES))
def test_temi_field_changes_training(field):
    setup, value = TEMI_CASES[field]
    before = _temi_result(tuple(sorted(setup.items())))
    after = _temi_result(tuple(sorted({**setup, field: value}.items())))
    assert np.isfinite(before).all() and np.isfinite(after).all()
    assert differs(after, before), f"{field} does not change TEMI's training or its clustering"
