"""Attention maps of a ViT run (the MFAVBs-CC paper's Fig. 4):

    python -m ccjax attention --workdir=runs/mfavbs_rsod --image=oiltank.jpg [--out=attention.png] [--seed=0]

(also `ccjax attention` and `python -m ccjax attention`; the library is ccjax/explain/attention_maps.py).
Draws, beside the image, how much the [CLS] (or CLIP anchor) token attends to each patch in the last
block where the two augmented views are still separate and in the last block that fuses them.
"""

from __future__ import annotations

import os
from typing import Any

from ccjax.cli.flags import run_command
from ccjax.errors import UserError, exit_on_user_error


def _define_flags():
    from absl import flags

    return (
        flags.DEFINE_string("workdir", None, "A ViT run directory (vtcc or mfavbs) written by `ccjax train` "
                            "(required)."),
        flags.DEFINE_string("image", None, "The image file to draw the attention of (required)."),
        flags.DEFINE_string("out", None, "PNG to write (default: <workdir>/attention_<image name>.png)."),
        flags.DEFINE_integer("seed", 0, "Seed of the two random augmentations."),
    )


def main() -> None:
    workdir_flag, image_flag, out_flag, seed_flag = _define_flags()

    @exit_on_user_error
    def run(argv: Any) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; flags are --workdir, --image, --out, --seed")
        if not workdir_flag.value or not image_flag.value:
            raise UserError("usage: python -m ccjax attention --workdir=<ViT run> --image=<file> [--out=x.png]")
        stem = os.path.splitext(os.path.basename(image_flag.value))[0]
        out = out_flag.value or os.path.join(workdir_flag.value, f"attention_{stem}.png")
        # imported when the command runs: its --help answers without loading the library
        from ccjax.report.attention_figure import image_attention

        maps = image_attention(workdir_flag.value, image_flag.value, out, seed_flag.value)
        where = (f"blocks {maps.per_branch_block + 1} (per branch) and {maps.fused_block + 1} (fused)"
                 if maps.fused_block is not None else f"block {maps.per_branch_block + 1} (no fusing blocks)")
        print(f"ccjax: attention of the {maps.query} token over the patches in {where} written to {out}")

    run_command(run, __doc__, (workdir_flag, image_flag, out_flag, seed_flag))


if __name__ == "__main__":
    main()
