"""Where the computation runs: the device mesh and shardings (mesh.py), multi-process start-up
(distributed.py), stop requests from the scheduler (preemption.py) and opt-in XLA settings applied
on import (xla_flags.py)."""
