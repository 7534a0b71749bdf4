"""Everything a run leaves under `<workdir>/report/` (and the figures of `ccjax explain` and `ccjax attention`):
run_report.py (evaluate_run: the scores written, then the report), report.py (metrics, confusion, clusters,
curves, assignments.csv), nuisance.py, cam_figures.py, suggest_k.py, attention_figure.py; figures.py is the one
figure writer. The browsable page report/index.html: page.py gathers, html.py draws, thumbnails.py writes the
per-cluster sprites; verdicts.py (collapse, low confidence) and advice.py (the commands to try) are what the page
and the commands print; suggest_k_advice.py is --suggest_k on a run the cue probe flagged."""
