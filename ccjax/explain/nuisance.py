"""What do the clusters follow? A probe of content-free cues (report/nuisance.json, nuisance.png).

Contrastive clustering latches onto the easiest cue that tells images apart;
when that is colour, brightness, a frame, the blur or the file format, the
report still shows tidy, confident clusters. This probe asks how well the
cluster assignment can be predicted from cheap content-free cues *taken
together* (ccjax/explain/cues.py: colour, border, brightness, contrast, polarity,
saturation, sharpness, background texture; for folders the source size,
aspect ratio, file format, JPEG quality and sub-folder): a cross-validated
classifier against the chance baseline (ccjax/explain/predictability.py), giving
a score (0 = chance, 1 = the cues give the cluster exactly), each family's
score alone and its permutation importance. Where labels are known, the same
cues predicting the labels is the reference: a dataset whose classes do differ
in colour lets colour predict content-driven clusters too.

Where labels are known, it warns when the cues predict the clusters better
*with* the labels than the labels do by themselves, by at least
WARN_BEYOND_LABELS (clusters that are the labels gain nothing, whatever the
labels follow), and the cues alone predict them at least that well too (so
that the line never reads "can be told from the cues (score 0.00)"); it never
warns on a clustering that collapsed into one cluster or mostly empty ones
(ccjax/report/verdicts.py: it says so instead); without labels, when the clusters' score is at least
WARN_SCORE (the cues also explain part of a content clustering: the shape of
the content leaks into them a little). The warning names the
cue families that explain the clusters by themselves (at least NAME_SHARE of the
score alone) and, for each, the setting that measurably moved trained clusters
from that cue to the content on the generated cases of docs/own_images.md, or
says plainly that ccjax knows none. Runs on at most MAX_EXAMPLES images (an even
subsample beyond that), read through the dataset's own read-ahead path.
"""

from __future__ import annotations

import os

import numpy as np

from ccjax.data.catalog import FOLDER_PREFIX
from ccjax.explain.cues import image_cues, source_cues
from ccjax.explain.predictability import MAX_FIT, one_hot, predictability

WARN_SCORE = 0.6  # without labels: the clusters' cue score that warns (docs/own_images.md: how these were chosen)
WARN_BEYOND_LABELS = 0.25  # with labels: what the cues add to the labels in predicting the clusters that warns
NAME_SHARE = 0.5  # a family is named when it alone explains this share of the clusters' score
MAX_NAMED = 3
MAX_EXAMPLES = MAX_FIT  # images read and measured: as many as the classifier can use

# cue family -> (what clusters that follow it look like, the settings that remove it; None: none known)
REMEDIES: dict[str, tuple[str, str | None]] = {
    "colour": ("the colours of the ink or of the image",  # the "shape only" preset
               "--config.augment.always_gray=true --config.augment.standardize=true --config.augment.invert_p=0.5"),
    "border": ("the colour of the image's border (a frame, a margin, the background)", "--config.augment.border_p=0.5"),
    "brightness": ("how bright the images are", "--config.augment.standardize=true --config.augment.invert_p=0.5"),
    "contrast": ("the images' contrast", "--config.augment.standardize=true"),
    "polarity": ("whether the ink is lighter or darker than the background", "--config.augment.invert_p=0.5"),
    "saturation": ("how colourful the images are", "--config.augment.always_gray=true"),
    "sharpness": ("how sharp or blurred the images are", None),
    "texture": ("the background's texture or noise", None),
    "source_size": ("the original image size (resizing leaves a different blur)", None),
    "aspect_ratio": ("the original aspect ratio (squashed when stored)", None),
    "file_format": ("the file format (JPEG artefacts, PNG sharpness)", None),
    "jpeg_quality": ("the JPEG quality the files were saved with", None),
    "subfolder": ("the sub-folder the images came from (a camera, a source, a date?)", None),
}


def named_cues(families: dict[str, dict], score: float) -> list[str]:
    """The families that alone explain at least NAME_SHARE of `score`, best first (at most MAX_NAMED);
    the best one when none does (the cues explain the clusters only together)."""
    ranked = sorted(families, key=lambda f: -families[f]["alone"])
    named = [f for f in ranked if families[f]["alone"] >= NAME_SHARE * score][:MAX_NAMED]
    return named or ranked[:1]


def warning_line(result: dict) -> str:
    """The one warning line: the score, the reference, the cues named and what to do about each."""
    clusters, labels, beyond, named = result["clusters"], result["labels"], result["beyond_labels"], result["named"]
    families = clusters["families"]
    ref = (f"; {beyond['score']:.2f} beyond what the labels explain, whose own cue score is {labels['score']:.2f}"
           if beyond else "")
    cues = ", ".join(f"{f.replace('_', ' ')} {families[f]['alone']:.2f}" for f in named)
    flags = " ".join(dict.fromkeys(" ".join(REMEDIES[f][1] for f in named if REMEDIES[f][1]).split()))
    unknown = [f.replace("_", " ") for f in named if not REMEDIES[f][1]]
    advice = f"retrain with {flags}" if flags else ""
    if unknown:
        advice += ("; " if advice else "") + f"ccjax knows no setting that removes {' or '.join(unknown)}"
    return (f"ccjax: warning: the clusters can be told from content-free cues (score {clusters['score']:.2f}: "
            f"0 = chance, 1 = exactly{ref}), chiefly {REMEDIES[named[0]][0]} ({cues} alone): the model may have "
            f"learnt that instead of the content; {advice} (docs/own_images.md, 'What do the clusters follow?')")


def probe(pred: np.ndarray, num_clusters: int, cues: dict[str, np.ndarray], labels: np.ndarray | None = None,
          seed: int = 0, collapsed: list[str] | None = None) -> dict:
    """How well the cues [n, d_f] predict the clusters `pred` [n] (and the labels [n], -1 = unknown).

    {'clusters': predictability of the clusters from the cues; 'labels': that of the labels, plus the
    clusters' 'nmi' with them | None; 'beyond_labels': {'score': what the cues add to the labels in
    predicting the clusters, 'with_labels', 'labels_only'} | None; 'named': cue families; 'warnings':
    [0 or 1 line]; 'num_examples', 'num_clusters', 'thresholds', 'collapsed'}.

    `collapsed`: why the clustering collapsed (ccjax/report/verdicts.py), when it did: then no cue is
    named (a few clusters that hold next to nothing can be told apart by anything), whatever the scores.
    A warning also needs the cues to predict the clusters by themselves at least as well as the
    warning level (never "can be told from the cues (score 0.00)").
    """
    # scikit-learn loads only when the probe runs
    from sklearn.metrics import normalized_mutual_info_score

    pred = np.asarray(pred)
    out = {"num_examples": int(len(pred)), "num_clusters": int(num_clusters),
           "clusters": predictability(cues, pred, seed), "labels": None, "beyond_labels": None, "named": [],
           "warnings": [], "thresholds": {"score": WARN_SCORE, "beyond_labels": WARN_BEYOND_LABELS,
                                          "name_share": NAME_SHARE}, "collapsed": list(collapsed or [])}
    known = None if labels is None else np.asarray(labels) >= 0
    if known is not None and known.any():
        y, mine = np.asarray(labels)[known], pred[known]
        seen = {k: v[known] for k, v in cues.items()}
        out["labels"] = predictability(seen, y, seed)
        out["labels"]["nmi"] = float(normalized_mutual_info_score(y, mine))
        both = predictability({"labels": one_hot(y), **seen}, mine, seed, per_family=False)["score"]
        alone = predictability({"labels": one_hot(y)}, mine, seed, per_family=False)["score"]
        if both is not None and alone is not None:
            out["beyond_labels"] = {"score": both - alone, "with_labels": both, "labels_only": alone}
    score = out["clusters"]["score"]
    if score is None or collapsed:
        return out
    beyond = out["beyond_labels"]
    if (beyond["score"] >= WARN_BEYOND_LABELS and score >= WARN_BEYOND_LABELS) if beyond else (score >= WARN_SCORE):
        out["named"] = named_cues(out["clusters"]["families"], score)
        out["warnings"].append(warning_line(out))
    return out


def nuisance_report(dataset, probs: np.ndarray, labels: np.ndarray | None, dataset_name: str,
                    seed: int = 0, collapsed: list[str] | None = None) -> dict:
    """The probe of a run's final assignment `probs` [N, K] on its training `dataset` (`collapsed`: see probe)."""
    n = dataset.num_examples
    idx = np.arange(n) if n <= MAX_EXAMPLES else np.linspace(0, n - 1, MAX_EXAMPLES).astype(np.int64)
    cues = image_cues(dataset, idx)
    if dataset_name.startswith(FOLDER_PREFIX):
        root = os.path.abspath(os.path.expanduser(dataset_name[len(FOLDER_PREFIX):]))
        files = dataset.example_ids(idx)
        if os.path.isdir(root) and all(os.path.exists(os.path.join(root, f)) for f in files[:20]):
            cues.update(source_cues(root, files, dataset.num_classes is not None))
    return probe(probs[idx].argmax(1), probs.shape[1], cues, None if labels is None else labels[idx], seed, collapsed)

