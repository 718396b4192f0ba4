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


def restore_latest(workdir: str, state) -> tuple[ocp.CheckpointManager, dict | None]:
    """The run's manager and its newest intact checkpoint restored like ``state``.

    Args:
      workdir: the run's directory (corrupt checkpoints move to ``corrupt_checkpoints``).
      state: a fresh state on the mesh (its shapes, dtypes and shardings are the target).

    Returns:
      ``(manager, restored)``, ``restored`` being ``None`` when no checkpoint restores.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    failed = set()  # other processes do not move checkpoints; they skip what failed
    while True:
        checkpoints = manager(workdir)
        steps = sorted(set(checkpoints.all_steps()) - failed, reverse=True)
        if not steps:
            return checkpoints, None
        step = steps[0]
        try:
            restored = checkpoints.restore(step, args=ocp.args.StandardRestore(abstract))
            _check_restored(restored, step)
            return checkpoints, restored
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
            checkpoints.close()
            failed.add(step)
            # A fresh manager per attempt: a failed restore can leave one's state confused.
            if jax.process_index() == 0:
                os.makedirs(os.path.dirname(aside), exist_ok=True)
                shutil.rmtree(aside, ignore_errors=True)
                shutil.move(os.path.join(checkpoints.directory, str(step)), aside)


def _check_restored(state, step: int) -> None:
    """Damaged bytes can restore without an error: the step and finiteness must hold."""
    if int(state["step"]) != step:
        raise ValueError(f"the saved step is {int(state['step'])}, not {step}")
    finite = all(
        bool(jax.numpy.all(jax.numpy.isfinite(x)))
        for x in jax.tree.leaves(state["params"])
        if jax.numpy.issubdtype(x.dtype, jax.numpy.inexact)
    )
    if not finite:
        raise ValueError("non-finite parameters")


def save(checkpoints: ocp.CheckpointManager, step: int, state) -> None:
    """Saves ``state`` as the checkpoint of ``step`` (asynchronously)."""
    checkpoints.save(step, args=ocp.args.StandardSave(state), force=True)
