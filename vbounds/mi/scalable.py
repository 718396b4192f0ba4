"""Contrastive MI bounds from a critic function: chunked (O(N) memory) and multi-device.

`from_critic` never builds the ``[N, N]`` score matrix. It scans over blocks of
``chunk_size`` rows of ``x``, scores each block against all of ``y`` and keeps only
per-row statistics (``[N]`` arrays), then reduces them exactly as the dense bound does
(both evaluate the same per-row definition in `vbounds.mi.contrastive`). The scan body
is rematerialised, so the backward pass also stays at ``O(chunk_size * N)`` memory.

Inside ``jax.shard_map`` with the batch sharded on ``axis_name``, ``y`` (and the
per-pair baseline and conditions) is all-gathered, each device scores its own rows
against the global batch, and the per-row statistics are assembled across devices (a
``psum`` of disjoint slices): negatives span the global batch and every device returns
the single-device value of the whole batch, replicated.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from vbounds.mi import _checks
from vbounds.mi import contrastive as _c

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

BOUNDS = ("infonce", "nwj", "tuba", "dv", "smile", "js", "js_mi", "conditional_infonce")


def _form(bound: str, log_baseline, clip, conditions) -> _c._RowForm:
    needs = {"tuba": ("log_baseline", log_baseline), "smile": ("clip", clip)}
    needs["conditional_infonce"] = ("conditions", conditions)
    if bound in needs and needs[bound][1] is None:
        raise ValueError(f"bound={bound!r} needs `{needs[bound][0]}`.")
    if bound == "tuba":
        return _c._tuba_form(log_baseline)
    if bound == "smile":
        return _c._smile_form(clip)
    if bound == "conditional_infonce":
        return _c._conditional_infonce_form(conditions, None)
    return {
        "infonce": _c._infonce_form,
        "nwj": _c._nwj_form,
        "dv": _c._dv_form,
        "js": _c._js_form,
        "js_mi": _c._js_mi_form,
    }[bound]()


def _leading_size(tree, name: str) -> int:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"`{name}` has no arrays.")
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"every array in `{name}` needs the same leading (batch) size.")
    return sizes.pop()


def _row_statistics(form, critic, x, y, offset, n_local: int, n: int, chunk: int):
    num_chunks = -(-n_local // chunk)
    pad = num_chunks * chunk - n_local

    def blocks(a):
        # Padding repeats the first rows (real inputs for the critic); their statistics
        # are dropped below.
        a = jnp.concatenate([a, a[:pad]]) if pad else a
        return a.reshape((num_chunks, chunk) + a.shape[1:])

    local = jnp.arange(num_chunks * chunk) % n_local
    row_ids = (offset + local).reshape(num_chunks, chunk)

    @jax.checkpoint
    def body(carry, inputs):
        x_block, ids = inputs
        block = critic(x_block, y)
        if block.shape != (chunk, n):
            raise ValueError(
                f"`critic(x_block, y)` must return the [{chunk}, {n}] scores of the block "
                f"against all of y, got shape {block.shape}."
            )
        return carry, form.rows(block, ids)

    _, stats = jax.lax.scan(body, None, (jax.tree.map(blocks, x), row_ids))
    return tuple(s.reshape(-1)[:n_local] for s in stats)


def from_critic(
    critic: Callable[[ArrayLike, ArrayLike], Array],
    x,
    y,
    *,
    bound: str = "infonce",
    chunk_size: int | None = None,
    axis_name: str | None = None,
    log_baseline: ArrayLike | None = None,
    clip: float | None = None,
    conditions: ArrayLike | None = None,
) -> Array:
    """A contrastive MI bound evaluated from a critic function, in chunks and/or sharded.

    Equal (up to float rounding) to ``vb.mi.<bound>(critic(x, y), ...)`` on the same global
    batch, with memory ``O(chunk_size * N)`` instead of ``O(N^2)``.

    Args:
      critic: ``critic(x_block, y) -> [B, N]`` scores ``f(x_i, y_j)`` of a block of rows
        against every ``y`` (a separable critic: ``g(x_block) @ h(y).T``).
      x: ``[n, ...]`` (or a pytree of such arrays): the pairs' first elements; on this
        device's shard when ``axis_name`` is given.
      y: same leading size, the pairs' second elements.
      bound: one of ``infonce, nwj, tuba, dv, smile, js, js_mi, conditional_infonce``.
      chunk_size: rows per block (``None``: all local rows at once); need not divide n.
      axis_name: mesh axis the batch is sharded on, when called inside ``jax.shard_map``;
        negatives then span the global batch of ``n * axis_size`` pairs.
      log_baseline: ``[n]`` ``log a(y_j)`` for ``tuba``, aligned with ``y``.
      clip: ``tau`` for ``smile``.
      conditions: ``[n]`` integer conditions for ``conditional_infonce``, aligned with the
        pairs.

    Returns:
      The bound of the global batch (scalar, nats), the same on every device.
    """
    if bound not in BOUNDS:
        raise ValueError(f"`bound` must be one of {BOUNDS}, got {bound!r}.")
    if not callable(critic):
        raise TypeError(f"`critic` must be callable, got {type(critic).__name__}.")
    n_local = _leading_size(x, "x")
    if _leading_size(y, "y") != n_local:
        raise ValueError("`x` and `y` must hold the same number of pairs.")
    if chunk_size is None:
        chunk_size = n_local
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool):
        raise TypeError(f"`chunk_size` must be an int, got {type(chunk_size).__name__}.")
    if not 1 <= chunk_size <= n_local:
        raise ValueError(f"`chunk_size` must lie in [1, {n_local}], got {chunk_size}.")
    if log_baseline is not None:
        log_baseline = _checks.vector(log_baseline, "log_baseline", n_local)
    if clip is not None:
        _checks.scalar_in(clip, "clip", low=0.0, high=math.inf, low_open=False, high_open=True)
    if conditions is not None:
        conditions = jnp.asarray(conditions)
        if conditions.shape != (n_local,) or not jnp.issubdtype(conditions.dtype, jnp.integer):
            raise ValueError(f"`conditions` must be an integer array of shape ({n_local},).")

    def gather(tree):
        if axis_name is None or tree is None:
            return tree
        return jax.tree.map(lambda a: jax.lax.all_gather(a, axis_name, axis=0, tiled=True), tree)

    y, log_baseline, conditions = gather(y), gather(log_baseline), gather(conditions)
    n = _leading_size(y, "y")
    if n < 2:
        raise ValueError(f"the global batch needs N >= 2 pairs, got {n}.")
    offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * n_local
    form = _form(bound, log_baseline, clip, conditions)
    stats = _row_statistics(form, critic, x, y, offset, n_local, n, chunk_size)
    if axis_name is not None:
        stats = _assemble(stats, axis_name, offset, n)
    return form.total(stats, n)


def _assemble(stats, axis_name: str, offset, n: int):
    """All devices' per-row statistics, in global row order, as a replicated value.

    Each device writes its rows into zeros and the zeros are summed away exactly by
    ``psum``, whose result (unlike ``all_gather``'s) is known to be the same on every
    device, so the bound can leave ``shard_map`` with ``out_specs=P()``.
    """

    def place(s):
        return jax.lax.dynamic_update_slice(jnp.zeros((n,), s.dtype), s, (offset,))

    return jax.lax.psum(tuple(place(s) for s in stats), axis_name)
