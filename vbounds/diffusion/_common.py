"""Shared pieces of ``vb.diffusion``: the ``VLBTerms`` tuple and trace-time checks."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array, check_int


class VLBTerms(NamedTuple):
    """Terms of a diffusion model's negative ELBO, each a per-example scalar (nats).

    Attributes:
      prior: ``KL(q(z_1 | x) || p(z_1))``, exact.
      reconstruction: ``-log p(x | z_0)`` at one draw of ``z_0``.
      diffusion: an unbiased one-draw estimate of the diffusion loss.
    """

    prior: jax.Array
    reconstruction: jax.Array
    diffusion: jax.Array

    @property
    def total(self) -> jax.Array:
        """The negative ELBO estimate, ``prior + reconstruction + diffusion``."""
        return self.prior + self.reconstruction + self.diffusion


def check_callable(fn, name: str) -> None:
    """Raises ``TypeError`` unless ``fn`` is callable."""
    if not callable(fn):
        raise TypeError(f"`{name}` must be callable, got {type(fn).__name__}.")


def check_num_steps(num_steps, name: str = "num_steps", *, allow_none: bool = True):
    """``num_steps`` as a positive Python int (or ``None`` when allowed), else raises.

    A traced value raises ``TypeError``: the number of steps fixes shapes and loop lengths,
    so it must be static under ``jax.jit``.
    """
    if num_steps is None and allow_none:
        return None
    return check_int(num_steps, name)


def check_choice(value, choices, name: str) -> None:
    """Raises ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}, got {value!r}.")


def float_data(x, name: str) -> jax.Array:
    """``x`` as a non-empty float array, or raises naming ``name``."""
    arr = as_float_array(x, name)
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    return arr


def check_broadcasts_to(value: jax.Array, shape, name: str, what: str) -> None:
    """Raises unless ``value`` (a result of a user callable) broadcasts to ``shape``."""
    try:
        out = jnp.broadcast_shapes(jnp.shape(value), tuple(shape))
    except ValueError as err:
        raise ValueError(
            f"`{name}` returned {what} of shape {jnp.shape(value)}, which does not broadcast "
            f"to the data shape {tuple(shape)}."
        ) from err
    if out != tuple(shape):
        raise ValueError(
            f"`{name}` returned {what} of shape {jnp.shape(value)}, larger than the data "
            f"shape {tuple(shape)}."
        )


def safe_log(p: jax.Array) -> jax.Array:
    """``log p`` with ``log 0 = -inf`` and finite gradients away from 0."""
    positive = p > 0
    return jnp.where(positive, jnp.log(jnp.where(positive, p, 1.0)), -jnp.inf)


def categorical_kl(p: jax.typing.ArrayLike, q: jax.typing.ArrayLike, *, axis: int = -1):
    """KL divergence between categorical distributions given as probabilities.

    .. math:: KL(p || q) = \\sum_k p_k (\\log p_k - \\log q_k), \\quad 0 \\log 0 = 0.

    Hand-written rather than taken from distrax so that exact zeros in ``p`` (absorbing
    states, impossible classes) give 0 and not NaN, also in the gradient; ``q_k = 0`` where
    ``p_k > 0`` gives ``+inf``, the true value.

    Args:
      p: probabilities, summing to one along ``axis``.
      q: probabilities of the same shape.
      axis: the class axis, reduced.

    Returns:
      ``KL(p || q)`` with ``axis`` removed.

    References:
      Kullback & Leibler, On information and sufficiency, 1951.

    Examples:
      >>> p, q = jnp.array([0.5, 0.5, 0.0]), jnp.array([0.25, 0.25, 0.5])
      >>> round(float(vd.categorical_kl(p, q)), 4)  # log 2; the zero of p adds nothing
      0.6931
    """
    p = jnp.asarray(p)
    q = jnp.asarray(q)
    if p.shape != q.shape:
        raise ValueError(f"`p` and `q` must have the same shape, got {p.shape} and {q.shape}.")
    support = p > 0
    # Substitute 1 off the support so that neither branch of `where` holds inf or NaN.
    p_in = jnp.where(support, p, 1.0)
    q_in = jnp.where(support, q, 1.0)
    terms = jnp.where(support, p * (jnp.log(p_in) - safe_log(q_in)), 0.0)
    return jnp.sum(terms, axis=axis)
