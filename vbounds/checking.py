"""Run-time value checks under ``jit``: :func:`checked`.

Eagerly, the core functions check the argument values that decide correctness (NaN or
``+inf`` log-weights and scores, times outside ``[0, 1]``, class indices outside
``[0, V)``, decreasing noise schedules, betas outside ``[0, 1]``, positive
log-probabilities) and raise ``ValueError`` naming the argument. Under ``jit``
the values are unknown while tracing and those checks are skipped, so a NaN log-weight
gives a NaN bound instead of an error. ``checked(fn)`` restores them with
``jax.experimental.checkify``: while it traces ``fn``, the value checks become
``checkify`` checks, and a failed one raises when the computation runs.

Example::

    safe_iwae = jax.jit(vb.checked(vb.iwae))
    safe_iwae(log_w)  # the value of vb.iwae(log_w)
    safe_iwae(log_w.at[0].set(jnp.nan))  # raises: "`log_w` contains NaN."

Apply ``checked`` outside ``jit``. A function that is already jitted and was first traced
without ``checked`` is taken from jit's cache as it was, without the checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.experimental import checkify

from vbounds._validation import checkify_value_checks

__all__ = ["checked"]


def checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps ``fn`` so that the value checks of ``vbounds`` also run under ``jit``.

    ``fn`` is any function that calls ``vbounds`` (a bound, an estimator, a training
    loss). The wrapper returns what ``fn`` returns. Its array arguments (``jax.Array`` and
    ``np.ndarray`` leaves) are traced; every other argument (Python numbers such as
    ``alpha`` or ``axis``, callables, distributions) is passed through unchanged, as
    ``fn`` would receive it.

    A failed check raises when the computation runs: eagerly a ``ValueError``
    (``checkify``'s ``JaxRuntimeError``), under ``jit`` a ``jax.errors.JaxRuntimeError``
    whose message contains the check's, e.g. ``"`log_w` contains NaN."``. Only the checks
    of ``vbounds`` itself are added (``checkify.user_checks``); the cost is one reduction
    per checked array. Without ``checked`` the same functions under ``jit`` compile no
    checks at all.

    Args:
      fn: the function to check.

    Returns:
      A function with the signature and results of ``fn``; compose it with ``jax.jit``,
      ``jax.vmap`` and ``jax.grad`` as usual (``jax.jit(checked(fn))``).

    Examples:
      >>> safe_iwae = vb.checked(vb.iwae)
      >>> round(float(jax.jit(safe_iwae)(jnp.zeros(3))), 4)
      0.0
      >>> try:
      ...     safe_iwae(jnp.array([0.0, jnp.nan]))
      ... except ValueError as err:
      ...     print(err)
      `log_w` contains NaN.
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}.")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        leaves, treedef = jax.tree.flatten((args, kwargs))
        is_array = [isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves]

        def on_arrays(*arrays):
            it = iter(arrays)
            full = [next(it) if a else leaf for leaf, a in zip(leaves, is_array, strict=True)]
            call_args, call_kwargs = jax.tree.unflatten(treedef, full)
            return fn(*call_args, **call_kwargs)

        with checkify_value_checks():
            error, out = checkify.checkify(on_arrays, errors=checkify.user_checks)(
                *(leaf for leaf, a in zip(leaves, is_array, strict=True) if a)
            )
        _raise_if_failed(error)
        return out

    return wrapper


def _raise_if_failed(error: checkify.Error) -> None:
    """Raises the failed check in ``error``, now if it is concrete, else when it is computed."""
    leaves, treedef = jax.tree.flatten(error)
    if not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        error.throw()
        return
    # Under an outer `jit` the error is only known at run time. `checkify.check_error` would
    # need the global `jax_experimental_unsafe_xla_runtime_errors` flag to compile; a host
    # callback raising the message works under any jit.
    jax.debug.callback(functools.partial(_throw_on_host, treedef), *leaves)


def _throw_on_host(treedef, *leaves) -> None:
    message = jax.tree.unflatten(treedef, leaves).get()
    if message is not None:
        raise ValueError(message)
