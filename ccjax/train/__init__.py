"""Training, read in order: state.py (model, optimiser, TrainState) -> step.py (one step) -> loop.py (the loop).

`python -m ccjax train` (ccjax/cli/train.py) calls `train_and_evaluate(config, workdir)`.
"""

from ccjax.train.loop import TrainingDiverged, TrainingRun, resolve_num_clusters, train_and_evaluate

__all__ = ["TrainingDiverged", "TrainingRun", "resolve_num_clusters", "train_and_evaluate"]
