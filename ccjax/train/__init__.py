"""Training, read in order: state.py (model, optimiser, TrainState) -> step.py (one step) -> loop.py (the loop).

`python -m ccjax.main` (ccjax/main.py) calls `train_and_evaluate(config, workdir)`.
"""

__all__ = ["TrainingDiverged", "TrainingRun", "resolve_num_clusters", "train_and_evaluate"]


def __getattr__(name: str):
    # `from ccjax.train import train_and_evaluate` loads the loop only when asked: the loop imports the
    # services of ccjax/run/, and ccjax/run/load.py needs ccjax/train/state.py, so an eager import here
    # would go round in a circle.
    if name in __all__:
        from ccjax.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'ccjax.train' has no attribute {name!r}")
