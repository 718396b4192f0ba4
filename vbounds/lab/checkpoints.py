"""Checkpoints of the training state with orbax, restored onto the mesh.

The state is ``{params, rest, opt_state, step, rng}`` (pure dicts and arrays). A restore
goes into the abstract shapes of a fresh state already placed on the mesh (so the
restored arrays are sharded like it), from the newest checkpoint that reads back: a
corrupt one is moved aside to ``corrupt_checkpoints/`` with a warning.
"""

from __future__ import annotations

import logging
import os
import shutil

import jax
import orbax.checkpoint as ocp

logger = logging.getLogger(__name__)


def manager(workdir: str, *, max_to_keep: int = 2) -> ocp.CheckpointManager:
    """The run's ``CheckpointManager`` on ``workdir/checkpoints``."""
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, "checkpoints")),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
    )


def restore_latest(checkpoints: ocp.CheckpointManager, state, workdir: str):
    """The newest intact checkpoint restored like ``state``, or ``None`` when there is none.

    Args:
      checkpoints: the run's manager.
      state: a fresh state on the mesh (its shapes, dtypes and shardings are the target).
      workdir: the run's directory (corrupt checkpoints move to ``corrupt_checkpoints``).

    Returns:
      The restored state, or ``None``.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    for step in sorted(checkpoints.all_steps(), reverse=True):
        try:
            return checkpoints.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as e:  # orbax / tensorstore raise many kinds for damaged files
            aside = os.path.join(workdir, "corrupt_checkpoints", str(step))
            logger.warning(
                "the checkpoint at step %d does not restore (%s: %s); moved it to %s and "
                "falling back to an older one",
                step,
                type(e).__name__,
                str(e).split("\n")[0][:200],
                aside,
            )
            if jax.process_index() == 0:
                os.makedirs(os.path.dirname(aside), exist_ok=True)
                shutil.rmtree(aside, ignore_errors=True)
                shutil.move(os.path.join(checkpoints.directory, str(step)), aside)
            checkpoints.reload()
    return None


def save(checkpoints: ocp.CheckpointManager, step: int, state) -> None:
    """Saves ``state`` as the checkpoint of ``step`` (asynchronously)."""
    checkpoints.save(step, args=ocp.args.StandardSave(state), force=True)
