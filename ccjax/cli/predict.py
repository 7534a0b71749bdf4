"""Assign new images to the clusters of a trained run:

    python -m ccjax predict --workdir=runs/cc_digits my_images/ extra.png [--out=predictions.csv]

(also `ccjax predict` and `python -m ccjax predict`; the library side is ccjax/eval/predict.py).
Loads the run's last checkpoint, reads each image (folders are searched recursively), converts it
to the training data's storage format (channels and size, as preparation does), prints a summary
and writes a CSV of (id, cluster, probability, low_confidence) with assignments.csv's column names.
Unreadable files are reported and skipped; images unlike the training ones (colour for a grayscale
run, a very different size) get one warning line; an existing CSV is kept unless --overwrite. When the
run's method uses a CLIP anchor, the CLIP encoder embeds the new images.
"""

from __future__ import annotations

import os
import sys

from ccjax.cli.flags import run_command
from ccjax.errors import UserError, exit_on_user_error


def _define_flags():
    """The command line's flags, defined only when it runs (importing this module defines none)."""
    from absl import flags

    return (
        flags.DEFINE_string("workdir", None, "A run directory written by `ccjax train` (required)."),
        flags.DEFINE_string("out", None, "CSV to write (default: <workdir>/predictions.csv)."),
        flags.DEFINE_integer("batch_size", 256, "Images per step (rounded up to the device count)."),
        flags.DEFINE_bool("overwrite", False, "Replace --out when it exists (without it, an existing file is "
                          "kept and the command stops)."),
    )


@exit_on_user_error
def run(argv, workdir: str | None, out_path: str | None, batch_size: int, overwrite: bool = False) -> None:
    """Predicts the images and folders in argv[1:] with the run in `workdir`; prints and writes the CSV."""
    paths = argv[1:]
    if not workdir or not paths:
        raise UserError("usage: python -m ccjax predict --workdir=<run> IMAGE_OR_FOLDER [...]")
    out = out_path or os.path.join(workdir, "predictions.csv")
    # Checked before any inference is done.
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise UserError(f"--out={out}: its folder does not exist; create it or choose another path")
    if os.path.exists(out) and not overwrite:
        raise UserError(f"{out} exists; pass --overwrite to replace it, or --out=<another file>")
    import numpy as np

    # imported when the command runs: its --help answers without loading the library
    from ccjax.eval.predict import (format_warning, low_confidence, low_confidence_threshold, predict_files,
                                    write_predictions)
    # imported when the command runs: its --help answers without loading the library
    from ccjax.run.rundir import load_run_config, read_run_info

    probs, ok, skipped = predict_files(workdir, paths, batch_size)
    for f, why in skipped:
        print(f"ccjax: skipped {f}: {why}", file=sys.stderr)
    if not ok:
        raise UserError(f"none of the {len(skipped)} image files could be read; give PNG/JPEG/... images "
                        "that PIL can open")
    warning = format_warning(ok, read_run_info(workdir)["image_shape"], load_run_config(workdir).dataset.name)
    if warning:
        print(warning, file=sys.stderr)
    write_predictions(out, probs, ok)
    k = probs.shape[1]
    low = low_confidence(probs)
    counts = np.bincount(probs.argmax(1), minlength=k)
    print(f"ccjax: assigned {len(ok)} images ({len(skipped)} unreadable, skipped) to {k} clusters; "
          f"sizes {counts.tolist()}")
    for f, p, is_low in list(zip(ok, probs, low))[:10]:
        print(f"  {f}: cluster {int(p.argmax())} (p={p.max():.3f}{', low confidence' if is_low else ''})")
    if len(ok) > 10:
        print(f"  ... {len(ok) - 10} more in {out}")
    if low.any():
        print(f"ccjax: note: {int(low.sum())} of {len(ok)} images are low confidence (low_confidence=yes in the "
              f"CSV): their top probability is below {low_confidence_threshold(k):.3f}, close to 1/K = {1 / k:.3f}, "
              "so no cluster claims them much more than another")
    print(f"ccjax: predictions written to {out}")


def main() -> None:
    holders = _define_flags()
    run_command(lambda argv: run(argv, *(h.value for h in holders)), __doc__, holders)


if __name__ == "__main__":
    main()
