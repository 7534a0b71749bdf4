"""Training, read in order: state.py (model, optimiser, TrainState) -> step.py (one step) -> loop.py (the loop).

checks.py holds what every run checks (K against the data, divergence); temi.py is method=temi's run
on frozen features, to which loop.py's train_and_evaluate hands such a config.
`python -m ccjax train` (ccjax/cli/train.py) calls `train_and_evaluate(config, workdir)`.
"""

from ccjax.train.checks import TrainingDiverged, resolve_num_clusters
from ccjax.train.loop import TrainingRun, train_and_evaluate

__all__ = ["TrainingDiverged", "TrainingRun", "resolve_num_clusters", "train_and_evaluate"]
