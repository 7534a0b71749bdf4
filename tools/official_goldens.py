"""Writes the official-code goldens under tests/goldens/ (needs PyTorch; never run by the tests or CI).

    python tools/official_goldens.py --cc=PATH --mfavbs=PATH [--out=tests/goldens]

PATH: a local checkout of Yunfan-Li/Contrastive-Clustering (--cc) and of
sszhou-github/MFAVBs-CC (--mfavbs). Their commit is read with `git rev-parse
HEAD`; for a checkout without .git pass it as --cc_commit / --mfavbs_commit.
Needs torch, timm and torchvision importable (a CPU wheel of torch is enough;
e.g. `pip install --target DIR timm torchvision pillow pyyaml huggingface_hub
safetensors` and PYTHONPATH=DIR). None of them is a dependency of ccjax.

The official code is imported as it is. Shims, all here: torchvision's C
operators are not loaded (only its pure-Python ResNet blocks are used), and
`pandas`, which MFAVBs-CC's network module imports without using, is stubbed.

Each golden (.npz) holds the official repository and commit it was made from,
the inputs, the seed and the parameter manifest of the stand-in weights
(tests/golden_weights.py: the weights are regenerated, not stored), and the
official per-stage outputs, gradients and BatchNorm running statistics.
tests/test_official_goldens.py compares ccjax with them, without PyTorch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import pathlib
import subprocess
import sys
import types

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from golden_weights import encode_manifest, golden_weights  # noqa: E402

SEED = 30
CC_REPO, MFAVBS_REPO = "Yunfan-Li/Contrastive-Clustering", "sszhou-github/MFAVBs-CC"


def commit_of(path: pathlib.Path, given: str | None) -> str:
    if given:
        return given
    git = lambda *a: subprocess.run(["git", "-C", str(path), *a], check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout.strip()
    try:
        if pathlib.Path(git("rev-parse", "--show-toplevel")).resolve() == path.resolve():  # not an enclosing repo's
            return git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pass
    sys.exit(f"error: {path} is not the top of a git checkout; pass its commit with --cc_commit/--mfavbs_commit")


def import_official(root: pathlib.Path, names: list[str]) -> dict[str, types.ModuleType]:
    """Imports `modules.<name>` of one official checkout (both repositories call their package `modules`)."""
    for key in [k for k in sys.modules if k == "modules" or k.startswith("modules.")]:
        del sys.modules[key]
    for stub in ("torchvision._meta_registrations", "pandas"):
        if stub not in sys.modules and (stub != "pandas" or importlib.util.find_spec(stub) is None):
            sys.modules[stub] = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(stub, None))
    sys.path.insert(0, str(root))
    try:
        return {n: importlib.import_module(f"modules.{n}") for n in names}
    finally:
        sys.path.remove(str(root))


def seed_weights(model, skip: tuple[str, ...] = ()) -> np.ndarray:
    """Loads the stand-in weights into `model` (all float tensors but `skip`); returns the manifest."""
    import torch

    state = model.state_dict()
    names = [n for n, t in state.items() if t.is_floating_point() and n not in skip]
    manifest = encode_manifest(names, [tuple(state[n].shape) for n in names])
    values = golden_weights(SEED, manifest)
    model.load_state_dict({**state, **{n: torch.from_numpy(v) for n, v in values.items()}})
    return manifest


def numpy_of(x) -> np.ndarray:
    """A copy: the official ReLUs are in place, and would overwrite a hooked BatchNorm output otherwise."""
    return x.detach().cpu().numpy().copy()


def running_stats(model, prefix: str = "") -> dict[str, np.ndarray]:
    return {f"{prefix}{n}": numpy_of(t) for n, t in model.state_dict().items()
            if n.endswith(("running_mean", "running_var"))}


def record_outputs(modules: dict[str, object]) -> tuple[dict[str, list], list]:
    """Forward hooks that append each named module's output to a list, in call order."""
    seen: dict[str, list] = {n: [] for n in modules}
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: seen[n].append(numpy_of(out)))
               for n, m in modules.items()]
    return seen, handles


def loss_golden(module, b: int, d: int, k: int, dtype, seed: int) -> dict[str, np.ndarray]:
    """Official InstanceLoss(0.5) and ClusterLoss(1.0) and their gradients on seeded z (unit rows) and c (softmax)."""
    import torch

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((2, b, d))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    logits = 2.0 * rng.standard_normal((2, b, k))
    c = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    z_t = [torch.tensor(v, dtype=dtype, requires_grad=True) for v in z]
    c_t = [torch.tensor(v, dtype=dtype, requires_grad=True) for v in c]
    instance = module.InstanceLoss(b, 0.5, "cpu")(*z_t)
    cluster = module.ClusterLoss(k, 1.0, "cpu")(*c_t)
    (instance + cluster).backward()
    out = {f"z_{v}": numpy_of(t) for v, t in zip("ab", z_t)}
    out.update({f"c_{v}": numpy_of(t) for v, t in zip("ab", c_t)})
    out.update({f"grad_z_{v}": numpy_of(t.grad) for v, t in zip("ab", z_t)})
    out.update({f"grad_c_{v}": numpy_of(t.grad) for v, t in zip("ab", c_t)})
    out.update(instance_loss=numpy_of(instance), cluster_loss=numpy_of(cluster),
               instance_temperature=np.float64(0.5), cluster_temperature=np.float64(1.0))
    return out


def cc_resnet_golden(mods, b: int = 3, size: int = 64, d: int = 16, k: int = 5) -> dict[str, np.ndarray]:
    """CC's ResNet-34 + heads: eval-mode stage outputs of view a; train-mode outputs and running stats."""
    import torch

    torch.manual_seed(0)
    model = mods["network"].Network(mods["resnet"].get_resnet("ResNet34"), d, k)
    manifest = seed_weights(model)
    rng = np.random.default_rng(SEED + 1)
    x = rng.standard_normal((2, b, 3, size, size)).astype(np.float32)  # [view, B, C, H, W] as CC feeds them
    net = model.resnet
    stages = {"bn1": net.bn1, **{f"layer{i}": getattr(net, f"layer{i}") for i in range(1, 5)}, "h": net}
    out = dict(images=x, manifest=manifest, seed=np.int64(SEED), feature_dim=np.int64(d), num_clusters=np.int64(k))
    with torch.no_grad():
        model.eval()
        seen, handles = record_outputs(stages)
        z_a, z_b, c_a, c_b = model(torch.from_numpy(x[0]), torch.from_numpy(x[1]))
        for h in handles:
            h.remove()
        out.update({f"eval/{n}": v[0] for n, v in seen.items()})  # view a's call
        out["eval/bn1"] = out["eval/bn1"][:1]  # the largest stage: its first image only
        out.update({"eval/z": numpy_of(torch.stack([z_a, z_b])), "eval/c": numpy_of(torch.stack([c_a, c_b]))})
        model.train()
        seen, handles = record_outputs({"h": net})
        z_a, z_b, c_a, c_b = model(torch.from_numpy(x[0]), torch.from_numpy(x[1]))
        for h in handles:
            h.remove()
    out.update({"train/h": np.stack(seen["h"]), "train/z": numpy_of(torch.stack([z_a, z_b])),
                "train/c": numpy_of(torch.stack([c_a, c_b]))})
    out.update(running_stats(model, "train/"))
    return out


def mfavbs_forward(model, x: np.ndarray, anchor: np.ndarray) -> dict[str, np.ndarray]:
    """One Network_VTCC.forward with hooks: per-stage outputs as [view, B, ...]."""
    import torch

    vit = model.vtcc
    b = x.shape[1]
    stages = {"stem": vit.patch_embed, "tokens": vit.pos_drop, "norm": vit.norm,
              **{f"block{i}": blk for i, blk in enumerate(vit.blocks)}}
    seen, handles = record_outputs(stages)
    z_a, z_b, c_a, c_b = model(torch.from_numpy(x[0]), torch.from_numpy(x[1]), torch.from_numpy(anchor))
    for h in handles:
        h.remove()
    out = {}
    for n, v in seen.items():
        # Per-branch calls give [a, b]; the blocks run on the batch-concatenated pair give one [2B, ...].
        out[n] = np.stack(v) if len(v) == 2 else v[0].reshape((2, b) + v[0].shape[1:])
    out["h"] = out.pop("norm")[:, :, 0]  # the final LayerNorm at token 0 (the anchor)
    out["z"] = numpy_of(torch.stack([z_a, z_b]))
    out["c"] = numpy_of(torch.stack([c_a, c_b]))
    return out


def mfavbs_vit_golden(mods, b: int = 4, size: int = 32, d: int = 128, k: int = 10) -> dict[str, np.ndarray]:
    """MFAVBs-CC's released vit_small (16 heads) + heads, anchor at token 0: eval and train mode."""
    import torch

    torch.manual_seed(0)
    vit = mods["vtcc"].vit_small(img_size=size)
    model = mods["network"].Network_VTCC(vit, d, k)
    pos_embed = numpy_of(vit.pos_embed)  # the fixed sin-cos table: kept, and compared
    manifest = seed_weights(model, skip=("vtcc.pos_embed",))
    rng = np.random.default_rng(SEED + 2)
    x = rng.standard_normal((2, b, 3, size, size)).astype(np.float32)
    anchor = rng.standard_normal((b, vit.embed_dim)).astype(np.float32)
    out = dict(images=x, anchor=anchor, manifest=manifest, seed=np.int64(SEED), pos_embed=pos_embed[0],
               feature_dim=np.int64(d), num_clusters=np.int64(k), num_heads=np.int64(vit.blocks[0].attn.num_heads))
    with torch.no_grad():
        model.eval()
        out.update({f"eval/{n}": v for n, v in mfavbs_forward(model, x, anchor).items()})
        model.train()
        train = mfavbs_forward(model, x, anchor)
    out.update({f"train/{n}": train[n] for n in ("stem", "h", "z", "c")})
    out.update(running_stats(model, "train/"))
    # A non-square grid (2 rows x 3 columns), from the released builder itself.
    grid = types.SimpleNamespace(patch_embed=types.SimpleNamespace(grid_size=(2, 3)), embed_dim=16, num_tokens=1)
    mods["vtcc"].ViT_VTCC.build_2d_sincos_position_embedding(grid)
    out["pos_embed_2x3_dim16"] = numpy_of(grid.pos_embed)[0]
    return out


def write(path: pathlib.Path, repo: str, commit: str, arrays: dict[str, np.ndarray]) -> None:
    arrays = {n: np.asarray(v) for n, v in arrays.items()}
    np.savez_compressed(path, official_repo=np.array(repo), official_commit=np.array(commit), **arrays)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KiB, {len(arrays)} arrays, {repo}@{commit[:12]}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", required=True, type=pathlib.Path, help=f"checkout of {CC_REPO}")
    parser.add_argument("--mfavbs", required=True, type=pathlib.Path, help=f"checkout of {MFAVBS_REPO}")
    parser.add_argument("--cc_commit", help="the --cc checkout's commit, when it has no .git")
    parser.add_argument("--mfavbs_commit", help="the --mfavbs checkout's commit, when it has no .git")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "tests" / "goldens")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    cc_commit, mf_commit = commit_of(args.cc, args.cc_commit), commit_of(args.mfavbs, args.mfavbs_commit)
    cc = import_official(args.cc, ["contrastive_loss", "resnet", "network"])
    write(args.out / "cc_losses.npz", CC_REPO, cc_commit,
          loss_golden(cc["contrastive_loss"], b=12, d=16, k=5, dtype=torch.float64, seed=SEED + 3))
    write(args.out / "cc_resnet34.npz", CC_REPO, cc_commit, cc_resnet_golden(cc))
    mf = import_official(args.mfavbs, ["contrastive_loss", "vtcc", "network"])
    write(args.out / "mfavbs_losses.npz", MFAVBS_REPO, mf_commit,
          loss_golden(mf["contrastive_loss"], b=16, d=128, k=10, dtype=torch.float32, seed=SEED + 4))
    write(args.out / "mfavbs_vit_small.npz", MFAVBS_REPO, mf_commit, mfavbs_vit_golden(mf))


if __name__ == "__main__":
    main()
