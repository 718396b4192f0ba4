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

``interpolated`` also needs statistics down each column (the leave-one-out partition of
``y_j`` over the rows ``x_k``): two more passes over the blocks accumulate them first
(the two largest entries of each column, then its shifted sums of ``exp``), summed
across devices, so that the critic is evaluated three times per block. ``mine`` returns
``(value, new_state)`` like `vbounds.mi.mine`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from vbounds._validation import check_int
from vbounds.mi import _checks
from vbounds.mi import contrastive as _c

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

# The values of `from_critic`'s `bound` argument.
CRITIC_BOUNDS = (
    "infonce",
    "nwj",
    "tuba",
    "dv",
    "smile",
    "js",
    "js_mi",
    "conditional_infonce",
    "interpolated",
    "mine",
)


def _check_needs(bound: str, **given) -> None:
    needs = {
        "tuba": ("log_baseline",),
        "smile": ("clip",),
        "conditional_infonce": ("conditions",),
        "interpolated": ("log_baseline", "alpha"),
        "mine": ("mine_state",),
    }
    for name in needs.get(bound, ()):
        if given[name] is None:
            raise ValueError(f"bound={bound!r} needs `{name}`.")


def _form(bound: str, log_baseline, clip, conditions) -> _c._RowForm:
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
        "mine": _c._dv_form,
    }[bound]()


def _leading_size(tree, name: str) -> int:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"`{name}` has no arrays.")
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"every array in `{name}` needs the same leading (batch) size.")
    return sizes.pop()


def _blocks(x, offset, n_local: int, chunk: int):
    """``x`` in ``[num_blocks, chunk, ...]`` blocks, with global row ids and a validity mask.

    Padding repeats the first rows (real inputs for the critic); ``valid`` is False there.
    """
    num_chunks = -(-n_local // chunk)
    pad = num_chunks * chunk - n_local

    def blocks(a):
        a = jnp.concatenate([a, a[:pad]]) if pad else a
        return a.reshape((num_chunks, chunk) + a.shape[1:])

    position = jnp.arange(num_chunks * chunk)
    row_ids = (offset + position % n_local).reshape(num_chunks, chunk)
    valid = (position < n_local).reshape(num_chunks, chunk)
    return jax.tree.map(blocks, x), row_ids, valid


def _block_scores(critic, x_block, y, chunk: int, n: int) -> Array:
    block = critic(x_block, y)
    if block.shape != (chunk, n):
        raise ValueError(
            f"`critic(x_block, y)` must return the [{chunk}, {n}] scores of the block "
            f"against all of y, got shape {block.shape}."
        )
    return block


def _row_statistics(form, critic, x, y, offset, n_local: int, n: int, chunk: int):
    xs, row_ids, _ = _blocks(x, offset, n_local, chunk)

    @jax.checkpoint
    def body(carry, inputs):
        x_block, ids = inputs
        return carry, form.rows(_block_scores(critic, x_block, y, chunk, n), ids)

    _, stats = jax.lax.scan(body, None, (xs, row_ids))
    return tuple(s.reshape(-1)[:n_local] for s in stats)


def _merge_tops(values, ids, seconds):
    """Largest entry (first on ties), its row id, and the second largest, over axis 0.

    Candidates ``[K, N]`` come in row order; ``seconds[k]`` is the runner-up of the rows
    candidate ``k`` stands for.
    """
    winner = jnp.argmax(values, axis=0)
    won = jnp.arange(values.shape[0])[:, None] == winner[None, :]
    top = jnp.max(values, axis=0)
    top_id = jnp.sum(jnp.where(won, ids, 0), axis=0)
    second = jnp.maximum(jnp.max(jnp.where(won, -jnp.inf, values), axis=0), seconds.max(axis=0))
    return top, top_id, second


def _gather_devices(tree, axis_name: str):
    """``[N]`` arrays of every device stacked to ``[devices, N]``, replicated (via psum)."""
    index, size = jax.lax.axis_index(axis_name), jax.lax.axis_size(axis_name)

    def place(a):
        return jax.lax.dynamic_update_slice(
            jnp.zeros((size,) + a.shape, a.dtype), a[None], (index, 0)
        )

    return jax.lax.psum(jax.tree.map(place, tree), axis_name)


def _per_device(tree, axis_name: str | None):
    """An initial scan carry typed as differing across devices, like the per-device sums."""
    if axis_name is None:
        return tree
    return jax.tree.map(lambda a: jax.lax.pcast(a, axis_name, to="varying"), tree)


def _column_statistics(critic, x, y, offset, n_local, n, chunk, axis_name) -> _c._Columns:
    """The `interpolated` column statistics of the global score matrix, in two passes."""
    xs, row_ids, valid = _blocks(x, offset, n_local, chunk)
    dtype = jax.eval_shape(critic, jax.tree.map(lambda a: a[0], xs), y).dtype
    neg_inf = jnp.full((n,), -jnp.inf, dtype)

    # Pass 1 (no gradient): each column's two largest entries and the row of the largest.
    def tops(carry, inputs):
        x_block, ids, ok = inputs
        block = jax.lax.stop_gradient(_block_scores(critic, x_block, y, chunk, n))
        block = jnp.where(ok[:, None], block, -jnp.inf)
        ids_b = jnp.broadcast_to(ids[:, None], block.shape)
        best = _merge_tops(block, ids_b, jnp.full(block.shape, -jnp.inf))
        return _merge_tops(*(jnp.stack(pair) for pair in zip(carry, best))), None

    init = _per_device((neg_inf, jnp.zeros((n,), row_ids.dtype), neg_inf), axis_name)
    (top, top_id, second), _ = jax.lax.scan(tops, init, (xs, row_ids, valid))
    if axis_name is not None:
        top, top_id, second = _merge_tops(*_gather_devices((top, top_id, second), axis_name))

    # Pass 2: sums of exp shifted by the largest (all rows) and by the second largest
    # (all rows but the largest), and the diagonal.
    @jax.checkpoint
    def sums(x_block, ids, ok):
        block = _block_scores(critic, x_block, y, chunk, n)
        ok = ok[:, None]
        rest = ok & (ids[:, None] != top_id[None, :])
        on_diag = ok & (ids[:, None] == jnp.arange(n)[None, :])
        return (
            jnp.sum(jnp.exp(jnp.where(ok, block - top, -jnp.inf)), axis=0),
            jnp.sum(jnp.exp(jnp.where(rest, block - second, -jnp.inf)), axis=0),
            jnp.sum(jnp.where(on_diag, block, 0.0), axis=0),
        )

    def accumulate(carry, inputs):
        # The addition stays outside the checkpoint, so the backward pass keeps no carries.
        return jax.tree.map(jnp.add, carry, sums(*inputs)), None

    init = _per_device((jnp.zeros((n,), dtype),) * 3, axis_name)
    (all_sum, rest_sum, diag), _ = jax.lax.scan(accumulate, init, (xs, row_ids, valid))
    if axis_name is not None:
        all_sum, rest_sum, diag = jax.lax.psum((all_sum, rest_sum, diag), axis_name)
    return _c._Columns(top + jnp.log(all_sum), top_id, second + jnp.log(rest_sum), diag)


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
    alpha: float | None = None,
    mine_state: _c.MineState | None = None,
    decay: float = 0.99,
) -> Array | tuple[Array, _c.MineState]:
    """A contrastive MI bound evaluated from a critic function, in chunks and/or sharded.

    Equal (up to float rounding) to ``vb.mi.<bound>(critic(x, y), ...)`` on the same global
    batch, values and gradients, with memory ``O(chunk_size * N)`` instead of ``O(N^2)``.

    Args:
      critic: ``critic(x_block, y) -> [B, N]`` scores ``f(x_i, y_j)`` of a block of rows
        against every ``y`` (a separable critic: ``g(x_block) @ h(y).T``).
      x: ``[n, ...]`` (or a pytree of such arrays): the pairs' first elements; on this
        device's shard when ``axis_name`` is given.
      y: same leading size, the pairs' second elements.
      bound: one of ``infonce, nwj, tuba, dv, smile, js, js_mi, conditional_infonce,
        interpolated, mine``.
      chunk_size: rows per block (``None``: all local rows at once); need not divide n.
      axis_name: mesh axis the batch is sharded on, when called inside ``jax.shard_map``;
        negatives then span the global batch of ``n * axis_size`` pairs.
      log_baseline: ``[n]`` ``log a(y_j)`` for ``tuba`` and ``interpolated``, aligned
        with ``y`` (a scalar is broadcast).
      clip: ``tau`` for ``smile``.
      conditions: ``[n]`` integer conditions for ``conditional_infonce``, aligned with the
        pairs.
      alpha: the interpolation weight in ``(0, 1]`` for ``interpolated``.
      mine_state: the `vbounds.mi.MineState` before this batch, for ``mine`` (replicated
        when sharded).
      decay: the moving-average decay of ``mine``, in ``[0, 1)``.

    Returns:
      The bound of the global batch (scalar, nats), the same on every device; for
      ``mine``, ``(bound, new_state)`` as `vbounds.mi.mine` returns them.

    Examples:
      >>> def critic(x_block, y):  # [B, d], [N, d] -> [B, N]
      ...     return x_block @ y.T
      >>> x = y = 2.0 * jnp.eye(4)
      >>> chunked = vb.mi.from_critic(critic, x, y, bound="infonce", chunk_size=3)
      >>> round(float(chunked), 4), round(float(vb.mi.infonce(critic(x, y))), 4)
      (1.3328, 1.3328)
    """
    if bound not in CRITIC_BOUNDS:
        raise ValueError(f"`bound` must be one of {CRITIC_BOUNDS}, got {bound!r}.")
    if not callable(critic):
        raise TypeError(f"`critic` must be callable, got {type(critic).__name__}.")
    _check_needs(
        bound,
        log_baseline=log_baseline,
        clip=clip,
        conditions=conditions,
        alpha=alpha,
        mine_state=mine_state,
    )
    n_local = _leading_size(x, "x")
    if _leading_size(y, "y") != n_local:
        raise ValueError("`x` and `y` must hold the same number of pairs.")
    chunk_size = n_local if chunk_size is None else check_int(chunk_size, "chunk_size")
    if chunk_size > n_local:
        raise ValueError(f"`chunk_size` must lie in [1, {n_local}], got {chunk_size}.")
    if log_baseline is not None:
        log_baseline = _checks.vector(log_baseline, "log_baseline", n_local)
    if clip is not None:
        _checks.scalar_in(clip, "clip", low=0.0, high=math.inf, low_open=False, high_open=True)
    if conditions is not None:
        conditions = jnp.asarray(conditions)
        if conditions.shape != (n_local,) or not jnp.issubdtype(conditions.dtype, jnp.integer):
            raise ValueError(f"`conditions` must be an integer array of shape ({n_local},).")
    if bound == "interpolated":
        _checks.scalar_in(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=False)
    if bound == "mine":
        _checks.scalar_in(decay, "decay", low=0.0, high=1.0, low_open=False, high_open=True)
        if not isinstance(mine_state, _c.MineState):
            kind = type(mine_state).__name__
            raise TypeError(f"`mine_state` must be a MineState (see mine_init), got {kind}.")

    def gather(tree):
        if axis_name is None or tree is None:
            return tree
        return jax.tree.map(lambda a: jax.lax.all_gather(a, axis_name, axis=0, tiled=True), tree)

    y, log_baseline, conditions = gather(y), gather(log_baseline), gather(conditions)
    n = _leading_size(y, "y")
    if n < 2:
        raise ValueError(f"the global batch needs N >= 2 pairs, got {n}.")
    offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * n_local
    if bound == "interpolated":
        columns = _column_statistics(critic, x, y, offset, n_local, n, chunk_size, axis_name)
        form = _c._interpolated_form(columns, log_baseline, alpha)
    else:
        form = _form(bound, log_baseline, clip, conditions)
    stats = _row_statistics(form, critic, x, y, offset, n_local, n, chunk_size)
    if axis_name is not None:
        stats = _assemble(stats, axis_name, offset, n)
    if bound == "mine":
        return _c._mine_total(stats, n, mine_state, decay)
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
