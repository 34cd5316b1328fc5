"""Data parallelism with JAX's own sharding: a 1-D device mesh, batches split, state replicated.

One code path serves one device, several local devices and several processes
(`jax.distributed`): the mesh spans `jax.devices()` (every process's devices),
batches are split along axis 0 over its "data" axis, parameters and optimizer
state are replicated, and jit's sharding propagation does the rest (XLA inserts
the gradient all-reduce). Every process holds the same global batch on the host
(the data order depends only on seed and epoch); `jax.device_put` copies to a
process's devices only the rows those devices own.
"""

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize(coordinator_address: str = "", num_processes: int = 1,
               process_id: int = 0) -> None:
    """Joins a multi-process run; with one process (the default) does nothing.

    Must run before anything else touches JAX.

    Args:
      coordinator_address: "host:port" of process 0's coordinator service.
      num_processes: processes in the run.
      process_id: this process's rank, in [0, num_processes).
    """
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(
            f"Need num_processes >= 1 and 0 <= process_id < num_processes; got num_processes "
            f"{num_processes}, process_id {process_id}."
        )
    if num_processes == 1:
        return
    if not coordinator_address:
        raise ValueError(f"num_processes {num_processes} needs a coordinator_address (host:port).")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)


def is_main_process() -> bool:
    """Whether this process writes files (TensorBoard events, probes.json): process 0."""
    return jax.process_index() == 0


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D mesh with axis "data" over the first `num_devices` local devices of every process.

    Args:
      num_devices: devices per process; 0 takes all of them.

    Returns:
      A Mesh of num_devices (or all) x process_count devices.
    """
    local = jax.local_device_count()
    if not 0 <= num_devices <= local:
        raise ValueError(
            f"num_devices {num_devices} is not available: each process has {local} local "
            f"device(s); use 0 (all) or 1..{local}."
        )
    per_process = num_devices or local
    devices = [d for p in range(jax.process_count())
               for d in [d for d in jax.devices() if d.process_index == p][:per_process]]
    return Mesh(np.array(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Axis 0 split over the mesh's devices; the other axes whole."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh) -> Any:
    """`tree` (parameters, optimizer state) copied to every device; no-op if already there."""
    return jax.device_put(tree, replicated(mesh))


def check_batch_size(batch_size: int, mesh: Mesh, name: str = "batch_size") -> None:
    """Raises ValueError unless `batch_size` splits evenly over the mesh's devices."""
    if batch_size % mesh.size:
        raise ValueError(
            f"{name} {batch_size} does not split evenly over {mesh.size} devices; use a "
            f"multiple of {mesh.size} (or fewer devices with num_devices)."
        )


def shard_batch(mesh: Mesh, *arrays: np.ndarray) -> tuple[jax.Array, ...]:
    """Host arrays, each the same global batch [B, ...] on every process, split over the mesh.

    B must be a multiple of the device count (see `check_batch_size`).
    """
    check_batch_size(len(arrays[0]), mesh)
    return tuple(jax.device_put(arrays, batch_sharding(mesh)))


def put_batch(mesh: Mesh, *arrays: np.ndarray) -> tuple[jax.Array, ...]:
    """Like `shard_batch`, but a batch that does not split evenly is replicated instead.

    For evaluation, whose last batch may be short: replicated, every device computes it whole.
    """
    sharding = batch_sharding(mesh) if len(arrays[0]) % mesh.size == 0 else replicated(mesh)
    return tuple(jax.device_put(arrays, sharding))


def broadcast_from_main(values: np.ndarray) -> np.ndarray:
    """Process 0's 1-D int array, on every process (e.g. probe indices only process 0 stored)."""
    if jax.process_count() == 1:
        return np.asarray(values)
    values = np.asarray(values, np.int32)
    size = int(multihost_utils.broadcast_one_to_all(np.int32(values.size)))
    if not is_main_process():
        values = np.zeros(size, np.int32)
    return np.asarray(multihost_utils.broadcast_one_to_all(values)).astype(np.int64)
