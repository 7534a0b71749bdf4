"""The command lines: argument parsing over library calls, one module per command.

    python -m ccjax train      cli/train.py         python -m ccjax evaluate   cli/evaluate.py
    python -m ccjax predict    cli/predict.py       python -m ccjax prepare    cli/prepare.py
    python -m ccjax anchors    cli/anchors.py       python -m ccjax attention  cli/attention.py
    python -m ccjax bench      cli/bench.py         python -m ccjax tables     cli/tables.py
    python -m ccjax explain    cli/explain.py

ccjax/__main__.py picks the command (also the console scripts `ccjax <command>` and `ccjax-train`);
`python -m ccjax.main --config=...` (ccjax/main.py, train) is kept for the scripts that name it.
flags.py: what every command shares (its --help, one-line flag and config errors). Each command
defines its flags only when it runs, so importing one defines none. No library module imports a
command.
"""
