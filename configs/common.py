"""Presets the paper configs share: build a config file from one of these, then change what differs.

- `digits_augment_config`: the pipeline of the 8x8 digits configs (cc_digits, gecc_digits, mfavbs_digits);
- `vit_paper_config`: MFAVBs-CC's paper settings, for MFAVBs-CC and its baseline VTCC (configs/{mfavbs,vtcc}_*.py);
- `own_images_config`: your own folder of images (configs/{cc,gecc,mfavbs}_images.py);
- `imagenet_scale_config`: SCAN's ImageNet-scale settings (configs/{cc,gecc}_imagenet{50,100,200,1k}.py).

A config file imports this module as `common` with its own folder on sys.path (see any configs/*_images.py),
so it works wherever the configs folder is and however the file is loaded.
"""

from __future__ import annotations

import ml_collections

from ccjax.config import augment_config, get_base_config

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's normalisation


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


def temi_preset(source: str) -> ml_collections.ConfigDict:
    """The settings of configs/temi_*.py: TEMI's heads on frozen features (`features.source`).

    The official README's command for CIFAR (16 heads, beta 0.6, 50 neighbours, AdamW 1e-4 x batch/256
    with weight decay 1e-4, 20 warm-up epochs, 100 epochs, teacher EMA 0.996, temperatures 0.1), at
    batch 256 (the official 1024 suits 50,000 images; a few thousand photos need more steps per epoch).
    """
    c = get_base_config()
    c.method = "temi"
    c.features.source = source
    c.batch_size = 256
    c.num_epochs = 100
    c.learning_rate = 1e-4
    c.warmup_epochs = 20
    c.weight_decay = 1e-4
    c.checkpoint.every_epochs = 10
    c.eval.batch_size = 256
    return c
