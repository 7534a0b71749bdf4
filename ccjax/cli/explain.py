"""Where trained models look, side by side on the same images: GeCC's Fig. 1 (the library is ccjax/explain/cam.py
and ccjax/report/cam_figures.py).

    python -m ccjax explain --workdir=runs/cc_digits --workdir=runs/gecc_digits [--images=a.png,b.png |
                            --indices=0,5,9 | --num_images=8] [--out=explain.png]

CNN runs (ResNet, ConvNet) get Grad-CAM of the predicted cluster's probability at the last convolutional
stage; ViT runs get token 0's attention over the patches in the last block (`python -m ccjax attention`
draws a ViT's full Fig. 4 maps for one image). One row per image, one column per run. Without
--images, the images are examples of the runs' dataset: --indices, else the first of each class.
"""

from __future__ import annotations

from typing import Any

from ccjax.cli.flags import run_command
from ccjax.errors import UserError, exit_on_user_error


def _define_flags():
    from absl import flags

    return dict(
        workdir=flags.DEFINE_multi_string("workdir", [], "A run directory written by `ccjax train` (repeat for more)."),
        images=flags.DEFINE_list("images", [], "Image files, comma-separated (default: examples of the dataset)."),
        indices=flags.DEFINE_list("indices", [], "Examples of the runs' dataset, comma-separated indices."),
        num_images=flags.DEFINE_integer("num_images", 8, "Without --images/--indices: the first example of "
                                        "each class, at most this many."),
        out=flags.DEFINE_string("out", "explain.png", "The PNG to write."),
    )


def main() -> None:
    f = _define_flags()

    @exit_on_user_error
    def run(argv: Any) -> None:
        if len(argv) > 1:
            raise UserError(f"unexpected arguments {argv[1:]}; flags are --workdir, --images, --indices, "
                            "--num_images, --out")
        if not f["workdir"].value:
            raise UserError("usage: python -m ccjax explain --workdir=<run> [--workdir=<run> ...] [--images=a.png,b.png]")
        if f["images"].value and f["indices"].value:
            raise UserError("pass --images=<files> or --indices=<examples>, not both")
        try:
            indices = [int(i) for i in f["indices"].value]
        except ValueError:
            raise UserError(f"--indices={','.join(f['indices'].value)}: pass whole numbers, e.g. --indices=0,5,9") from None
        if f["num_images"].value < 1:
            raise UserError(f"--num_images={f['num_images'].value}; pass at least 1")
        # imported when the command runs: its --help answers without loading the library
        from ccjax.report.cam_figures import explain_runs

        names = explain_runs(f["workdir"].value, f["out"].value, f["images"].value, indices, f["num_images"].value)
        print(f"ccjax: where {len(f['workdir'].value)} run(s) look on {len(names)} images written to {f['out'].value}")

    run_command(run, __doc__, tuple(f.values()))


if __name__ == "__main__":
    main()
