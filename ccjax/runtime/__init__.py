"""Where the computation runs: the device mesh and shardings (mesh.py), multi-process start-up
(distributed.py) and stop requests from the scheduler (preemption.py)."""
