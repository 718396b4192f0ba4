"""Data parallelism: the multi-host runtime, the 1-D ``("data",)`` mesh, global batches."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P


def initialize_distributed(section) -> None:
    """Calls ``jax.distributed.initialize`` when the ``distributed`` section asks for it.

    An empty ``coordinator_address`` means a single process; ``"auto"`` lets JAX
    detect the cluster (SLURM, Kubernetes, Cloud TPU); otherwise ``host:port`` with
    ``num_processes`` and ``process_id``. Several processes on CPU need
    ``jax.config.update("jax_cpu_collectives_implementation", "gloo")`` first.
    """
    address = section.get("coordinator_address") or ""
    if not address or jax.distributed.is_initialized():
        return
    if address == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=section.num_processes,
            process_id=section.process_id,
        )


def make_mesh() -> jax.sharding.Mesh:
    """A 1-D ``("data",)`` mesh over every device of every process."""
    # Auto axis types: the per-example RNG keys split inside the step are not sharded
    # like the batch, which Explicit axes reject under vmap.
    return jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
    """Every device holds the whole array (parameters, optimiser state)."""
    return NamedSharding(mesh, P())


def sharded_on_data(mesh) -> NamedSharding:
    """Axis 0 split over the ``"data"`` axis (batches)."""
    return NamedSharding(mesh, P("data"))


def global_batch(host_batch: dict, sharding: NamedSharding) -> dict:
    """A global batch (every process holds the same host copy) as sharded global arrays.

    Each process contributes its equal share of rows; together they form the batch.
    """
    out = {}
    for key, value in host_batch.items():
        value = np.asarray(value)
        share = len(value) // jax.process_count()
        local = value[jax.process_index() * share : (jax.process_index() + 1) * share]
        out[key] = jax.make_array_from_process_local_data(sharding, local)
    return out
