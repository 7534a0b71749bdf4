"""The HTML of report/index.html (ccjax/report/page.py gathers what it shows).

One self-contained file: inline CSS and JavaScript, images only from files beside it in report/ (the
figures and the thumbnail sprites of ccjax/report/thumbnails.py), links to the original images of
a folder dataset; nothing from the network. In order: the header (run, command, quality), the
verdicts with their advice as commands to copy, one section per cluster (largest first; the first
OPEN_CLUSTERS open, the rest folded with lazily loaded images), then the figures.
"""

from __future__ import annotations

import html
import os
import pathlib

from ccjax.report.thumbnails import THUMB

OPEN_CLUSTERS = 12  # sections open when the page opens (the rest are folded; their images load when opened)

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1250px;padding:12px 20px;color:#222}
h1{font-size:21px;margin:6px 0}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #ddd}
table.meta td{padding:1px 12px 1px 0;vertical-align:top}
.verdict{border-left:5px solid #888;background:#f6f6f6;padding:8px 12px;margin:8px 0}
.verdict.warning{border-color:#d62728;background:#fff1f0}.verdict.note{border-color:#e6a100;background:#fff9e8}
.verdict.ok{border-color:#2ca02c;background:#f1fbf1}
pre.cmd{background:#272822;color:#f8f8f2;padding:7px 9px;white-space:pre-wrap;word-break:break-all;margin:6px 0 0}
button.copy{font-size:12px;margin-top:4px}
details.cluster{border:1px solid #ddd;border-radius:4px;margin:6px 0;padding:4px 8px}
details.cluster>summary{cursor:pointer;font-size:15px}
.row{display:flex;flex-wrap:wrap;align-items:flex-start;gap:4px;margin:4px 0}
.row>.lbl{width:120px;font-size:12px;color:#555;padding-top:4px}
figure.t{margin:0;width:%(t)dpx;font-size:10px;line-height:1.2}
figure.t img{width:%(t)dpx;height:%(t)dpx;object-fit:none;display:block;image-rendering:pixelated;background:#eee}
figure.t figcaption{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.fig img{max-width:100%%;border:1px solid #eee}.muted{color:#777}
""" % {"t": THUMB}

JS = """
document.querySelectorAll('button.copy').forEach(function(b){b.addEventListener('click',function(){
 var t=b.previousElementSibling.textContent;
 function done(){b.textContent='copied';setTimeout(function(){b.textContent='copy'},1500)}
 if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(t).then(done)}
 else{var a=document.createElement('textarea');a.value=t;document.body.appendChild(a);a.select();
  document.execCommand('copy');a.remove();done()}});});
"""

e = html.escape


def command_block(cmd: str) -> str:
    return f'<pre class="cmd">{e(cmd)}</pre><button class="copy" type="button">copy</button>' if cmd else ""


def header(d: dict) -> str:
    cfg, info, m = d["config"], d["info"], d["metrics"].get("last", {})
    n = len(d["assignments"]["ids"])
    rows = [("method", f"{cfg.get('method', '?')} ({cfg.get('model', {}).get('backbone', '?')} backbone)"),
            ("dataset", str(info.get("dataset") or cfg.get("dataset", {}).get("name", "?"))),
            ("images", f"{n:,}"), ("clusters (K)", str(d["k"])), ("workdir", os.path.abspath(d["workdir"]))]
    if "acc" in m:
        q = f"ACC {m['acc']:.3f} &nbsp; NMI {m['nmi']:.3f} &nbsp; ARI {m['ari']:.3f} (last checkpoint)"
        b = d["metrics"].get("best_by_train_loss")
        if b and "acc" in b:
            q += f"<br>ACC {b['acc']:.3f} &nbsp; NMI {b['nmi']:.3f} &nbsp; ARI {b['ari']:.3f} (best by training loss)"
        rows.append(("against the labels", q))
    s = d["verdicts"]["state"]
    sizes = sorted(s["cluster_sizes"], reverse=True)
    shown = ", ".join(map(str, sizes[:30])) + (", ..." if len(sizes) > 30 else "")
    rows.append(("cluster sizes", e(shown) + f" (largest first; {s['num_empty']} empty)"))
    if "entropy" in m:
        rows.append(("balance of the sizes", f"{m['entropy']:.3f} (entropy / log K: 1 = equal sizes, 0 = one cluster)"))
    rows.append(("mean top probability", f"{s['mean_top_prob']:.3f} (1/K = {1 / d['k']:.3f}: no preference; 1: certain)"))
    table = "".join(f"<tr><td class=muted>{e(k)}</td><td>{v if k in ('against the labels', 'cluster sizes') else e(v)}"
                    "</td></tr>" for k, v in rows)
    title = f"ccjax report: {os.path.basename(os.path.normpath(d['workdir']))}"
    cmd = f"<p class=muted>The command that trains this run again:</p>{command_block(d['command'])}" if d["command"] else ""
    return f"<h1>{e(title)}</h1><table class=meta>{table}</table>{cmd}"


def verdict_box(kind: str, title: str, text: str, cmd: str = "") -> str:
    return (f'<div class="verdict {kind}" data-verdict="{e(title)}"><b>{e(title)}</b><p>{e(text)}</p>'
            f"{command_block(cmd)}</div>")


def verdict_section(d: dict) -> str:
    v, nuisance, adv = d["verdicts"], d["nuisance"], d["verdicts"].get("advice", {})
    boxes = []
    if v["collapsed"]:
        boxes.append(verdict_box("warning", "Collapse", v["lines"][0], adv.get("command", "")))
    elif v["lines"]:
        boxes.append(verdict_box("note", "Low confidence", v["lines"][0], adv.get("command", "")))
    else:
        s = v["state"]
        boxes.append(verdict_box("ok", "Collapse and confidence", (
            f"No collapse: the largest cluster holds {s['largest_share']:.0%} of the images, {s['num_empty']} of "
            f"{d['k']} clusters are empty, {s['near_uniform_share']:.0%} of the images have a top probability "
            f"near 1/K, {s['unsure_share']:.0%} are unsure.")))
    if nuisance is None:
        boxes.append(verdict_box("note", "What do the clusters follow?", "The cue probe has not run on this run."))
    elif nuisance.get("collapsed") or v["degenerate"]:
        boxes.append(verdict_box("note", "What do the clusters follow?", (
            "The cue probe names no cue: the clustering collapsed (above), so what its few clusters can be "
            "told from says nothing about what the model learnt.")))
    elif nuisance.get("warnings"):
        boxes.append(verdict_box("warning", "What do the clusters follow?", nuisance["warnings"][0],
                                 d["probe_advice"].get("command", "")))
    else:
        score = nuisance.get("clusters", {}).get("score")
        boxes.append(verdict_box("ok", "What do the clusters follow?", (
            "No warning: the content-free cues do not explain the clusters" +
            (f" (score {score:.2f}: 0 = chance, 1 = exactly)." if score is not None else ".") +
            " See the nuisance figure below.")))
    sk = d.get("suggest_k")
    if sk and sk.get("line"):
        boxes.append(verdict_box("warning" if sk.get("flagged") else "ok", "Choosing K (--suggest_k)", sk["line"],
                                 sk.get("command", "")))
    return "<h2>Verdicts</h2>" + "".join(boxes)


def thumb(sprite: str, pos: int, ident: str, prob: float, label: str, link: str | None, lazy: bool) -> str:
    img = (f'<img src="{e(sprite)}" width={THUMB} height={THUMB} style="object-position:-{pos * THUMB}px 0" '
           f'alt="{e(ident)}"{" loading=lazy" if lazy else ""}>')
    if link:
        img = f'<a href="{e(link)}">{img}</a>'
    title = f"{ident} p={prob:.3f}" + (f" class {label}" if label else "")
    return (f'<figure class="t" title="{e(title)}">{img}<figcaption>{e(ident)}<br>p {prob:.2f}'
            f'{" · " + e(label) if label else ""}</figcaption></figure>')


def _link(d: dict, ident: str) -> str | None:
    return pathlib.Path(d["folder"], ident).as_uri() if d["folder"] else None


def cluster_section(d: dict, c: int, rank: int) -> str:
    a, s = d["assignments"], d["verdicts"]["state"]
    size, n = s["cluster_sizes"][c], s["num_examples"]
    lazy = rank >= OPEN_CLUSTERS
    head = f"<b>Cluster {c}</b> · {size:,} image{'s' if size != 1 else ''} ({size / n:.1%})"
    match = d["matched"].get(c)
    if match:
        head += (f" · matched to class <b>{e(match['class'])}</b>: {match['count']} of its {match['labelled']} "
                 "labelled images")
    body = []
    if c not in d["picks"]:
        body.append('<p class="muted">Empty: no image has its highest probability in this cluster.</p>')
    else:
        p, sprite = d["picks"][c], d["sprites"][c]
        labels = a["label"]

        def label(i: int) -> str:
            return a["class_of_label"].get(int(labels[i]), "") if labels is not None and labels[i] >= 0 else ""

        most, least = p["most"].tolist(), p["least"].tolist()
        row_name = "most confident" if least else "all its images, most confident first"
        tiles = [thumb(sprite, j, a["ids"][i], a["prob"][i], label(i), _link(d, a["ids"][i]), lazy)
                 for j, i in enumerate(most + least)]
        body.append(f'<div class="row most"><span class="lbl">{row_name}</span>{"".join(tiles[:len(most)])}</div>')
        if least:
            body.append(f'<div class="row least"><span class="lbl">least confident</span>{"".join(tiles[len(most):])}</div>')
        cam = (d["cams"] or {}).get("clusters", {}).get(str(c))
        if cam:
            maps = [thumb(cam["strip"], j, a["ids"][i], pr, label(i), None, lazy)
                    for j, (i, pr) in enumerate(zip(cam["indices"], cam["probs"]))]
            body.append(f'<div class="row cam"><span class="lbl">where the model looks ({e(d["cams"]["kind"])}; '
                        f'red: high)</span>{"".join(maps)}</div>')
    return (f'<details class="cluster" id="cluster-{c}" data-cluster="{c}" data-size="{size}"'
            f'{" open" if not lazy else ""}><summary>{head}</summary>{"".join(body)}</details>')


FIGURE_CAPTIONS = {
    "confusion.png": "Clusters against the true classes (confusion.csv holds the whole matrix)",
    "curves.png": "Training losses and, where evaluated, ACC/NMI/ARI per epoch",
    "nuisance.png": "What do the clusters follow? Each content-free cue's score (0 = chance, 1 = exactly)",
    "cams.png": "Where the model looks on the most confident images of the largest clusters",
    "suggest_k.png": "Choosing K: stability and silhouette of k-means on the learned features",
}


def clusters_section(d: dict) -> str:
    sizes = d["verdicts"]["state"]["cluster_sizes"]
    order = sorted(range(d["k"]), key=lambda c: (-sizes[c], c))
    folded = f" The first {OPEN_CLUSTERS} are open; click a cluster to open it." if d["k"] > OPEN_CLUSTERS else ""
    intro = (f'<p class="muted">All {d["k"]} clusters, largest first: each one\'s most and least confident images '
             f"(p: the cluster's probability; hover for the full id"
             f'{", click for the original file" if d["folder"] else ""}).{folded}</p>')
    return "<h2>Clusters</h2>" + intro + "".join(cluster_section(d, c, r) for r, c in enumerate(order))


def figures_section(d: dict) -> str:
    figs = "".join(f'<div class="fig"><p>{e(FIGURE_CAPTIONS[f])}</p><img src="{e(f)}" alt="{e(f)}"></div>'
                   for f in d["figures"])
    files = ("assignments.csv (every image's cluster and probability), metrics.json, nuisance.json, "
             "verdicts.json")
    return f"<h2>Figures</h2>{figs}<p class=muted>Beside this page: {e(files)}.</p>"


def render(d: dict) -> str:
    title = f"ccjax report: {os.path.basename(os.path.normpath(d['workdir']))}"
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
            f"{header(d)}{verdict_section(d)}{clusters_section(d)}{figures_section(d)}"
            f"<script>{JS}</script></body></html>\n")
