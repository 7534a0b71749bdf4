"""A run: its directory (file names, config IO, atomic writes), what it is built from, its train
state and step, checkpoints, run log, and loading a trained run for inference.

- rundir.py: every file name in a workdir, config.json and run.json IO, atomic writes;
- build.py: ModelSetup (model, optimiser, state layout) and TrainingRun (plus data, batches, step);
- state.py: the TrainState, its sharded creation, the optimiser and the jitted train step;
- checkpoint.py: Orbax checkpoints (asynchronous saves, incomplete steps set aside);
- log.py: history.jsonl and TensorBoard;
- load.py: load_trained(workdir), the one loader evaluation, prediction and attention maps use.
"""
