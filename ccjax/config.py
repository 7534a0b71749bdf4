"""The shared base every `configs/<method>_<dataset>.py` starts from.

Each config file's `get_config()` calls `get_base_config()` and changes only
what its paper changes. Fields are documented beside each one below
(docs/architecture.md explains how a config becomes a run); `--config.<field>=value` overrides them from the command line
(the config is locked, so a misspelt field is an error).
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from ccjax.augment.params import default_fields
from ccjax.errors import UserError

# The augmentation fields and their defaults (CC's pipeline) are AugmentParams'
# (ccjax/augment/params.py). `augment` is view 1's pipeline (and GeCC's third
# view in its `w Aug` ablation); `augment2` holds view 2's differences only:
# a field left None inherits view 1's value (see `view_augment_config`).
AUGMENT_FIELDS = default_fields()
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's normalisation


def augment_config(**overrides) -> ml_collections.ConfigDict:
    """A full augmentation pipeline config: CC's defaults, then `overrides`."""
    unknown = set(overrides) - set(AUGMENT_FIELDS)
    if unknown:
        raise KeyError(f"unknown augmentation fields {sorted(unknown)}")
    return ml_collections.ConfigDict({**AUGMENT_FIELDS, **overrides})


def digits_augment_config(image_size: int, crop_scale: tuple[float, float]) -> ml_collections.ConfigDict:
    """The pipeline the 8x8 grayscale digits configs share, upsampled to `image_size`.

    Random resized crops of area `crop_scale`, near-square; no flip (digits are
    not mirror-symmetric); brightness/contrast jitter only (one channel);
    Gaussian noise 0.1 after normalising to [-1, 1].
    """
    return augment_config(
        image_size=image_size, crop_scale=crop_scale, crop_ratio=(0.8, 1.25), flip_p=0.0,
        jitter_p=0.8, brightness=0.4, contrast=0.4, saturation=0.0, hue=0.0, grayscale_p=0.0,
        blur_p=0.0, noise_std=0.1, mean=(0.5,), std=(0.5,),
    )


def augment_overrides_config() -> ml_collections.ConfigDict:
    """View 2's pipeline as differences from view 1's: every field None (= inherit)."""
    return ml_collections.ConfigDict(
        {k: placeholder(type(v)) for k, v in AUGMENT_FIELDS.items()}
    )


def view_augment_config(config: ml_collections.ConfigDict, view: int) -> ml_collections.ConfigDict:
    """The resolved pipeline of view 1 or view 2 (view 2 = view 1 plus `augment2`'s set fields)."""
    base = config.augment.to_dict()
    if view == 2:
        base.update({k: v for k, v in config.augment2.to_dict().items() if v is not None})
    return ml_collections.ConfigDict(base)


def get_base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "cc"  # cc | gecc | vtcc | mfavbs: names the run
    c.objective = "cc"  # cc | gecc: ccjax/methods/cc.py, ccjax/methods/gecc/
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

    c.dataset = ml_collections.ConfigDict()
    c.dataset.name = "digits"
    c.dataset.data_dir = placeholder(str)  # TFDS data_dir; None = $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.dataset.manual_dir = placeholder(str)  # ImageNet subsets: the extracted ImageNet train folder
    c.dataset.image_size = 0  # storage size for folder datasets; 0 = native
    c.dataset.use_unlabeled = False  # STL-10: add the 100,000 unlabelled images to training
    c.dataset.num_clusters = -1  # -1 = number of classes; required for unlabeled data
    # auto: decoded into host memory when that takes <= memory_share of RAM, else streamed
    # from its files in grain workers (docs/datasets.md, "Streaming"); true | false force one.
    c.dataset.in_memory = "auto"
    c.dataset.memory_share = 0.5
    c.dataset.stream_workers = -1  # grain worker processes; -1 = one per core (at most 8); 0 = a thread
    c.dataset.stream_buffer = 2  # batches each worker reads ahead

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
    c.gecc.schedule_stages = 10  # t = 0.1 * (epoch // (E / stages) + 1)
    # Where CDSM/DSU act ("after each convolution block", read two ways; docs/gecc.md):
    # stages (after each backbone stage) | stem_and_stages (also after the stem, as DSU's own code)
    c.gecc.positions = "stages"

    c.augment = augment_config()
    c.augment2 = augment_overrides_config()

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
    ("loss.instance_temperature", 0, False, "0.5"),
    ("loss.cluster_temperature", 0, False, "1.0"),
    ("gecc.lambda_instance", 0, True, "1.0"),
    ("gecc.lambda_cluster", 0, True, "1.0"),
    ("gecc.schedule_stages", 1, True, "10"),
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
    """Checks the numeric fields before any work: one UserError line naming the field and a value to use.

    What depends on the data (num_clusters against the number of examples) is
    checked when the dataset is open (ccjax.run.build.resolve_num_clusters); the
    augmentation fields by AugmentParams.
    """
    for field, low, inclusive, hint in _NUMERIC_FIELDS:
        value = _number(config, field)
        if value < low or (value == low and not inclusive):
            bound = f">= {low}" if inclusive else f"> {low}"
            raise UserError(f"{field}={value} must be {bound}; set --config.{field}, e.g. {hint}")
    k = _number(config, "dataset.num_clusters")
    if k != -1 and k < 2:
        raise UserError(f"dataset.num_clusters={k}: clustering needs at least 2 clusters; set "
                        "--config.dataset.num_clusters=K (K >= 2) or -1 for the number of classes")
    in_memory_mode(config.dataset.get("in_memory", "auto"))
    from ccjax.augment.params import AugmentParams

    for view in (1, 2):
        AugmentParams.from_config(view_augment_config(config, view))


_IN_MEMORY = {"auto": None, "true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def in_memory_mode(value) -> bool | None:
    """`dataset.in_memory` read: True (hold in memory), False (stream) or None (auto); UserError otherwise."""
    mode = str(value).lower()
    if mode not in _IN_MEMORY:
        raise UserError(f"dataset.in_memory={value!r} must be auto, true or false; set --config.dataset.in_memory=auto")
    return _IN_MEMORY[mode]


def vit_paper_config(method: str, dataset: str, stored_size: int = 0) -> ml_collections.ConfigDict:
    """The MFAVBs-CC paper's settings (Sec. 4.1) for `method` 'mfavbs' or its baseline 'vtcc'.

    ViT-small (E = 512, 8 blocks, 8 heads) with ConvStem at 224x224, N = 4 fusing blocks and the CLIP anchor
    for MFAVBs-CC, N = 0 and no anchor for VTCC; `stored_size` is the size the
    dataset is prepared at (0 = native). Used by configs/{mfavbs,vtcc}_<dataset>.py.
    """
    if method not in ("mfavbs", "vtcc"):
        raise ValueError(f"vit_paper_config: method must be mfavbs or vtcc, got {method!r}")
    c = get_base_config()
    c.method = method
    c.dataset.name = dataset
    if stored_size:
        c.dataset.image_size = stored_size  # cropped/resized to 224 on device
    c.objective = "cc"
    # Optimisation (Section 4.1): batch 128, Adam 3e-4, 500 epochs; CC's temperatures.
    c.batch_size = 128
    c.num_epochs = 500
    c.learning_rate = 3e-4
    c.loss.instance_temperature = 0.5
    c.loss.cluster_temperature = 1.0
    c.model.feature_dim = 128
    # ViT-small of the paper: E = 512 (= CLIP's dimension), 8 blocks, 8 heads, ConvStem patch 16 at 224.
    c.model.backbone = "vit"
    c.model.vit.embed_dim = 512
    c.model.vit.depth = 8
    c.model.vit.num_heads = 8  # Sec. 4.5: "h=8 heads" (the paper's only head count)
    c.model.vit.patch_size = 16
    c.model.vit.mlp_ratio = 4.0
    c.model.vit.num_fusing_blocks = 4 if method == "mfavbs" else 0  # N; 0 is VTCC
    c.model.vit.fusion = "tokens"
    c.anchor.enabled = method == "mfavbs"  # the frozen CLIP anchor token
    c.anchor.model = "openai/clip-vit-base-patch32"
    c.anchor.project = False
    # T^a (VTCC's code): crop scale 0.08-1, jitter 0.4/0.4/0.2/0.1 at p 0.8, grayscale p 0.2,
    # Gaussian blur sigma 0.1-2 (applied always, p 1.0), flip; ImageNet mean/std.
    c.augment.image_size = 224
    c.augment.crop_scale = (0.08, 1.0)
    c.augment.jitter_p = 0.8
    c.augment.brightness = 0.4
    c.augment.contrast = 0.4
    c.augment.saturation = 0.2
    c.augment.hue = 0.1
    c.augment.grayscale_p = 0.2
    c.augment.blur_p = 1.0
    c.augment.blur_sigma = (0.1, 2.0)
    c.augment.flip_p = 0.5
    c.augment.mean, c.augment.std = IMAGENET_MEAN, IMAGENET_STD
    # T^b = T^a + solarize at p 0.2.
    c.augment2.solarize_p = 0.2
    return c


OWN_IMAGES_SIZE = 96  # storage and training side for your own images


def own_images_config(method: str) -> ml_collections.ConfigDict:
    """The settings of configs/{cc,gecc,mfavbs}_images.py: your own folder of images on one GPU.

    Images stored and trained at 96x96 (100,000 RGB images take 2.8 GB of host
    memory; a folder that does not fit half the RAM is streamed), CC's RGB
    augmentations (random resized crop of 20-100% of the area, flip, colour jitter
    0.4/0.4/0.4/0.1 at p 0.8, grayscale p 0.2; no blur, as CC for small images),
    200 epochs, checkpoints every 10. CC and GeCC: ResNet-18, batch 256, Adam
    3e-4. MFAVBs-CC: the paper's ViT (E = 512, 8 blocks, 8 heads, N = 4, patch 16:
    36 patches at 96x96) with the CLIP ViT-B/32 anchor, batch 128. The folder and K
    come from the command line (docs/own_images.md).
    """
    if method not in ("cc", "gecc", "mfavbs"):
        raise ValueError(f"own_images_config: method must be cc, gecc or mfavbs, got {method!r}")
    s = OWN_IMAGES_SIZE
    c = vit_paper_config("mfavbs", "folder:./images", stored_size=s) if method == "mfavbs" else get_base_config()
    c.method = method
    c.objective = "gecc" if method == "gecc" else "cc"
    c.dataset.name = "folder:./images"  # --config.dataset.name=folder:<your image folder>
    c.dataset.image_size = s
    c.dataset.num_clusters = -1  # the number of class sub-folders; set K for a flat folder
    c.num_epochs = 200
    c.checkpoint.every_epochs = 10
    if method != "mfavbs":
        c.model.backbone = "resnet18"
        c.model.stem = "imagenet"
        c.batch_size = 256
        c.learning_rate = 3e-4
    c.augment = augment_config(image_size=s, crop_scale=(0.2, 1.0), mean=IMAGENET_MEAN,
                               std=IMAGENET_STD, blur_p=0.0)
    if method == "mfavbs":
        c.augment2.solarize_p = 0.2  # T^b = T^a + solarize (the paper's second view)
    return c


IMAGENET_SCALE_DATASETS = ("imagenet50", "imagenet100", "imagenet200", "imagenet1k")


def imagenet_scale_config(method: str, dataset: str) -> ml_collections.ConfigDict:
    """The settings of configs/{cc,gecc}_imagenet{50,100,200,1k}.py: ImageNet-scale clustering.

    From SCAN (Van Gansbeke et al., ECCV 2020; its configs/pretext/moco_imagenet*.yml
    and configs/scan/scan_imagenet_*.yml): ResNet-50 at 224x224, a 128-d instance
    head, SimCLR augmentation (random resized crop of 20-100% of the area to 224,
    flip, colour jitter 0.4/0.4/0.4/0.1 at p 0.8, grayscale p 0.2, ImageNet
    mean/std) and 100 epochs (its clustering step). SCAN trains a MoCo pretext
    model and then a clustering head with SGD at batch 1024; CC and GeCC train
    end to end, so the optimiser and loss settings stay theirs (Adam 3e-4, batch
    256, tau_I 0.5, tau_C 1.0; GeCC's CDSM reference view and both weights).
    The data is streamed (`dataset.in_memory=auto`: ImageNet-100 at 224 is 19 GB
    decoded, ImageNet-1k 193 GB) with one grain worker per core; checkpoints every
    epoch, evaluation every 10.
    """
    if method not in ("cc", "gecc") or dataset not in IMAGENET_SCALE_DATASETS:
        raise ValueError(f"imagenet_scale_config: got {method!r}, {dataset!r}")
    c = get_base_config()
    c.method = method
    c.objective = method
    c.dataset.name = dataset
    c.dataset.image_size = 224  # stored (subsets) or resized on read (imagenet1k) to 224
    c.model.backbone = "resnet50"
    c.model.stem = "imagenet"
    c.model.feature_dim = 128
    c.batch_size = 256
    c.learning_rate = 3e-4
    c.num_epochs = 100
    c.augment = augment_config(image_size=224, crop_scale=(0.2, 1.0), mean=IMAGENET_MEAN,
                               std=IMAGENET_STD, blur_p=0.0)
    c.eval.every_epochs = 10
    c.checkpoint.every_epochs = 1
    if method == "gecc":
        c.gecc.reference = "cdsm"
        c.gecc.weights = "both"
    return c
