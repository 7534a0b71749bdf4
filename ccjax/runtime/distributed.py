"""Multi-process start-up: call `jax.distributed.initialize` only when the environment asks for it.

A run is multi-process when one of these says so:
- explicit variables: CCJAX_COORDINATOR (host:port), CCJAX_NUM_PROCESSES, CCJAX_PROCESS_ID
  (what launch/local.sh sets);
- SLURM with more than one task (SLURM_NTASKS > 1): JAX reads SLURM's own variables;
- a TPU VM pod slice with more than one worker (TPU_WORKER_HOSTNAMES lists several hosts):
  JAX reads the TPU metadata.
Otherwise the run is a single process and nothing is initialised.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import jax
import numpy as np
from jax.experimental import multihost_utils

from ccjax.errors import UserError


def multiprocess_request() -> dict | None:
    """The keyword arguments for jax.distributed.initialize, or None for a single process."""
    env = os.environ
    if env.get("CCJAX_COORDINATOR"):
        try:
            num = int(env["CCJAX_NUM_PROCESSES"])
            pid = int(env["CCJAX_PROCESS_ID"])
        except (KeyError, ValueError):
            raise UserError(
                "CCJAX_COORDINATOR is set, so CCJAX_NUM_PROCESSES and CCJAX_PROCESS_ID must be "
                "integers too (see launch/local.sh)"
            ) from None
        if not 0 <= pid < num:
            raise UserError(f"CCJAX_PROCESS_ID={pid} must be in [0, CCJAX_NUM_PROCESSES={num})")
        kwargs = dict(coordinator_address=env["CCJAX_COORDINATOR"], num_processes=num, process_id=pid)
        if env.get("CCJAX_LOCAL_DEVICE_IDS"):
            kwargs["local_device_ids"] = [int(x) for x in env["CCJAX_LOCAL_DEVICE_IDS"].split(",")]
        return kwargs
    if int(env.get("SLURM_NTASKS", "1") or 1) > 1 and env.get("SLURM_JOB_ID"):
        return {}  # jax's SLURM cluster detection fills in the rest
    hosts = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]
    if len(hosts) > 1:
        return {}  # jax's TPU cluster detection fills in the rest
    return None


_initialized = False


def maybe_initialize() -> bool:
    """Initialise jax.distributed when the environment describes a multi-process run.

    Returns True when this is a multi-process run. Safe to call twice. A
    multiprocessing child (a grain input worker, which re-imports the launching
    script) never joins: it would take its parent's place in the cluster.
    """
    global _initialized
    kwargs = multiprocess_request()
    if kwargs is None:
        return False
    if _in_multiprocessing_child():
        return False
    if not _initialized:
        jax.distributed.initialize(**kwargs)
        _initialized = True
    return True


def _in_multiprocessing_child() -> bool:
    """True in a process started by multiprocessing, including while it re-imports the launching
    script as `__mp_main__` (before `parent_process()` is set)."""
    # multiprocessing aliases sys.modules['__mp_main__'] to '__main__' in every process; while a
    # spawned child re-imports the script, runpy holds that import there instead.
    reimporting = sys.modules.get("__mp_main__", sys.modules.get("__main__")) is not sys.modules.get("__main__")
    return multiprocessing.parent_process() is not None or reimporting


def is_main_process() -> bool:
    """Only process 0 writes logs, reports and plots."""
    return jax.process_index() == 0


def all_processes_agree(ok: bool) -> bool:
    """True iff `ok` on every process (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return ok
    flags = multihost_utils.process_allgather(np.asarray([int(ok)], np.int32))
    return bool(np.all(flags))
