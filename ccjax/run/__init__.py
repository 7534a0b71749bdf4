"""The services a training run calls (ccjax/train/loop.py), and loading a trained run for inference.

- rundir.py: every file name in a workdir, config.json and run.json IO, the workdir lock, atomic writes;
- checkpoint.py: Orbax checkpoints (asynchronous saves, incomplete steps set aside);
- log.py: history.jsonl and TensorBoard;
- load.py: load_trained(workdir), the one loader evaluation, prediction and attention maps use.
"""
