"""A collected table (ccjax.results.collect) as Markdown, CSV and LaTeX, in the paper's layout.

One row per method or ablation, one column group per dataset with the paper's metrics in the paper's
order. A ccjax cell is mean ± sample standard deviation (ddof=1) over n seeds; beside it the paper's
number and the difference ccjax - paper. Runs that are unfinished, missing or flagged (a config other
than the table's) are counted in the cell and listed under the table, never averaged.
"""

from __future__ import annotations

import csv
import io

from ccjax.results.collect import Cell, CollectedTable
from ccjax.results.paper_numbers import DATASET_NAMES, METRIC_NAMES

_MINUS = "\u2212"


def _num(x: float | None, digits: int, signed: bool = False) -> str:
    if x is None:
        return ""
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    return text.replace("-", _MINUS) if signed else text


def _status(cell: Cell) -> str:
    """'1 unfinished, 1 flagged, 2 missing' (what of the cell is not averaged), or ''."""
    parts = [f"{cell.count(s)} {s}" for s in ("unfinished", "flagged") if cell.count(s)]
    if cell.missing:
        parts.append(f"{len(cell.missing)} missing")
    return ", ".join(parts)


def _spread(cell: Cell, metric: str, digits: int) -> str:
    """'0.8431 ± 0.0120 (n=3)', '0.8431 (n=1)', or what stands in for a value: missing, unfinished, flagged."""
    mean, std, n = cell.stats(metric)
    if n == 0:
        return _status(cell) or "missing"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "") + f" (n={n})"


def header_note(ct: CollectedTable) -> str:
    t = ct.table
    which = "last checkpoint" if ct.checkpoint == "last" else "best-by-training-loss checkpoint"
    return (f"Source: {t.source}.{(' ' + t.note) if t.note else ''}\n"
            f"ccjax: the {which} of each run, mean ± sample standard deviation (ddof=1) over n seeds; "
            f"Δ = ccjax {_MINUS} paper. Runs from {ct.root}.")


def markdown(ct: CollectedTable) -> str:
    t = ct.table
    d = t.digits
    cols = [(ds, m) for ds in t.datasets for m in t.metrics]
    lines = [f"## {t.title}", "", header_note(ct), "",
             "| row | " + " | ".join(f"{DATASET_NAMES.get(ds, ds)} {METRIC_NAMES[m]}" for ds, m in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for row in t.rows:
        cells = []
        for ds, m in cols:
            cell = ct.cell(row.key, ds)
            text = _spread(cell, m, d)
            paper = cell.paper(m)
            mean = cell.stats(m)[0]
            if paper is not None:
                text += f"<br>paper {paper:.{d}f}" + (f", Δ {_num(mean - paper, d, True)}" if mean is not None else "")
            status = _status(cell)
            if cell.done and status:
                text += f"<br>({status})"
            cells.append(text)
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines += ["", *_not_averaged(ct)]
    return "\n".join(lines).rstrip() + "\n"


def _not_averaged(ct: CollectedTable) -> list[str]:
    """Bullet lines: every unfinished, flagged and missing run, and folders that are not the table's."""
    out = []
    for cell in ct.cells.values():
        for r in cell.runs:
            if r.state != "done":
                out.append(f"- {r.state}: {r.path}: {r.why}")
        out += [f"- missing: {p}" for p in cell.missing]
    out += [f"- not a row or dataset of {ct.table.name}, ignored: {p}" for p in ct.ignored]
    return (["Not averaged:", *out] if out else ["Every expected run is finished and matches the table's config."])


def csv_text(ct: CollectedTable) -> str:
    """One line per row (the paper's layout): per dataset and metric mean, std (ddof=1), n, paper, diff;
    per dataset the counts of unfinished, flagged and missing runs. Empty = no value."""
    t = ct.table
    head = ["row", "label"]
    for ds in t.datasets:
        for m in t.metrics:
            head += [f"{ds}.{m}.{k}" for k in ("mean", "std", "n", "paper", "diff")]
        head += [f"{ds}.unfinished", f"{ds}.flagged", f"{ds}.missing"]
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for row in t.rows:
        line: list = [row.key, row.label]
        for ds in t.datasets:
            cell = ct.cell(row.key, ds)
            for m in t.metrics:
                mean, std, n = cell.stats(m)
                paper = cell.paper(m)
                diff = mean - paper if (mean is not None and paper is not None) else None
                line += [_g(mean), _g(std), n, _g(paper), _g(diff)]
            line += [cell.count("unfinished"), cell.count("flagged"), len(cell.missing)]
        w.writerow(line)
    return buf.getvalue()


def _g(x: float | None) -> str:
    return "" if x is None else repr(round(float(x), 10))


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(c, c) for c in text)


def latex(ct: CollectedTable) -> str:
    """A booktabs tabular: per row a ccjax line (mean ± std, n in brackets), a paper line and a Δ line."""
    t = ct.table
    d = t.digits
    k = len(t.metrics)
    spec = "l" + " ".join("c" * k for _ in t.datasets)
    lines = [f"% {t.title}. " + header_note(ct).replace("\n", "\n% "), "% needs \\usepackage{booktabs}",
             f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & " + " & ".join(f"\\multicolumn{{{k}}}{{c}}{{{_tex(DATASET_NAMES.get(ds, ds))}}}" for ds in t.datasets)
             + r" \\",
             " ".join(f"\\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(t.datasets))),
             "Method & " + " & ".join(METRIC_NAMES[m] for _ in t.datasets for m in t.metrics) + r" \\",
             "\\midrule"]
    for i, row in enumerate(t.rows):
        ours, paper, delta = [], [], []
        for ds in t.datasets:
            cell = ct.cell(row.key, ds)
            for m in t.metrics:
                mean, std, n = cell.stats(m)
                p = cell.paper(m)
                if n:
                    ours.append(f"${mean:.{d}f}" + (f" \\pm {std:.{d}f}" if std is not None else "")
                                + f"$\\,{{\\scriptsize({n})}}")
                else:
                    ours.append(f"\\textit{{{_tex(_status(cell) or 'missing')}}}")
                paper.append(f"{p:.{d}f}" if p is not None else "--")
                delta.append(f"${mean - p:+.{d}f}$" if (n and p is not None) else "--")
        label = _tex(row.label)
        lines.append(f"{label} (ccjax) & " + " & ".join(ours) + r" \\")
        if any(v != "--" for v in paper):
            lines.append(f"{label} (paper) & " + " & ".join(paper) + r" \\")
            lines.append("$\\Delta$ & " + " & ".join(delta) + r" \\")
        if i < len(t.rows) - 1:
            lines.append("\\midrule")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"
