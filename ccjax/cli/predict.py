"""Assign new images to the clusters of a trained run:

    python -m ccjax predict --workdir=runs/cc_digits my_images/ extra.png [--out=predictions.csv]

(also `ccjax predict` and `python -m ccjax.predict`; the library side is ccjax/eval/predict.py).
Loads the run's last checkpoint, reads each image (folders are searched recursively), converts it
to the training data's storage format (channels and size, as preparation does), prints a summary
and writes a CSV of (id, cluster, probability). Unreadable files are reported and skipped. When the
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
    )


@exit_on_user_error
def run(argv, workdir: str | None, out_path: str | None, batch_size: int) -> None:
    """Predicts the images and folders in argv[1:] with the run in `workdir`; prints and writes the CSV."""
    paths = argv[1:]
    if not workdir or not paths:
        raise UserError("usage: python -m ccjax.predict --workdir=<run> IMAGE_OR_FOLDER [...]")
    out = out_path or os.path.join(workdir, "predictions.csv")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):  # checked before any inference is done
        raise UserError(f"--out={out}: its folder does not exist; create it or choose another path")
    import numpy as np

    from ccjax.eval.predict import predict_files, write_predictions

    probs, ok, skipped = predict_files(workdir, paths, batch_size)
    for f, why in skipped:
        print(f"ccjax: skipped {f}: {why}", file=sys.stderr)
    if not ok:
        raise UserError(f"none of the {len(skipped)} image files could be read; give PNG/JPEG/... images "
                        "that PIL can open")
    write_predictions(out, probs, ok)
    k = probs.shape[1]
    counts = np.bincount(probs.argmax(1), minlength=k) if len(ok) else np.zeros(k, int)
    print(f"ccjax: assigned {len(ok)} images ({len(skipped)} unreadable, skipped) to {k} clusters; "
          f"sizes {counts.tolist()}")
    for f, p in list(zip(ok, probs))[:10]:
        print(f"  {f}: cluster {int(p.argmax())} (p={p.max():.3f})")
    if len(ok) > 10:
        print(f"  ... {len(ok) - 10} more in {out}")
    print(f"ccjax: predictions written to {out}")


def main() -> None:
    workdir, out, batch = _define_flags()
    run_command(lambda argv: run(argv, workdir.value, out.value, batch.value), __doc__, (workdir, out, batch))


if __name__ == "__main__":
    main()
