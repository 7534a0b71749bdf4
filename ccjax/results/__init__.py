"""The papers' result tables and the runs that reproduce them (the command is ccjax/cli/tables.py).

- paper_numbers.py: every number the papers report for a table ccjax reproduces, once, cited per table,
  with the rows `launch/reproduce.sh` runs (config file and overrides);
- collect.py: the run folders reproduce.sh wrote, read and checked against what the table expects;
- render.py: the collected table as Markdown, CSV and LaTeX.
"""
