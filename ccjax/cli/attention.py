"""Attention maps of a ViT run: the MFAVBs-CC paper's Fig. 4 (the library is ccjax/eval/attention_maps.py).

    python -m ccjax.attention --workdir=runs/mfavbs_rsod --image=oiltank.jpg [--out=attention.png] [--seed=0]
"""

from __future__ import annotations

import os
from typing import Any

from ccjax.cli.flags import parse_flags_or_exit
from ccjax.errors import UserError, exit_on_user_error
from ccjax.eval.attention_maps import image_attention


def _define_flags():
    from absl import flags

    return (
        flags.DEFINE_string("workdir", None, "A ViT run directory written by ccjax.main."),
        flags.DEFINE_string("image", None, "The image file to draw the attention of."),
        flags.DEFINE_string("out", None, "PNG to write (default: <workdir>/attention_<image name>.png)."),
        flags.DEFINE_integer("seed", 0, "Seed of the two random augmentations."),
    )


def main() -> None:
    from absl import app

    workdir_flag, image_flag, out_flag, seed_flag = _define_flags()

    @exit_on_user_error
    def run(argv: Any) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; flags are --workdir, --image, --out, --seed")
        if not workdir_flag.value or not image_flag.value:
            raise UserError("usage: python -m ccjax.attention --workdir=<ViT run> --image=<file> [--out=x.png]")
        stem = os.path.splitext(os.path.basename(image_flag.value))[0]
        out = out_flag.value or os.path.join(workdir_flag.value, f"attention_{stem}.png")
        maps = image_attention(workdir_flag.value, image_flag.value, out, seed_flag.value)
        where = (f"blocks {maps.per_branch_block + 1} (per branch) and {maps.fused_block + 1} (fused)"
                 if maps.fused_block is not None else f"block {maps.per_branch_block + 1} (no fusing blocks)")
        print(f"ccjax: attention of the {maps.query} token over the patches in {where} written to {out}")

    app.run(run, flags_parser=parse_flags_or_exit)


if __name__ == "__main__":
    main()
