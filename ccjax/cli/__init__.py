"""The command lines: argument parsing over library calls, one module per command.

    python -m ccjax.main       train (ccjax/main.py)
    python -m ccjax.evaluate   cli/evaluate.py      python -m ccjax.predict    cli/predict.py
    python -m ccjax.prepare    cli/prepare.py       python -m ccjax.anchors  cli/anchors.py
    python -m ccjax.attention  cli/attention.py     python -m ccjax.bench      cli/bench.py
    python -m ccjax.tables     cli/tables.py        python -m ccjax.explain    cli/explain.py

`python -m ccjax.<command>` runs the module here (see the entry modules in ccjax/).
No library module imports a command.
"""
