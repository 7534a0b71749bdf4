"""What `evaluate --suggest_k` tells a user to do with the K it found.

k-means runs on the run's own learned features. When the run's cue probe warned (report/nuisance.json)
that its clusters follow a content-free cue, those features follow the cue too, and the most stable K
is as likely the number of the cue's levels as a number of kinds of content (seen: K = 2 on a
10-class folder whose clusters followed the background colour). Then the verdict says so and its
command retrains with the probe's advice at the run's own K, to choose K again on that run; else it
retrains with the suggested K (ccjax/run/command_line.py's retrain_advice). The verdict is also written
into report/suggest_k.json, which the report page shows.
"""

from __future__ import annotations

import os

from ccjax.explain.nuisance import REMEDIES
from ccjax.report.advice import probe_advice
from ccjax.run.command_line import retrain_advice
from ccjax.run.rundir import REPORT_DIR, read_json_or_none, write_json_atomic



def suggest_k_verdict(workdir: str, k: int, trained_k: int) -> dict:
    """{'flagged': whether the probe had warned, 'line': the text to print, 'command': the command}."""
    report = os.path.join(workdir, REPORT_DIR)
    nuisance = read_json_or_none(os.path.join(report, "nuisance.json")) or {}
    if not nuisance.get("warnings") or nuisance.get("collapsed"):
        text = retrain_advice(workdir, k, trained_k)
        line, _, command = text.partition("\n")
        return {"flagged": False, "line": line, "command": command.strip()}
    named = nuisance.get("named") or []
    cue = REMEDIES[named[0]][0] if named and named[0] in REMEDIES else "a content-free cue"
    advice = probe_advice(workdir, nuisance, k=trained_k)
    line = (f"ccjax: warning: the cue probe flagged this run's clusters (report/nuisance.json: they follow "
            f"chiefly {cue}), and the features clustered here are that model's: K = {k} may count the cue's "
            f"levels rather than kinds of content. ")
    if advice:
        line += (f"Retrain with the probe's advice first, keeping K = {trained_k}, then run --suggest_k on "
                 "the new run:")
    else:
        line += "ccjax knows no setting that removes this cue; treat the suggested K with care."
    return {"flagged": True, "line": line, "command": advice.get("command", "")}


def record(workdir: str, verdict: dict) -> None:
    """Adds the verdict to report/suggest_k.json (written by ccjax/report/suggest_k.py)."""
    path = os.path.join(workdir, REPORT_DIR, "suggest_k.json")
    data = read_json_or_none(path) or {}
    write_json_atomic(path, {**data, **verdict})
