"""Argument checks shared by the core modules (trace-time, never inside XLA)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def as_float_array(x: jax.typing.ArrayLike, name: str, *, min_ndim: int = 0) -> jax.Array:
    """Converts ``x`` to a floating-point array, or raises naming ``name``."""
    try:
        arr = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(f"`{name}` must be an array of floats, got {type(x).__name__}.") from err
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_:
            arr = arr.astype(jnp.result_type(float))
        else:
            raise TypeError(f"`{name}` must have a floating dtype, got {arr.dtype}.")
    if arr.ndim < min_ndim:
        raise ValueError(
            f"`{name}` must have at least {min_ndim} dimension(s), got shape {arr.shape}."
        )
    return arr


def normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Returns ``axis`` as a non-negative int, or raises if out of range."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"`{name}` must be an int, got {type(axis).__name__}.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"`{name}`={axis} is out of range for an array with {ndim} dimension(s).")
    return int(axis) % ndim


def concrete_float(x, name: str):
    """Returns ``x`` as a Python float when it is concrete, else ``None`` (traced)."""
    try:
        return float(x)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def check_finite_if_concrete(x: jax.Array, name: str) -> None:
    """Raises if a concrete (non-traced) array holds NaN or +inf.

    Under ``jit`` the values are unknown at trace time; the check then falls to
    ``jax.debug`` tooling (``jax_debug_nans``), which is the caller's choice.
    """
    if isinstance(x, jax.core.Tracer):
        return
    arr = np.asarray(x)
    if np.isnan(arr).any():
        raise ValueError(f"`{name}` contains NaN.")
    if np.isposinf(arr).any():
        raise ValueError(f"`{name}` contains +inf.")
