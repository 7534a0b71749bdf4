"""The device mesh and the two shardings ccjax uses: batch-sharded and replicated.

Training is data parallel: every array with a leading batch axis is split over
the mesh's 'data' axis (all devices of all processes); parameters and optimiser
state are replicated. Losses are written on the global arrays, so XLA inserts
the collectives and in-batch statistics span the global batch.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from ccjax.errors import UserError

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over all devices (of all processes) with an explicit Auto 'data' axis.

    Auto rather than Explicit: FlaxCLIP and flax BatchNorm do not trace under
    explicit sharding mode.
    """
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def mesh_or_default(mesh: Mesh | None) -> Mesh:
    """`mesh`, or every device's mesh (make_mesh()) when None."""
    return make_mesh() if mesh is None else mesh


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading axis split over 'data'; the rest replicated."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
    """A global batch must split evenly over the devices and over the processes."""
    n = mesh.devices.size
    if batch_size <= 0 or batch_size % n:
        raise UserError(
            f"{what}={batch_size} is not divisible by the {n} devices of the mesh; "
            f"set --config.{what} to a multiple of {n}"
        )
    if batch_size % jax.process_count():
        raise UserError(
            f"{what}={batch_size} is not divisible by the {jax.process_count()} processes; "
            f"set --config.{what} to a multiple of {jax.process_count()}"
        )
