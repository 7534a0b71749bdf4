"""Runs a few train steps of a tiny CC or GeCC model; used by test_multiprocess.py.

    python tests/mp_worker.py OBJECTIVE OUT.npz [STEPS] [memory|streamed]

Works as one process or as one of several started by launch/local.sh: the
global batches are the same either way, so the results must agree. `streamed`
reads the same images through grain workers (each process its own rows).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from ccjax.runtime import distributed  # noqa: E402

distributed.maybe_initialize()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from ccjax.train.loop import TrainingRun  # noqa: E402
from fakes import array_dataset, blob_images, streamed_dataset  # noqa: E402
from test_train import tiny_config  # noqa: E402


def replicated_value(x):
    return np.asarray(x.addressable_data(0))


def main():
    objective, out = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    streamed = len(sys.argv) > 4 and sys.argv[4] == "streamed"
    imgs, labels = blob_images(n=64)
    config = tiny_config(objective)
    dataset = streamed_dataset(imgs, labels, workers=1) if streamed else array_dataset(imgs, labels)
    run = TrainingRun(config, dataset=dataset)
    state = run.setup.init_state()
    losses = []
    for step, batch in run.batches.iterate(0, steps):
        state, metrics = run.train_step(state, batch)
        losses.append(float(replicated_value(metrics["loss"])))
    if jax.process_index() == 0:
        leaves = [replicated_value(x) for x in jax.tree.leaves(state.params)]
        np.savez(out, losses=np.array(losses), **{f"p{i}": v for i, v in enumerate(leaves)})
    print(f"process {jax.process_index()}/{jax.process_count()} devices {jax.device_count()} losses {losses}")


if __name__ == "__main__":
    main()
