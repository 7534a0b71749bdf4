"""2 processes x 2 devices on localhost (real subprocesses, CPU collectives) vs 1 process x 4 devices."""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "mp_worker.py")


def run_cmd(cmd, env_extra, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCJAX_", "SLURM_", "TPU_"))}
    env.update(env_extra)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    # start_new_session: on timeout the whole process group (launcher + workers) is killed.
    p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, _ = p.communicate()
        pytest.fail(f"timed out: {' '.join(cmd)}\n{out[-3000:]}")
    assert p.returncode == 0, out[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("objective,multi_input", [("gecc", "streamed")])
def test_two_processes_match_one_process(tmp_path, objective, multi_input):
    """1 process x 4 devices reading from memory against 2 x 2 streaming their rows through grain
    workers: the global batch, GeCC's losses and CDSM's cluster statistics span processes, and
    streamed multi-process input equals in-memory input. (CC's losses are GeCC's primitives
    unweighted; 4 devices against 1 for both objectives: tests/test_train.py.)"""
    single, multi = str(tmp_path / "single.npz"), str(tmp_path / "multi.npz")
    run_cmd([sys.executable, WORKER, objective, single], {"JAX_NUM_CPU_DEVICES": "4"})
    out = run_cmd(["bash", os.path.join(ROOT, "launch", "local.sh"), "2", "2", "--",
                   sys.executable, WORKER, objective, multi, "3", multi_input], {})
    assert "process 1/2 devices 4" in out, out
    a, b = np.load(single), np.load(multi)
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-5)
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


SPAWNING_SCRIPT = """
import os
import sys
from unittest import mock


def joined(**kwargs):
    if os.environ.get("SPAWNED_CHILD"):  # set by the parent just before it starts the child
        sys.exit(3)


with mock.patch("jax.distributed.initialize", joined):
    from ccjax.runtime import distributed

    distributed.maybe_initialize()  # at the top, as tests/mp_worker.py does


def child():
    from ccjax.runtime import distributed

    with mock.patch("jax.distributed.initialize", joined):
        distributed.maybe_initialize()  # and once more after start-up


if __name__ == "__main__":
    import multiprocessing

    os.environ["SPAWNED_CHILD"] = "1"
    p = multiprocessing.get_context("spawn").Process(target=child)
    p.start()
    p.join(120)
    print("child exit", p.exitcode)
"""


def test_an_input_worker_never_joins_the_cluster_its_parent_belongs_to(tmp_path):
    """grain's spawned workers re-import the launching script, whose top calls maybe_initialize
    (tests/mp_worker.py does): in a multiprocessing child, during that import or after, it must not
    join the cluster (it would take its parent's place: "tried to connect with a different incarnation")."""
    script = tmp_path / "spawning.py"
    script.write_text(SPAWNING_SCRIPT)
    env = {"CCJAX_COORDINATOR": "localhost:1", "CCJAX_NUM_PROCESSES": "2", "CCJAX_PROCESS_ID": "0",
           "JAX_PLATFORMS": "cpu"}
    out = run_cmd([sys.executable, str(script)], env, timeout=120)
    assert "child exit 0" in out, out
