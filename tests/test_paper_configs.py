"""Every paper config `configs/<method>_<dataset>.py` holds the settings its paper states.

The expected values below were written from the papers, not from the configs,
so that a change to a shared preset (ccjax/config.py: get_base_config,
vit_paper_config, augment_config) cannot silently move a paper config. Each
row cites the section or table of the paper that states the value. A value a
paper does not state is left out of its rows (the comments say which).

Where a config disagrees with its paper, the row still expects the paper's
value and is marked xfail(strict=True) with the reason "<config value> vs
paper <value>, <section>": the suite stays green, the disagreement stays on
record, and the xfail turns into a failure the day the config is changed to
agree (then drop the `disagreement`).

Sources:
- CC: Li et al., "Contrastive Clustering", AAAI 2021 (the authors' copy, the
  AAAI camera-ready text; sections "Pair Construction Backbone", "Datasets",
  Table 1, "Implementation Details", Table 5).
- GeCC: Chen et al., "Generalized Contrastive Clustering with Domain Shifts
  Modeling", AAAI 2025 (/work/shared/papers/gecc.txt).
- MFAVBs-CC: Wang et al., "Improve Contrastive Clustering Performance by
  Multiple Fusing-Augmenting ViT Blocks" (/work/shared/papers/mfavbs_cc.txt).
- VTCC: the VTCC paper (Ling et al. 2022) is not among the papers, so the vtcc_*
  rows hold what the MFAVBs-CC paper says of its VTCC baseline.

Fields: a dotted config path (`model.vit.depth`), or one of these derived ones:
- `view1.<f>` / `view2.<f>`: augmentation field <f> of view 1 / view 2's
  resolved pipeline (ccjax.config.view_augment_config);
- `view2_changes`: {field: view 2's value} for every field where view 2
  differs from view 1;
- `clusters`: dataset.num_clusters, with -1 resolved to the catalog's number
  of classes of dataset.name;
- `patch_grid`: patches per image, (augment.image_size / model.vit.patch_size)^2.

Configs only: no model is built, no data is read.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import importlib.util
import math
import os
from typing import Any

import pytest

from ccjax.config import view_augment_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "configs")


# ---------------------------------------------------------------------------
# Expectations that are not a single value.


class Matcher:
    def matches(self, actual: Any) -> bool:
        raise NotImplementedError


class _Used(Matcher):
    """An augmentation the paper applies, at a probability or strength it does not give: > 0."""

    def matches(self, actual):
        return _is_number(actual) and actual > 0

    def __repr__(self):
        return "USED (> 0; the paper gives no number)"


class _RandomCrop(Matcher):
    """A random resized crop of unstated scale: crop_scale (lo, hi) with lo < hi <= 1."""

    def matches(self, actual):
        lo, hi = (float(v) for v in actual)
        return 0 < lo < hi <= 1

    def __repr__(self):
        return "RANDOM_CROP (crop_scale lo < hi <= 1)"


class _NoCrop(Matcher):
    """No random crop: the whole image is kept (crop_scale (1, 1))."""

    def matches(self, actual):
        return tuple(float(v) for v in actual) == (1.0, 1.0)

    def __repr__(self):
        return "NO_CROP (crop_scale (1.0, 1.0))"


@dataclasses.dataclass(frozen=True)
class Contains(Matcher):
    text: str

    def matches(self, actual):
        return isinstance(actual, str) and self.text in actual.lower()


USED = _Used()
RANDOM_CROP = _RandomCrop()
NO_CROP = _NoCrop()


# ---------------------------------------------------------------------------
# The table.


@dataclasses.dataclass(frozen=True)
class Row:
    field: str
    expected: Any
    source: str  # the paper's section or table that states it
    disagreement: str | None = None  # "<config value> vs paper <value>": xfail(strict) with the source


def views(field: str, expected: Any, source: str, disagreement: str | None = None) -> list[Row]:
    """The same expectation for view 1's and view 2's resolved pipelines."""
    return [Row(f"view{v}.{field}", expected, source, disagreement) for v in (1, 2)]


# --- CC (Li et al., AAAI 2021) ----------------------------------------------
CC_IMPL = "CC, Implementation Details"
CC_PCB = "CC, Pair Construction Backbone"
CC_DATA = "CC, Datasets / Table 1"
CC_COMMON = [
    # "L = Lins + Lclu" (Eq. 7): CC's instance + cluster losses.
    Row("objective", "cc", "CC, Eq. 7"),
    # "we simply resize all input images to the size of 224 x 224, and no modification
    # is applied to the standard ResNet": standard 7x7/2 + max-pool stem at 224.
    Row("model.stem", "imagenet", CC_IMPL),
    *views("image_size", 224, CC_IMPL),
    # "the dimensionality of the row space is set to 128"
    Row("model.feature_dim", 128, CC_IMPL),
    # "the instance-level temperature parameter tau_I is fixed to 0.5 in all experiments"
    Row("loss.instance_temperature", 0.5, CC_IMPL),
    # "the cluster-level temperature parameter tau_C = 1.0 is used for all datasets"
    Row("loss.cluster_temperature", 1.0, CC_IMPL),
    # "The Adam optimizer with an initial learning rate of 0.0003 ... No weight decay or scheduler is used."
    Row("learning_rate", 3e-4, CC_IMPL),
    Row("weight_decay", 0.0, CC_IMPL),
    Row("lr_schedule", "constant", CC_IMPL),
    Row("warmup_epochs", 0, CC_IMPL),
    # "The batch size is set to 256 ... we train the model from scratch for 1,000 epochs"
    Row("batch_size", 256, CC_IMPL),
    Row("num_epochs", 1000, CC_IMPL),
    # "five types of data augmentation methods are used, including ResizedCrop, ColorJitter,
    # Grayscale, HorizontalFlip, and GaussianBlur ... each augmentation is applied independently
    # with a certain probability following the setting in SimCLR. ResizedCrop crops an image to a
    # random size ...; ColorJitter changes the brightness, contrast, and saturation".
    # No probabilities or strengths are given (hue is not mentioned): only "used" is checked.
    *views("crop_scale", RANDOM_CROP, CC_PCB),
    *views("flip_p", USED, CC_PCB),
    *views("jitter_p", USED, CC_PCB),
    *views("brightness", USED, CC_PCB),
    *views("contrast", USED, CC_PCB),
    *views("saturation", USED, CC_PCB),
    *views("grayscale_p", USED, CC_PCB),
    # "two stochastic data transformations T^a, T^b sampled from the same family of augmentations"
    Row("view2_changes", {}, CC_PCB),
]
# "we leave the GaussianBlur augmentation out for the small image collections including
# CIFAR-10, CIFAR-100, STL-10, and Tiny-ImageNet" (and use it, at an unstated probability, on the others).
CC_NO_BLUR = views("blur_p", 0.0, CC_IMPL)
CC_BLUR = views("blur_p", USED, f"{CC_PCB} + {CC_IMPL}")
# "we adopt ResNet34 as the backbone network" (all datasets; Table 5's ResNet18 on ImageNet-10
# is an ablation, the reported ImageNet-10 result 0.859/0.893/0.822 is ResNet34's).
CC_RESNET34 = Row("model.backbone", "resnet34", CC_IMPL)

# --- GeCC (Chen et al., AAAI 2025) ------------------------------------------
GECC_IMPL = "GeCC, Implementation Details"
GECC_DATA = "GeCC, Datasets / Table 1"
GECC_CDSM = "GeCC, Cluster-guided Domain Shifts Modeling"
GECC_OBJ = "GeCC, Objective Function"
GECC_COMMON = [
    # "L = lambda_1 L_ins + lambda_2 L_cls" (Eq. 14)
    Row("objective", "gecc", GECC_OBJ),
    # "we integrate the branch that learns P^1 with CDSM to obtain the reference embedding P^d"
    Row("gecc.reference", "cdsm", GECC_CDSM),
    # domain attention weight W_z (Eq. 6) and distribution attention weight W_c (Eq. 10), both
    # used by the full method (Table 3, "Ours" vs "w/o W", "w W_c", "w W_z").
    Row("gecc.weights", "both", "GeCC, Eqs. 6, 8, 10, 11 / Table 3"),
    # "CDSM is performed at a probability t = (epoch // 100 + 1) x 0.1": with E = 1000 epochs,
    # 1000 / 100 = 10 stages of t (ccjax: t = 0.1 * (epoch // (E / stages) + 1)).
    Row("gecc.schedule_stages", 10, f"{GECC_CDSM} + {GECC_IMPL} (E = 1000)"),
    # "lambda_1 and lambda_2 are set to 1 on all experimental datasets"
    Row("gecc.lambda_instance", 1.0, GECC_OBJ),
    Row("gecc.lambda_cluster", 1.0, GECC_OBJ),
    # "The row dimension of the instance representation is set to 128"
    Row("model.feature_dim", 128, GECC_IMPL),
    # "Adam optimizer with learning rate of 0.0003" (no word on schedule or weight decay: not checked)
    Row("learning_rate", 3e-4, GECC_IMPL),
    # "The size of mini-batch is set as 256. We train the network for E = 1000 epochs."
    Row("batch_size", 256, GECC_IMPL),
    Row("num_epochs", 1000, GECC_IMPL),
    # "The temperature for instance and cluster representation contrastive are fixed to 0.5 and 1.0"
    Row("loss.instance_temperature", 0.5, GECC_IMPL),
    Row("loss.cluster_temperature", 1.0, GECC_IMPL),
    # "we first resize all input images to the size of 224x224, then perform flip, color jitter,
    # grayscale and GaussianBlur in sequence" -- no crop in the list; no probabilities or
    # strengths given. The stem is not stated (not checked).
    *views("image_size", 224, GECC_IMPL),
    *views("crop_scale", NO_CROP, GECC_IMPL, disagreement="crop_scale (0.08, 1.0) (random resized crop) vs paper "
           "no crop ('resize all input images to 224x224, then perform flip, color jitter, grayscale and "
           "GaussianBlur'); kept on purpose: GeCC builds on CC's code, whose pipeline starts with "
           "RandomResizedCrop (docs/gecc.md, Configs)"),
    *views("flip_p", USED, GECC_IMPL),
    *views("jitter_p", USED, GECC_IMPL),
    *views("grayscale_p", USED, GECC_IMPL),
    # one "predefined augmentation" gives both views X^1, X^2 ("Generalized Contrastive Clustering")
    Row("view2_changes", {}, f"{GECC_IMPL} + GeCC, Generalized Contrastive Clustering"),
]
# "For small image datasets including CIFAR-10 and CIFAR-100, we leave out the GaussianBlur augmentation."
GECC_NO_BLUR = views("blur_p", 0.0, GECC_IMPL)
GECC_BLUR = views("blur_p", USED, GECC_IMPL)
# "We adopt the same backbone encoder ResNet-34 for all datasets except ImageNet-10, which shows
# better performance with ResNet-18."
GECC_RESNET34 = Row("model.backbone", "resnet34", GECC_IMPL)
GECC_RESNET18 = Row("model.backbone", "resnet18", GECC_IMPL)

# --- MFAVBs-CC (Wang et al.) --------------------------------------------------
MF_41 = "MFAVBs-CC, Sec. 4.1"
MF_45 = "MFAVBs-CC, Sec. 4.5"
MF_46 = "MFAVBs-CC, Sec. 4.6"
MF_DATA = "MFAVBs-CC, Table 1"
MFAVBS_COMMON = [
    # "L = L_I^a + L_I^b + L_C^a + L_C^b" (Eq. 7): CC's losses ("a similar approach to CC")
    Row("objective", "cc", "MFAVBs-CC, Sec. 3.3, Eq. 7"),
    # "We adopt the ViT-small model for training and use 8-layer ViT blocks, meaning the number N
    # of FAVBs is 4. ... we set the embedding dimension of vit-small to 512."
    Row("model.backbone", "vit", MF_41),
    Row("model.vit.depth", 8, MF_41),
    Row("model.vit.num_fusing_blocks", 4, f"{MF_41} + Sec. 4.6.2"),
    Row("model.vit.embed_dim", 512, MF_41),
    # The only head count in the paper: Sec. 4.5's memory estimate, "assume batch size B=128, h=8 heads".
    Row("model.vit.num_heads", 8, MF_45),
    # T = P + 2 tokens (Sec. 3.4) and "T=198 tokens ... doubling the sequence length to 2T=396"
    # (Sec. 4.5): P = 196 patches. The image size and patch size are not stated separately.
    Row("patch_grid", 196, "MFAVBs-CC, Sec. 3.4 + Sec. 4.5"),
    # features of the two augmentations "concatenated along the token dimension" then split (Eqs. 1-2)
    Row("model.vit.fusion", "tokens", "MFAVBs-CC, Sec. 3.2"),
    # the frozen CLIP image-[CLS] embedding inserted as a token; "no extra projection is required".
    # The CLIP variant is not named, only its 512-d image feature (Sec. 4.1).
    Row("anchor.enabled", True, "MFAVBs-CC, Sec. 3.4"),
    Row("anchor.model", Contains("clip"), "MFAVBs-CC, Sec. 3.4"),
    Row("anchor.project", False, "MFAVBs-CC, Sec. 3.4"),
    # "MFAVBs-CC underwent 500 training iterations with a stack size of 128" (sic: 500 epochs,
    # batch 128; Sec. 4.5 "assume batch size B=128").
    Row("batch_size", 128, f"{MF_41} + Sec. 4.5"),
    Row("num_epochs", 500, MF_41),
    # Not stated: learning rate, temperatures, instance feature dim, image size, jitter strengths,
    # blur probability and sigma (not checked).
    # "The first augmentation pipeline includes: random cropping with a scale range of 8% to 100%,
    # Color Jitter with an 80% probability, Random Grayscale with a 20% probability, Gaussian blur,
    # and Random Horizontal Flip."
    *views("crop_scale", (0.08, 1.0), MF_46),
    *views("jitter_p", 0.8, MF_46),
    *views("grayscale_p", 0.2, MF_46),
    *views("blur_p", USED, MF_46),
    *views("flip_p", USED, MF_46),
    # T^a has no Solarize (Sec. 3.1); "The second pipeline builds upon the first by additionally
    # incorporating a Solarize transformation with a 20% probability."
    Row("view1.solarize_p", 0.0, "MFAVBs-CC, Sec. 3.1"),
    Row("view2_changes", {"solarize_p": 0.2}, f"MFAVBs-CC, Sec. 3.1 + {MF_46}"),
]

# --- VTCC, as the MFAVBs-CC paper describes its baseline ----------------------
VTCC_COMMON = [
    # "VTCC, which builds upon CC, substitutes the backbone with ViT blocks"
    Row("objective", "cc", "MFAVBs-CC, Sec. 2.1"),
    Row("model.backbone", "vit", "MFAVBs-CC, Sec. 2.1"),
    # "a ViT encoder, which is the same as the backbone used in VTCC, consisting of 8 layers of
    # ViT blocks" (Sec. 4.3); "In our baseline VTCC model, each of two branches generates T=198
    # tokens of dimension E=512 and independently passes them through eight blocks" (Sec. 4.5).
    Row("model.vit.depth", 8, "MFAVBs-CC, Sec. 4.3 + Sec. 4.5"),
    Row("model.vit.embed_dim", 512, MF_45),
    Row("model.vit.num_heads", 8, MF_45),
    # the same 224/16 token grid as MFAVBs-CC's (T = 198 per branch, Sec. 4.5; T = P + 2, Sec. 3.4)
    Row("patch_grid", 196, MF_45),
    # "When feature fusion is absent (i.e., N=0), it serves as the baseline method VTCC."
    Row("model.vit.num_fusing_blocks", 0, "MFAVBs-CC, Sec. 4.6.2"),
    # MethodB = "the backbone used in VTCC" + the CLIP features: VTCC itself has no CLIP anchor.
    Row("anchor.enabled", False, "MFAVBs-CC, Sec. 4.3"),
    # Sec. 4.5's VTCC-vs-MFAVBs-CC memory comparison: "assume batch size B=128".
    Row("batch_size", 128, MF_45),
    # Not stated for VTCC ("the optimal hyperparameters recommended in the respective original
    # publications were used", Sec. 4.2): learning rate, epochs, temperatures, feature dim,
    # augmentation (not checked).
]


def dataset(name: str, clusters: int, source: str) -> list[Row]:
    return [Row("dataset.name", name, source), Row("clusters", clusters, source)]


# Dataset names are ccjax's catalog names for the papers' datasets.
TABLE: dict[str, list[Row]] = {
    # CC Table 1: CIFAR-10 Train+Test 60,000 / 10; CIFAR-100 Train+Test 60,000 / 20 ("its 20
    # super-classes rather than 100 classes are taken as the ground-truth"); ImageNet-10 Train
    # 13,000 / 10; ImageNet-Dogs Train 19,500 / 15.
    "cc_cifar10": [*CC_COMMON, CC_RESNET34, *CC_NO_BLUR, *dataset("cifar10", 10, CC_DATA)],
    "cc_cifar100": [*CC_COMMON, CC_RESNET34, *CC_NO_BLUR, *dataset("cifar100_20", 20, CC_DATA)],
    "cc_imagenet10": [
        *CC_COMMON,
        CC_RESNET34,
        *CC_BLUR,
        *dataset("imagenet10", 10, CC_DATA),
    ],
    "cc_imagenet_dogs": [*CC_COMMON, CC_RESNET34, *CC_BLUR, *dataset("imagenet_dogs", 15, CC_DATA)],
    # GeCC Table 1: the same four datasets, splits and class counts as CC's.
    "gecc_cifar10": [*GECC_COMMON, GECC_RESNET34, *GECC_NO_BLUR, *dataset("cifar10", 10, GECC_DATA)],
    "gecc_cifar100": [*GECC_COMMON, GECC_RESNET34, *GECC_NO_BLUR, *dataset("cifar100_20", 20, GECC_DATA)],
    "gecc_imagenet10": [*GECC_COMMON, GECC_RESNET18, *GECC_BLUR, *dataset("imagenet10", 10, GECC_DATA)],
    "gecc_imagenet_dogs": [*GECC_COMMON, GECC_RESNET34, *GECC_BLUR, *dataset("imagenet_dogs", 15, GECC_DATA)],
    # MFAVBs-CC Table 1: RSOD 976 / 4, UC-Merced 2,100 / 21, SIRI-WHU 2,400 / 12, AID 10,000 / 30,
    # ImageNet10 13,000 / 10, CIFAR10 60,000 / 10, CIFAR100 60,000 / 20 (Sec. 4.1: train+test for
    # the CIFARs, train only for ImageNet10).
    "mfavbs_rsod": [*MFAVBS_COMMON, *dataset("rsod", 4, MF_DATA)],
    "mfavbs_uc_merced": [*MFAVBS_COMMON, *dataset("uc_merced", 21, MF_DATA)],
    "mfavbs_siri_whu": [*MFAVBS_COMMON, *dataset("siri_whu", 12, MF_DATA)],
    "mfavbs_aid": [*MFAVBS_COMMON, *dataset("aid", 30, MF_DATA)],
    "mfavbs_imagenet10": [*MFAVBS_COMMON, *dataset("imagenet10", 10, MF_DATA)],
    "mfavbs_cifar10": [*MFAVBS_COMMON, *dataset("cifar10", 10, MF_DATA)],
    "mfavbs_cifar100": [*MFAVBS_COMMON, *dataset("cifar100_20", 20, MF_DATA)],
    # VTCC is run on the same seven datasets (MFAVBs-CC Tables 2 and 4).
    "vtcc_rsod": [*VTCC_COMMON, *dataset("rsod", 4, MF_DATA)],
    "vtcc_uc_merced": [*VTCC_COMMON, *dataset("uc_merced", 21, MF_DATA)],
    "vtcc_siri_whu": [*VTCC_COMMON, *dataset("siri_whu", 12, MF_DATA)],
    "vtcc_aid": [*VTCC_COMMON, *dataset("aid", 30, MF_DATA)],
    "vtcc_imagenet10": [*VTCC_COMMON, *dataset("imagenet10", 10, MF_DATA)],
    "vtcc_cifar10": [*VTCC_COMMON, *dataset("cifar10", 10, MF_DATA)],
    "vtcc_cifar100": [*VTCC_COMMON, *dataset("cifar100_20", 20, MF_DATA)],
}


# ---------------------------------------------------------------------------
# Loading and reading a config.


@functools.lru_cache(maxsize=None)
def load_config(name: str):
    """`configs/<name>.py`'s get_config(), loaded from its path as the command line does."""
    path = os.path.join(CONFIG_DIR, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"ccjax_paper_config_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _num_classes(dataset_name: str) -> int | None:
    from ccjax.data import catalog

    entry = catalog.TFDS_CATALOG.get(dataset_name) or catalog.LOCAL_CATALOG.get(dataset_name)
    return None if entry is None else entry.num_classes


def value_of(config, field: str) -> Any:
    head, _, rest = field.partition(".")
    if head in ("view1", "view2"):
        return getattr(view_augment_config(config, int(head[-1])), rest)
    if field == "view2_changes":
        v1 = view_augment_config(config, 1).to_dict()
        v2 = view_augment_config(config, 2).to_dict()
        return {k: v2[k] for k in v1 if v1[k] != v2[k]}
    if field == "objective":  # the objective module the method trains with (ccjax.methods.METHODS)
        from ccjax.methods import METHODS, cc
        from ccjax.methods.gecc import objective as gecc

        return {cc: "cc", gecc: "gecc"}[METHODS[config.method]]
    if field == "clusters":
        k = config.dataset.num_clusters
        return _num_classes(config.dataset.name) if k == -1 else k
    if field == "patch_grid":
        size, patch = config.augment.image_size, config.model.vit.patch_size
        assert size % patch == 0, f"augment.image_size={size} is not a multiple of model.vit.patch_size={patch}"
        return (size // patch) ** 2
    value = config
    for part in field.split("."):
        value = getattr(value, part)
    return value


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Matcher):
        return expected.matches(actual)
    if isinstance(expected, bool):
        return actual is expected
    if _is_number(expected):
        return _is_number(actual) and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, tuple):
        actual = tuple(actual)
        return len(actual) == len(expected) and all(matches(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and actual.keys() == expected.keys()
                and all(matches(actual[k], expected[k]) for k in expected))
    return actual == expected


# ---------------------------------------------------------------------------
# Tests.


def _cases():
    for name, rows in TABLE.items():
        for row in rows:
            marks = ()
            if row.disagreement:
                # raises=AssertionError: a misspelt field still fails instead of passing as an xfail
                marks = pytest.mark.xfail(strict=True, raises=AssertionError,
                                          reason=f"{row.disagreement}, {row.source}")
            yield pytest.param(name, row, id=f"{name}:{row.field}", marks=marks)


@pytest.mark.parametrize("name,row", _cases())
def test_paper_config_holds_paper_value(name, row):
    actual = value_of(load_config(name), row.field)
    assert matches(actual, row.expected), (
        f"configs/{name}.py: {row.field} = {actual!r}, but {row.source} states {row.expected!r}"
    )


def test_every_paper_config_has_a_row():
    on_disk = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, "*.py"))}
    beyond_the_papers = ("_digits", "_images", "_imagenet50", "_imagenet100", "_imagenet200", "_imagenet1k",
                         "_released",  # mfavbs_released: the released code's model, tests/test_official_goldens.py
                         "temi_run")  # temi_run: TEMI on a finished ccjax run's features, no paper setting
    presets = {"common"}  # configs/common.py: the presets the config files build on, no config itself
    on_disk -= presets
    paper_configs = {n for n in on_disk if not n.endswith(beyond_the_papers) and not n.startswith("_")}
    missing = sorted(paper_configs - TABLE.keys())
    assert not missing, f"paper configs without a row in tests/test_paper_configs.py's TABLE: {missing}"
    stale = sorted(TABLE.keys() - on_disk)
    assert not stale, f"TABLE rows for configs that no longer exist: {stale}"


def test_table_rows_are_unique_and_cited():
    for name, rows in TABLE.items():
        fields = [r.field for r in rows]
        duplicated = sorted({f for f in fields if fields.count(f) > 1})
        assert not duplicated, f"{name}: fields listed twice: {duplicated}"
        assert all(r.source for r in rows), f"{name}: a row without its paper section"


@pytest.mark.parametrize("name", [f"{m}_{d}" for m in ("cc", "gecc")
                                  for d in ("imagenet50", "imagenet100", "imagenet200", "imagenet1k")])
def test_imagenet_scale_configs_carry_scans_settings(name):
    """SCAN's configs/pretext/moco_imagenet*.yml and configs/scan/scan_imagenet_*.yml (github.com/
    wvangansbeke/Unsupervised-Classification): resnet50, features_dim 128, crop_size 224,
    random_resized_crop scale [0.2, 1.0], colour jitter 0.4/0.4/0.4/0.1 at p 0.8, grayscale p 0.2,
    ImageNet mean/std, 100 epochs; the objective stays the config's own method."""
    c = load_config(name)
    assert (c.model.backbone, c.model.feature_dim, c.augment.image_size) == ("resnet50", 128, 224)
    assert tuple(c.augment.crop_scale) == (0.2, 1.0) and c.augment.jitter_p == 0.8 and c.augment.grayscale_p == 0.2
    assert (c.augment.brightness, c.augment.contrast, c.augment.saturation, c.augment.hue) == (0.4, 0.4, 0.4, 0.1)
    assert tuple(c.augment.mean) == (0.485, 0.456, 0.406) and tuple(c.augment.std) == (0.229, 0.224, 0.225)
    assert c.num_epochs == 100 and c.dataset.in_memory == "auto"
    assert c.method == name.split("_")[0] and c.dataset.name == name.split("_")[1]
