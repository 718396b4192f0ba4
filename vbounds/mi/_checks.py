"""Argument checks and log-space helpers shared by the mutual-information modules."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array, check_finite_if_concrete, concrete_float


def square_scores(scores: jax.typing.ArrayLike, name: str = "scores") -> jax.Array:
    """Returns ``scores`` as a float [N, N] array with N >= 2, or raises naming ``name``.

    Concrete NaN or ``+inf`` entries raise too (``-inf``, a zero density ratio, passes).
    """
    s = as_float_array(scores, name)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(
            f"`{name}` must be a square [N, N] matrix with {name}[i, j] = f(x_i, y_j), "
            f"got shape {s.shape}."
        )
    if s.shape[0] < 2:
        raise ValueError(
            f"`{name}` needs N >= 2 pairs (the marginal term uses the off-diagonal entries), "
            f"got N = {s.shape[0]}."
        )
    check_finite_if_concrete(s, name)
    return s


def vector(x: jax.typing.ArrayLike, name: str, n: int | None = None) -> jax.Array:
    """Returns ``x`` as a float [n] array (a scalar is broadcast), or raises naming ``name``.

    Concrete NaN or ``+inf`` entries raise too.
    """
    v = as_float_array(x, name)
    check_finite_if_concrete(v, name)
    if n is None:
        if v.ndim != 1 or v.shape[0] < 1:
            raise ValueError(f"`{name}` must be a non-empty 1-D array, got shape {v.shape}.")
        return v
    if v.ndim == 0:
        return jnp.broadcast_to(v, (n,))
    if v.shape != (n,):
        raise ValueError(f"`{name}` must be a scalar or have shape ({n},), got shape {v.shape}.")
    return v


def scalar_in(x, name: str, *, low: float, high: float, low_open: bool, high_open: bool):
    """Raises unless a concrete ``x`` lies in the interval; traced values pass unchecked."""
    value = concrete_float(x, name)
    if value is None:
        return x
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if math.isnan(value) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must lie in {interval}, got {value}.")
    return x


def diagonal(block: jax.Array, row_ids: jax.Array) -> jax.Array:
    """Entries ``block[k, row_ids[k]]``: the joint pairs of a block of score rows."""
    return jnp.take_along_axis(block, row_ids[:, None], axis=1)[:, 0]


def off_diagonal(block: jax.Array, row_ids: jax.Array) -> jax.Array:
    """Boolean mask of a block of rows, True where column != the row's global index."""
    return jnp.arange(block.shape[1])[None, :] != row_ids[:, None]


def offdiag_logsumexp(block: jax.Array, row_ids: jax.Array) -> jax.Array:
    """Per row of the block, ``logsumexp_{j != i} block[i, j]``."""
    masked = jnp.where(off_diagonal(block, row_ids), block, -jnp.inf)
    return jax.nn.logsumexp(masked, axis=1)


def log_num_offdiag(n: int) -> float:
    """``log(N (N - 1))``, the log number of off-diagonal pairs."""
    return math.log(n) + math.log(n - 1)
