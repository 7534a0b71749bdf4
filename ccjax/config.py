"""The base config every `configs/<method>_<dataset>.py` starts from, and `validate(config)`.

Each config file's `get_config()` calls `get_base_config()` (directly or through a
preset of configs/common.py) and changes only what its paper changes. Fields are documented beside each one below
(docs/architecture.md explains how a config becomes a run); `--config.<field>=value` overrides them from the command line
(the config is locked, so a misspelt field is an error).
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from ccjax.augment import AugmentParams
from ccjax.augment.config import AUGMENT_FIELDS, augment_config, augment_overrides_config, view_augment_config
from ccjax.data.catalog import DATASET_DEFAULTS, check_name
from ccjax.data.masking import mask_noise_of
from ccjax.data.opening import in_memory_mode
from ccjax.errors import UserError
from ccjax.methods import METHODS, check_method_config
from ccjax.methods.temi import features_config, temi_config
from ccjax.models import check_model_config

__all__ = [
    "AUGMENT_FIELDS", "LR_SCHEDULES", "augment_config", "augment_overrides_config", "get_base_config",
    "validate", "view_augment_config",
]

LR_SCHEDULES = ("constant", "cosine")
BENCH_DATA = ("synthetic", "real")


def get_base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "cc"  # cc | gecc | vtcc | mfavbs | temi (a head on frozen features): the objective (ccjax/methods/; VTCC and MFAVBs-CC train with CC's)
    c.seed = 0
    c.dtype = "float32"  # float32 | bfloat16 (activations and matmuls; params and losses stay float32)

    # Optimisation (Adam, as both papers).
    c.batch_size = 256  # global, over all devices and hosts
    c.num_epochs = 1000
    c.learning_rate = 3e-4
    c.lr_schedule = "constant"  # constant (both papers) | cosine (decay to 0 over num_epochs)
    c.warmup_epochs = 0  # linear warm-up from 0, for either schedule (capped at num_epochs)
    c.weight_decay = 0.0
    c.grad_clip_norm = 0.0  # 0 = off

    d = DATASET_DEFAULTS  # the defaults of the fields the data modules read (ccjax/data/catalog.py)
    c.dataset = ml_collections.ConfigDict()
    c.dataset.name = d["name"]
    c.dataset.data_dir = placeholder(str)  # TFDS data_dir; None = $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.dataset.manual_dir = placeholder(str)  # ImageNet subsets: the extracted ImageNet train folder
    c.dataset.image_size = d["image_size"]  # storage size for folder datasets; 0 = native
    c.dataset.use_unlabeled = d["use_unlabeled"]  # STL-10: add the 100,000 unlabelled images to training
    c.dataset.num_clusters = d["num_clusters"]  # -1 = number of classes; required for unlabeled data
    # auto: decoded into host memory when that takes <= memory_share of RAM, else streamed
    # from its files in grain workers (docs/datasets.md, "Streaming"); true | false force one.
    c.dataset.in_memory = d["in_memory"]
    c.dataset.memory_share = d["memory_share"]
    c.dataset.stream_workers = d["stream_workers"]  # grain worker processes; -1 = one per core (at most 8); 0 = a thread
    c.dataset.stream_buffer = d["stream_buffer"]  # batches each worker reads ahead
    # MFAVBs-CC Sec. 4.7 / Table 7: one black rectangle of min-max of each image's area before
    # augmentation, fixed per example by (seed, index): ccjax/data/masking.py, docs/mfavbs.md.
    c.dataset.mask_noise = ml_collections.ConfigDict()
    c.dataset.mask_noise.enabled = False
    c.dataset.mask_noise.min_fraction = 0.3
    c.dataset.mask_noise.max_fraction = 0.5
    c.dataset.mask_noise.seed = 0

    c.model = ml_collections.ConfigDict()
    c.model.backbone = "resnet34"  # resnet18 | resnet34 | resnet50 | convnet | vit
    c.model.stem = "imagenet"  # imagenet (7x7/2 + maxpool) | small (3x3/1, for 32x32 inputs)
    c.model.feature_dim = 128  # instance projection size
    c.model.convnet_width = 32
    c.model.vit = ml_collections.ConfigDict()
    c.model.vit.embed_dim = 512
    c.model.vit.depth = 8
    c.model.vit.num_heads = 8
    c.model.vit.patch_size = 16
    c.model.vit.mlp_ratio = 4.0
    c.model.vit.num_fusing_blocks = 0  # N: 0 = VTCC
    c.model.vit.fusion = "tokens"  # tokens (the paper) | none
    # BatchNorm running variance: False = flax's (averages the biased batch variance), True = PyTorch's
    # (the unbiased one, as the released MFAVBs-CC/VTCC code; configs/mfavbs_released.py).
    c.model.vit.bn_unbiased_running_var = False

    c.anchor = ml_collections.ConfigDict()
    c.anchor.enabled = False
    c.anchor.model = "openai/clip-vit-base-patch32"  # hub name or local directory
    c.anchor.project = False  # add a linear map when the CLIP dim differs from the ViT width
    c.anchor.batch_size = 256  # images per step when computing the cache
    c.anchor.cache_dir = placeholder(str)  # None: dataset.data_dir, else ~/.cache/ccjax

    c.loss = ml_collections.ConfigDict()
    c.loss.instance_temperature = 0.5
    c.loss.cluster_temperature = 1.0

    c.gecc = ml_collections.ConfigDict()
    c.gecc.reference = "cdsm"  # cdsm | dsu (the 'w DSU' ablation) | aug (the 'w Aug' ablation)
    c.gecc.weights = "both"  # both | none ('w/o W') | wz ('w W_z' only) | wc ('w W_c' only)
    c.gecc.lambda_instance = 1.0
    c.gecc.lambda_cluster = 1.0
    c.gecc.schedule_stages = 10  # S: t = min(1, (epoch // max(1, E // S) + 1) / S); S = 10 is the paper's, S = 1 t = 1 always
    # What the shift acts on: view1 (the paper's "branch that learns P^1") | fresh (a new augmentation) | clean
    # (the un-augmented image); docs/gecc.md, "The reference view's input"
    c.gecc.reference_input = "view1"
    # Where CDSM/DSU act ("after each convolution block", read two ways; docs/gecc.md):
    # stages (after each backbone stage) | stem_and_stages (also after the stem, as DSU's own code) |
    # first_stage (after the first stage only: a check of docs/results.md, not a reading of the paper)
    c.gecc.positions = "stages"

    c.augment = augment_config()
    c.augment2 = augment_overrides_config()

    # method=temi: a head on frozen features (ccjax/features/, ccjax/methods/temi/, docs/temi.md)
    c.features = features_config()
    c.temi = temi_config()

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 512
    c.eval.every_epochs = 0  # also evaluate during training every N epochs (0 = only at the end)

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every_epochs = 10
    c.checkpoint.keep = 3

    c.bench = ml_collections.ConfigDict()
    c.bench.data = "synthetic"  # synthetic (uint8 noise of the config's shape) | real (input pipeline included)
    c.bench.warmup_steps = 3
    c.bench.steps = 20

    c.log_every_steps = 50
    c.progress_bar = True
    return c


def _number(config, field: str):
    value = config
    for part in field.split("."):
        value = getattr(value, part)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{field}={value!r} must be a number; set --config.{field}")
    return value


# (field, lowest allowed, whether the lowest itself is allowed, what to set it to)
_NUMERIC_FIELDS = (
    ("learning_rate", 0, False, "3e-4"),
    ("num_epochs", 1, True, "100"),
    ("batch_size", 1, True, "256"),
    ("warmup_epochs", 0, True, "0"),
    ("weight_decay", 0, True, "0"),
    ("grad_clip_norm", 0, True, "0 (off)"),
    ("model.feature_dim", 1, True, "128"),
    ("eval.batch_size", 1, True, "512"),
    ("eval.every_epochs", 0, True, "0 (only at the end)"),
    ("checkpoint.every_epochs", 1, True, "10"),
    ("checkpoint.keep", 1, True, "3"),
    ("log_every_steps", 1, True, "50"),
    ("anchor.batch_size", 1, True, "256"),
    ("dataset.image_size", 0, True, "0 (native size)"),
    ("dataset.memory_share", 0, False, "0.5"),
    ("dataset.stream_workers", -1, True, "-1 (one per core)"),
    ("dataset.stream_buffer", 1, True, "2"),
)


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks every field before any work: one UserError line naming the field and a value to use.

    The shared fields here; a method's own fields by its objective module
    (ccjax/methods/, e.g. gecc.*), a backbone's by its model module
    (ccjax/models/, e.g. model.vit.*), the augmentation fields by AugmentParams.
    What depends on the data (num_clusters against the number of examples) is
    checked once the dataset is open (ccjax.train.checks.resolve_num_clusters).
    """
    for field, low, inclusive, hint in _NUMERIC_FIELDS:
        value = _number(config, field)
        if value < low or (value == low and not inclusive):
            bound = f">= {low}" if inclusive else f"> {low}"
            raise UserError(f"{field}={value} must be {bound}; set --config.{field}, e.g. {hint}")
    check_name(config.dataset.name)  # a catalog name or folder:<path>
    k = _number(config, "dataset.num_clusters")
    if k != -1 and k < 2:
        raise UserError(f"dataset.num_clusters={k}: clustering needs at least 2 clusters; set "
                        "--config.dataset.num_clusters=K (K >= 2) or -1 for the number of classes")
    if config.lr_schedule not in LR_SCHEDULES:
        raise UserError(f"lr_schedule={config.lr_schedule!r} is not a schedule; set --config.lr_schedule to one of "
                        f"{', '.join(LR_SCHEDULES)}")
    if config.bench.data not in BENCH_DATA:
        raise UserError(f"unknown bench.data {config.bench.data!r}; set --config.bench.data to one of {', '.join(BENCH_DATA)}")
    in_memory_mode(config.dataset.get("in_memory", "auto"))
    mask_noise_of(config.dataset)  # the masked-noise fractions (MFAVBs-CC Sec. 4.7)
    for view in (1, 2):
        AugmentParams.from_config(view_augment_config(config, view))
    check_model_config(config)
    check_method_config(config)
    # `objective` (cc | gecc) was a field until it was derived from `method`; an old config may still set it.
    if "objective" in config and METHODS.get(config.objective) is not METHODS[config.method]:
        raise UserError(f"objective={config.objective!r} does not match method={config.method!r}: the objective "
                        "now follows the method; remove `objective` from the config")

