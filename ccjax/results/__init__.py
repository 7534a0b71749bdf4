"""The papers' result tables and the runs that reproduce them (the command is ccjax/cli/tables.py).

- paper_numbers.py: every number the papers report for a table ccjax reproduces, once, cited per table,
  with the rows `launch/reproduce.sh` runs (config file and overrides);
- collect.py: the run folders reproduce.sh wrote, read and checked against what the table expects;
- render.py: the collected table as Markdown, CSV and LaTeX;
- the papers' claims at small scale (`launch/reproduce.sh small`, docs/results.md): small_plan.py (the runs),
  small_measure.py (CAM mass, nuisance NMI, k-means), small_claims.py (the claims in the papers' words),
  small_collect.py (the table with a verdict per claim); cam_mass.py (Grad-CAM mass inside the object's mask)
  and verdict.py (the rule: Welch's 95% interval).
"""
