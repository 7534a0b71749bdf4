"""The papers' numbers for every table ccjax reproduces, and the rows `launch/reproduce.sh` runs for it.

Each `PaperTable` names the table of `launch/reproduce.sh TABLE`; each `Row` is one row of it: the
run folder name reproduce.sh writes (`runs/<table>/<row>/<dataset>[/seed<k>]`), the config file and
the overrides it passes (tests/test_tables.py checks them against reproduce.sh's printed commands),
and the paper's numbers, transcribed from the papers' text (/work/shared/papers in the project;
the citation is each table's `source`). docs/results.md shows the same numbers (tested).

Numbers are written in the paper's own layout, one tuple per row or per metric block, so each line
can be checked against the paper by eye; `None` is a cell the paper leaves empty.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

DATASET_NAMES = {
    "cifar10": "CIFAR-10", "cifar100": "CIFAR-100 (20)", "imagenet10": "ImageNet-10",
    "imagenet_dogs": "ImageNet-Dogs", "rsod": "RSOD", "uc_merced": "UC-Merced", "siri_whu": "SIRI-WHU",
    "aid": "AID",
}
METRIC_NAMES = {"acc": "ACC", "nmi": "NMI", "ari": "ARI"}

GECC = "Chen et al., \"Generalized Contrastive Clustering with Domain Shifts Modeling\", AAAI 2025"
MFAVBS = ("Wang et al., \"Improve Contrastive Clustering Performance by Multiple Fusing-Augmenting "
          "ViT Blocks\"")


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of a table: what reproduce.sh runs for it, and the paper's numbers.

    key: the run folder reproduce.sh writes (runs/<table>/<key>/<dataset>[/seed<k>]).
    config: the config file stem, `{ds}` standing for the dataset (configs/<stem>.py).
    overrides: {dotted config field: value} reproduce.sh passes as --config.<field>=<value>.
    paper: {dataset: {metric: number}}; a metric or dataset the paper does not give is absent.
    """

    key: str
    label: str
    config: str
    overrides: Mapping[str, object]
    paper: Mapping[str, Mapping[str, float]]

    def config_stem(self, dataset: str) -> str:
        return self.config.format(ds=dataset)


@dataclasses.dataclass(frozen=True)
class PaperTable:
    """A table of a paper: its rows (methods or ablations) x datasets x metrics (the paper's order)."""

    name: str  # reproduce.sh's TABLE
    title: str
    source: str  # the paper and the table or figure the numbers come from
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[Row, ...]
    digits: int  # decimals the paper prints
    note: str = ""

    def row(self, key: str) -> Row:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)


def _by_dataset(datasets: Sequence[str], metrics: Sequence[str], values: Sequence[float | None]) -> dict:
    """A row printed dataset by dataset, metrics inside (GeCC's layout) -> {dataset: {metric: value}}."""
    assert len(values) == len(datasets) * len(metrics), (len(values), datasets, metrics)
    out: dict = {}
    for i, ds in enumerate(datasets):
        cells = {m: values[i * len(metrics) + j] for j, m in enumerate(metrics)}
        out[ds] = {m: v for m, v in cells.items() if v is not None}
    return out


def _by_metric(datasets: Sequence[str], blocks: Mapping[str, Sequence[float | None]]) -> dict:
    """A row printed metric block by metric block (MFAVBs-CC's layout) -> {dataset: {metric: value}}."""
    out: dict = {ds: {} for ds in datasets}
    for metric, values in blocks.items():
        assert len(values) == len(datasets), (metric, values)
        for ds, v in zip(datasets, values):
            if v is not None:
                out[ds][metric] = v
    return out


# ----------------------------------------------------------------------------- GeCC

GECC_SETS = ("cifar10", "cifar100", "imagenet10", "imagenet_dogs")
GECC_METRICS = ("nmi", "acc", "ari")  # the paper's column order

# Table 2 / Table 3, row by row: CIFAR-10, CIFAR-100, ImageNet-10, ImageNet-Dogs, each NMI ACC ARI.
_GECC_OURS = (0.7559, 0.8440, 0.7108, 0.4419, 0.4518, 0.2878, 0.9092, 0.9615, 0.9167, 0.5495, 0.6028, 0.4213)
_GECC_TABLE3 = {
    # key: (label, config, overrides, numbers)
    "cc": ("CC", "cc_{ds}", {},
           (0.7050, 0.7900, 0.6370, 0.4310, 0.4290, 0.2660, 0.8590, 0.8930, 0.8220, 0.4450, 0.4290, 0.2740)),
    "w_aug": ("w Aug", "gecc_{ds}", {"gecc.reference": "aug"},
              (0.6858, 0.7787, 0.6197, 0.4349, 0.4200, 0.2789, 0.8475, 0.8940, 0.8168, 0.4600, 0.4650, 0.3034)),
    "w_dsu": ("w DSU", "gecc_{ds}", {"gecc.reference": "dsu"},
              (0.6943, 0.7893, 0.6734, 0.4230, 0.4105, 0.2564, 0.8521, 0.9057, 0.8260, 0.5158, 0.5453, 0.3800)),
    "wo_w": ("w/o W", "gecc_{ds}", {"gecc.weights": "none"},
             (0.6255, 0.7058, 0.5348, 0.4330, 0.4371, 0.2809, 0.8543, 0.8944, 0.8213, 0.4369, 0.4385, 0.2789)),
    "w_wc": ("w W_c", "gecc_{ds}", {"gecc.weights": "wc"},
             (0.5831, 0.6530, 0.4752, 0.3962, 0.3911, 0.2359, 0.8111, 0.8672, 0.7737, 0.3461, 0.3675, 0.2039)),
    "w_wz": ("w W_z", "gecc_{ds}", {"gecc.weights": "wz"},
             (0.6141, 0.6710, 0.5114, 0.4374, 0.4427, 0.2768, 0.8422, 0.8872, 0.8090, 0.4292, 0.4455, 0.2733)),
    "ours": ("Ours", "gecc_{ds}", {}, _GECC_OURS),
}

GECC_TABLE2 = PaperTable(
    name="gecc-table2",
    title="GeCC, Table 2: clustering performance",
    source=f"{GECC}, Table 2 (row 'Ours')",
    datasets=GECC_SETS, metrics=GECC_METRICS, digits=4,
    rows=(Row("gecc", "GeCC", "gecc_{ds}", {}, _by_dataset(GECC_SETS, GECC_METRICS, _GECC_OURS)),),
)

GECC_TABLE3 = PaperTable(
    name="gecc-table3",
    title="GeCC, Table 3: ablations",
    source=f"{GECC}, Table 3",
    datasets=GECC_SETS, metrics=GECC_METRICS, digits=4,
    rows=tuple(Row(key, label, cfg, ov, _by_dataset(GECC_SETS, GECC_METRICS, nums))
               for key, (label, cfg, ov, nums) in _GECC_TABLE3.items()),
)

# ----------------------------------------------------------------------------- MFAVBs-CC

MFAVBS_SETS = ("rsod", "uc_merced", "siri_whu", "aid", "imagenet10", "cifar10", "cifar100")
RS_SETS = ("rsod", "uc_merced", "siri_whu", "aid")
MFAVBS_METRICS = ("acc", "nmi", "ari")

# Table 2, row MFAVBs-CC, per metric over the seven datasets (the paper adds a spread "±x%" per cell,
# kept in MFAVBS_TABLE2_SPREAD_PERCENT; it does not say over how many runs).
_MFAVBS_MAIN = {
    "acc": (0.686, 0.676, 0.743, 0.859, 0.962, 0.883, 0.523),
    "nmi": (0.707, 0.753, 0.754, 0.895, 0.921, 0.784, 0.496),
    "ari": (0.604, 0.587, 0.658, 0.801, 0.928, 0.759, 0.327),
}
MFAVBS_TABLE2_SPREAD_PERCENT = {
    "acc": (0.1, 0.2, 0.3, 0.9, 0.1, 0.3, 0.2),
    "nmi": (0.3, 1.2, 0.4, 0.3, 0.2, 0.5, 1.4),
    "ari": (0.7, 0.4, 0.6, 0.1, 0.5, 0.6, 0.9),
}

MFAVBS_TABLE2 = PaperTable(
    name="mfavbs-table2",
    title="MFAVBs-CC, Table 2: clustering performance",
    source=f"{MFAVBS}, Table 2 (row 'MFAVBs-CC')",
    datasets=MFAVBS_SETS, metrics=MFAVBS_METRICS, digits=3,
    rows=(Row("mfavbs", "MFAVBs-CC", "mfavbs_{ds}", {}, _by_metric(MFAVBS_SETS, _MFAVBS_MAIN)),),
    note="The paper gives each cell a spread '±x%' without saying over how many runs.",
)

# Table 4, per method and metric over the seven datasets. MFAVBs-CC's ARI on SIRI-WHU is 0.628 here
# and 0.658 in Table 2; each table keeps its own.
_MFAVBS_TABLE4 = {
    "vtcc": ("VTCC", "vtcc_{ds}", {}, {
        "acc": (0.572, 0.553, 0.670, 0.716, 0.926, 0.813, 0.455),
        "nmi": (0.611, 0.658, 0.693, 0.794, 0.882, 0.735, 0.432),
        "ari": (0.482, 0.453, 0.554, 0.622, 0.891, 0.664, 0.281)}),
    "method_a": ("MethodA (no CLIP)", "mfavbs_{ds}", {"anchor.enabled": False}, {
        "acc": (0.645, 0.652, 0.719, 0.824, 0.953, 0.872, 0.513),
        "nmi": (0.673, 0.732, 0.746, 0.864, 0.919, 0.771, 0.486),
        "ari": (0.581, 0.552, 0.604, 0.743, 0.915, 0.747, 0.305)}),
    "method_b": ("MethodB (CLIP, no fusion)", "mfavbs_{ds}", {"model.vit.fusion": "none"}, {
        "acc": (0.667, 0.661, 0.731, 0.839, 0.947, 0.867, 0.491),
        "nmi": (0.669, 0.741, 0.753, 0.852, 0.914, 0.780, 0.472),
        "ari": (0.593, 0.566, 0.619, 0.775, 0.917, 0.752, 0.311)}),
    "mfavbs": ("MFAVBs-CC", "mfavbs_{ds}", {}, {
        "acc": (0.686, 0.676, 0.743, 0.859, 0.962, 0.883, 0.523),
        "nmi": (0.707, 0.753, 0.754, 0.895, 0.921, 0.784, 0.496),
        "ari": (0.604, 0.587, 0.628, 0.801, 0.928, 0.759, 0.327)}),
}

MFAVBS_TABLE4 = PaperTable(
    name="mfavbs-table4",
    title="MFAVBs-CC, Table 4: ablations",
    source=f"{MFAVBS}, Table 4",
    datasets=MFAVBS_SETS, metrics=MFAVBS_METRICS, digits=3,
    rows=tuple(Row(key, label, cfg, ov, _by_metric(MFAVBS_SETS, blocks))
               for key, (label, cfg, ov, blocks) in _MFAVBS_TABLE4.items()),
)

# Table 7 (Sec. 4.7), ACC only (the values of the clean row are Table 2's ACC): before and after
# blacking out 30-50% of each image's area (ccjax/data/masking.py).
MFAVBS_TABLE7 = PaperTable(
    name="mfavbs-table7",
    title="MFAVBs-CC, Table 7: robustness to masked-out image areas (ACC)",
    source=f"{MFAVBS}, Sec. 4.7 and Table 7",
    datasets=RS_SETS, metrics=("acc",), digits=3,
    rows=(
        Row("mfavbs", "MFAVBs-CC", "mfavbs_{ds}", {}, _by_metric(RS_SETS, {"acc": (0.686, 0.676, 0.743, 0.859)})),
        Row("masked", "MFAVBs-CC add noise", "mfavbs_{ds}", {"dataset.mask_noise.enabled": True},
            _by_metric(RS_SETS, {"acc": (0.683, 0.672, 0.742, 0.851)})),
    ),
    note="The paper gives one number per cell, ACC (its clean row equals Table 2's ACC).",
)

# Figs. 5 and 6 (Sec. 4.6): plots only, no number in the text, so no paper column.
MFAVBS_DEPTH = PaperTable(
    name="mfavbs-depth",
    title="MFAVBs-CC, Fig. 5: depth 2-10 (one FAVB per two blocks)",
    source=f"{MFAVBS}, Sec. 4.6.1 and Fig. 5 (a plot: the text gives no numbers)",
    datasets=RS_SETS, metrics=("acc",), digits=3,
    rows=tuple(Row(f"depth{d}", f"depth {d}, N={d // 2}", "mfavbs_{ds}",
                   {"model.vit.depth": d, "model.vit.num_fusing_blocks": d // 2}, {}) for d in (2, 4, 6, 8, 10)),
    note="The paper reports this sweep as a plot only; its text says ACC peaks at depth 8 and drops at 10.",
)

MFAVBS_FAVBS = PaperTable(
    name="mfavbs-favbs",
    title="MFAVBs-CC, Fig. 6: N = 0-4 FAVBs at depth 8",
    source=f"{MFAVBS}, Sec. 4.6.2 and Fig. 6 (a plot: the text gives no numbers)",
    datasets=RS_SETS, metrics=("acc",), digits=3,
    rows=tuple(Row(f"n{n}", f"N={n}", "mfavbs_{ds}", {"model.vit.depth": 8, "model.vit.num_fusing_blocks": n}, {})
               for n in range(5)),
    note="The paper reports this sweep as a plot only; its text says N=4 is best.",
)

TABLES: dict[str, PaperTable] = {t.name: t for t in (
    GECC_TABLE2, GECC_TABLE3, MFAVBS_TABLE2, MFAVBS_TABLE4, MFAVBS_TABLE7, MFAVBS_DEPTH, MFAVBS_FAVBS)}

# Table 6 (Sec. 4.5): seconds per epoch and minutes to convergence on a V100-SXM2-32GB, batch 128;
# `python -m ccjax bench` measures the first (launch/reproduce.sh mfavbs-table6).
MFAVBS_TABLE6 = {
    "source": f"{MFAVBS}, Sec. 4.5 and Table 6",
    "datasets": MFAVBS_SETS,
    "vtcc_epoch_s": (6.383, 12.470, 13.481, 64.668, 75.148, 371.033, 371.369),
    "mfavbs_epoch_s": (8.363, 15.203, 15.772, 70.068, 82.005, 387.568, 387.783),
    "vtcc_total_min": (34.042, 83.133, 89.873, 700.57, 826.628, 6183.883, 6189.483),
    "mfavbs_total_min": (27.877, 76.015, 78.86, 618.934, 724.378, 4198.653, 4200.983),
}
