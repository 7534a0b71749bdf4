"""Everything a run leaves under `<workdir>/report/` (and the figures of `ccjax explain` and `ccjax attention`):
run_report.py (evaluate_run: the scores written, then the report), report.py (metrics, confusion, clusters,
curves, assignments.csv), nuisance.py, cam_figures.py, suggest_k.py, attention_figure.py; figures.py is the one
figure writer."""
