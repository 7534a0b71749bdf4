"""Checkpoints: restore onto fewer devices, skip an incomplete latest step."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np

from ccjax.run.checkpoint import Checkpointer, is_complete
from ccjax.runtime.mesh import batch_sharding, make_mesh, replicated


def state_on(mesh):
    rep, sh = replicated(mesh), batch_sharding(mesh)
    return {
        "w": jax.device_put(jnp.arange(12.0).reshape(3, 4), rep),
        "rows": jax.device_put(jnp.arange(16.0).reshape(8, 2), sh),
        "step": jax.device_put(jnp.int32(7), rep),
    }


def abstract_on(mesh, like):
    specs = {"w": replicated(mesh), "rows": batch_sharding(mesh), "step": replicated(mesh)}
    return {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=specs[k]) for k, v in like.items()}


def test_checkpoint_from_4_devices_restores_on_2_and_1(tmp_path):
    mesh4 = make_mesh(jax.devices()[:4])
    saved = state_on(mesh4)
    ck = Checkpointer(str(tmp_path / "ck"), keep=2)
    ck.save(7, saved, {"step": 7})
    ck.close()
    for n in (2, 1):
        mesh = make_mesh(jax.devices()[:n])
        ck = Checkpointer(str(tmp_path / "ck"), keep=2)
        restored, meta = ck.restore(ck.latest_step(), abstract_on(mesh, saved))
        ck.close()
        assert meta["step"] == 7
        for k in saved:
            np.testing.assert_array_equal(np.asarray(restored[k]), np.asarray(saved[k]))
            assert restored[k].sharding.mesh.devices.size == n


def test_incomplete_latest_step_is_skipped(tmp_path):
    d = str(tmp_path / "ck")
    ck = Checkpointer(d, keep=5)
    st = state_on(make_mesh())
    for s in (1, 2):
        ck.save(s, st, {"step": s})
    ck.close()
    assert is_complete(os.path.join(d, "2"))
    # A crash mid-save: Orbax's unfinished temporary folder, and a step folder
    # whose metadata was never written (as on a store without atomic rename).
    shutil.copytree(os.path.join(d, "2"), os.path.join(d, "3.orbax-checkpoint-tmp-99"))
    os.makedirs(os.path.join(d, "4", "state"))
    shutil.copytree(os.path.join(d, "2", "state", "ocdbt.process_0"), os.path.join(d, "4", "state", "ocdbt.process_0"))
    assert not is_complete(os.path.join(d, "4"))
    ck = Checkpointer(d, keep=5)
    assert ck.latest_step() == 2
    restored, meta = ck.restore(2, abstract_on(make_mesh(), st))
    assert meta["step"] == 2
    # Saving a later step still works after the clean-up.
    ck.save(4, st, {"step": 4})
    ck.close()
    assert Checkpointer(d, keep=5).latest_step() == 4
