"""Writes tests/goldens/temi_loss.npz: TEMI's loss, marginals and gradients from the OFFICIAL code.

    git --git-dir=<mirror of HHU-MMBS/TEMI-official-BMVC2023> archive HEAD | tar -x -C /tmp/official/temi
    python tools/temi_goldens.py --official=/tmp/official/temi --commit=<its commit>

Needs torch (CPU) and the official code checked out; neither is a dependency of ccjax and the
official code is never copied into this repository: only the numbers it computes are written.
Random heads (the official DINOHead) for student and a perturbed teacher, random embeddings and
their kNN partners, a random marginal p_h, through the official `TEMI` loss at a warm-up epoch.
tests/test_temi_loss.py compares ccjax's loss and gradients to these numbers without torch.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys

import numpy as np

CASES = {  # name: (beta, positive_pmi)
    "beta06": (0.6, False),
    "beta1_pos": (1.0, True),
}
H, D, HIDDEN, BOTTLENECK, K, B, N = 3, 12, 10, 6, 5, 8, 40
TEMPS = dict(warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=4, nepochs=6,
             student_temp=0.1)
EPOCH = 2  # inside the teacher-temperature warm-up: temperature linspace(0.04, 0.07, 4)[2] = 0.06


def _load(official: str):
    sys.path.insert(0, official)
    import losses  # noqa: F401  (the official package)

    spec = importlib.util.spec_from_file_location("temi_multi_head", os.path.join(official, "model_builders",
                                                                                  "multi_head.py"))
    mh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mh)
    return sys.modules["losses"], mh


def _head_arrays(heads, grads: bool = False) -> dict:
    """The heads' parameters (or gradients) in ccjax's stacked layout (ccjax/models/temi_heads.py)."""
    def get(t):
        return (t.grad if grads else t).detach().numpy().astype(np.float64)

    out = {}
    linears = [m for m in heads[0].mlp if m.__class__.__name__ == "Linear"]
    for i in range(len(linears)):
        ls = [[m for m in h.mlp if m.__class__.__name__ == "Linear"][i] for h in heads]
        out[f"mlp{i}_kernel"] = np.stack([get(l.weight).T for l in ls])
        out[f"mlp{i}_bias"] = np.stack([get(l.bias) for l in ls])
    out["last_v"] = np.stack([get(h.last_layer.weight_v).T for h in heads])  # [H, bottleneck, K]
    out["last_g"] = np.stack([get(h.last_layer.weight_g)[:, 0] for h in heads])  # [H, K]
    return out


def make_case(losses, mh, beta: float, positive: bool, seed: int) -> dict:
    import torch

    torch.manual_seed(seed)
    args = dict(in_dim=D, out_dim=K, nlayers=2, hidden_dim=HIDDEN, bottleneck_dim=BOTTLENECK, norm_last_layer=False)
    student = [mh.DINOHead(**args).double() for _ in range(H)]
    teacher = [mh.DINOHead(**args).double() for _ in range(H)]
    with torch.no_grad():
        for s, t in zip(student, teacher):  # a teacher near, not equal to, the student (an EMA some steps on)
            t.load_state_dict(s.state_dict())
            for p in t.parameters():
                p.add_(0.05 * torch.randn_like(p) * (p.abs().mean() + 1e-3))
    emb = torch.randn(N, D, dtype=torch.float64)
    unit = emb / emb.norm(dim=-1, keepdim=True)
    sims = unit @ unit.T
    sims.fill_diagonal_(-float("inf"))
    knn = sims.topk(4, dim=-1).indices  # [N, 4]
    idx = torch.randperm(N)[:B]
    pair = knn[idx, torch.randint(0, 4, (B,))]
    images = torch.cat([emb[idx], emb[pair]])  # [2B, D]: the two views
    loss = losses.TEMI(num_heads=H, beta=beta, positive_pmi=positive, out_dim=K, batchsize=B, **TEMPS).double()
    pk0 = torch.rand(H, K, dtype=torch.float64) + 0.2
    pk0 = pk0 / pk0.sum(-1, keepdim=True)
    loss.pk.copy_(pk0)
    student_out = [h(images) for h in student]
    with torch.no_grad():
        teacher_out = [h(images) for h in teacher]
    head_losses = loss(student_out, teacher_out, EPOCH)
    head_losses.mean().backward()
    out = {"x": emb[idx].numpy(), "x_pair": emb[pair].numpy(), "pk0": pk0.numpy(), "pk1": loss.pk.numpy(),
           "head_losses": head_losses.detach().numpy(), "loss": head_losses.mean().detach().numpy(),
           "beta": np.float64(beta), "positive_pmi": np.bool_(positive),
           "teacher_temp": np.float64(loss.teacher_temp_schedule[EPOCH]),
           "student_temp": np.float64(TEMPS["student_temp"]),
           "student_logits": torch.stack(student_out).detach().numpy(),
           "teacher_logits": torch.stack(teacher_out).numpy()}
    out.update({f"student_{k}": v for k, v in _head_arrays(student).items()})
    out.update({f"teacher_{k}": v for k, v in _head_arrays(teacher).items()})
    out.update({f"grad_{k}": v for k, v in _head_arrays(student, grads=True).items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="checkout of HHU-MMBS/TEMI-official-BMVC2023")
    ap.add_argument("--commit", required=True, help="its commit (stamped into the goldens)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "goldens",
                                                 "temi_loss.npz"))
    a = ap.parse_args()
    losses, mh = _load(a.official)
    h = hashlib.sha256()
    for rel in ("losses/loss_utils.py", "losses/multihead_losses.py", "losses/mi.py", "model_builders/multi_head.py"):
        with open(os.path.join(a.official, rel), "rb") as f:
            h.update(f.read())
    arrays = {"official_commit": np.str_(a.commit), "official_sources_sha256": np.str_(h.hexdigest())}
    for i, (name, (beta, positive)) in enumerate(CASES.items()):
        arrays.update({f"{name}/{k}": v for k, v in make_case(losses, mh, beta, positive, seed=i).items()})
    np.savez_compressed(a.out, **arrays)
    print(f"wrote {a.out} ({len(arrays)} arrays) from the official code at {a.commit}")


if __name__ == "__main__":
    main()
