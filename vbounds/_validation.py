"""Argument checks shared by the core modules (trace-time, never inside XLA).

Value checks (NaN, ranges) run on concrete arrays and raise ``ValueError`` at once. On a
traced array they are skipped, unless :func:`vbounds.checking.checked` is tracing the call:
then they become ``checkify.debug_check`` s, which ``checked`` turns into a run-time error and
which compile to nothing anywhere else.
"""

from __future__ import annotations

import contextlib
import contextvars

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

# Set by `vbounds.checking.checked` while it traces the wrapped function.
_CHECKIFY = contextvars.ContextVar("vbounds_checkify", default=False)


@contextlib.contextmanager
def checkify_value_checks():
    """Within this block, value checks on traced arrays emit ``checkify.debug_check`` s."""
    token = _CHECKIFY.set(True)
    try:
        yield
    finally:
        _CHECKIFY.reset(token)


def require(predicate, *arrays, message: str) -> None:
    """Raises ``ValueError(message)`` unless ``predicate(*arrays)`` is all true.

    With concrete ``arrays`` the check runs now. With traced ones it is skipped (the
    predicate is not even traced), unless ``checked`` is tracing the call: then it becomes a
    ``checkify.debug_check``. A ``debug_check`` rather than a ``check`` because jit caches
    traces: a jaxpr traced under ``checked`` may later be reused by a plain ``jit`` call,
    where an unfunctionalised ``check`` fails to compile but a ``debug_check`` compiles to
    nothing.
    """
    traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(arrays))
    if not traced:
        # Inside an enclosing jit even operations on constants are staged out by default.
        with jax.ensure_compile_time_eval():
            ok = np.asarray(predicate(*arrays))
        if not np.all(ok):
            raise ValueError(message)
        return
    if _CHECKIFY.get():
        # checkify formats the message with str.format: escape literal braces.
        escaped = message.replace("{", "{{").replace("}", "}}")
        checkify.debug_check(jnp.all(predicate(*arrays)), escaped)


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


def check_int(value, name: str, *, minimum: int = 1) -> int:
    """Returns ``value`` as a Python int if it is an integer ``>= minimum``, else raises.

    The one check of every count-like argument of the core (``num_samples``, ``chunk_size``,
    ``num_steps``, ``num_classes``, ...). A Python ``int`` or a NumPy integer scalar passes;
    ``bool`` does not (``True`` is not a count), nor does a float, an array or a traced value:
    these arguments fix shapes and loop lengths, so they must be static Python ints, also
    under ``jax.jit`` (mark them static, e.g. ``jax.jit(f, static_argnames="num_steps")``).

    Raises:
      TypeError: ``value`` is not an integer (naming ``name``).
      ValueError: ``value < minimum`` (naming ``name``).
    """
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"`{name}` must be a static Python int, got a traced value ({value.aval}): under "
            f"jax.jit pass it as a static argument (static_argnames) or close over it."
        )
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)


def normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Returns ``axis`` as a non-negative int, or raises if out of range."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"`{name}` must be an int, got {type(axis).__name__}.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"`{name}`={axis} is out of range for an array with {ndim} dimension(s).")
    return int(axis) % ndim


def check_nonempty(arr: jax.Array, axis: int, name: str) -> None:
    """Raises unless ``arr`` has at least one sample along ``axis`` (a shape check)."""
    if arr.shape[axis] == 0:
        raise ValueError(
            f"`{name}` must have at least one sample along axis {axis}, got shape {arr.shape}."
        )


def concrete_float(x, name: str):
    """Returns ``x`` as a Python float when it is concrete, else ``None`` (traced)."""
    try:
        return float(x)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def check_finite_if_concrete(x: jax.Array, name: str) -> None:
    """Raises if a concrete (non-traced) array holds NaN or +inf.

    ``-inf`` passes: it is a legitimate log of zero. Under ``jit`` the values are unknown at
    trace time; wrap the function in :func:`vbounds.checking.checked` to check them at run
    time.
    """
    if isinstance(x, jax.core.Tracer):
        require(lambda v: ~jnp.isnan(v), x, message=f"`{name}` contains NaN.")
        require(lambda v: ~jnp.isposinf(v), x, message=f"`{name}` contains +inf.")
        return
    arr = np.asarray(x)
    if np.isnan(arr).any():
        raise ValueError(f"`{name}` contains NaN.")
    if np.isposinf(arr).any():
        raise ValueError(f"`{name}` contains +inf.")
