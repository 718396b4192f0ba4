"""Gradient variance of black-box variational inference: Monte Carlo estimates, closed forms.

Stochastic-gradient convergence rates depend on the second moment ``E||g||^2`` of the
gradient estimator and on the trace of its covariance, ``E||g||^2 - ||E g||^2``. Stack
independent gradient draws (e.g. from :func:`gradient_draws` over ``vb.estimate``) and
measure both with :func:`expected_squared_norm` and :func:`trace_covariance`; for a
Gaussian location-scale family on a quadratic target,
:func:`quadratic_location_scale_moments` gives both exactly, for the mean-field,
full-rank (Cholesky) and dense scale parameterisations.

(The per-parameter signal-to-noise ratio is :func:`vbounds.gradient_snr`.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array, check_int, normalize_axis

__all__ = [
    "GradientMoments",
    "PARAMETERIZATIONS",
    "expected_squared_norm",
    "trace_covariance",
    "gradient_draws",
    "quadratic_location_scale_moments",
]

# The scale parameterisations of `quadratic_location_scale_moments`.
PARAMETERIZATIONS = ("mean_field", "full_rank", "dense")


class GradientMoments(NamedTuple):
    """Second moments of a gradient estimator ``g`` (all parameters together).

    Attributes:
      expected_squared_norm: ``E||g||^2``.
      trace_covariance: ``tr Cov[g] = E||g||^2 - ||E g||^2``.
    """

    expected_squared_norm: jax.Array
    trace_covariance: jax.Array


def _draw_leaves(grads: Any, axis: int) -> list[tuple[jax.Array, int]]:
    leaves = jax.tree.leaves(grads)
    if not leaves:
        raise ValueError("`grads` must hold at least one array.")
    out = []
    for leaf in leaves:
        arr = as_float_array(leaf, "grads", min_ndim=1)
        ax = normalize_axis(axis, arr.ndim)
        out.append((arr, ax))
    draws = {arr.shape[ax] for arr, ax in out}
    if len(draws) != 1:
        raise ValueError(f"`grads` leaves disagree on the number of draws: {sorted(draws)}.")
    return out


def _sum_except(x: jax.Array, ax: int) -> jax.Array:
    return jnp.sum(x, axis=tuple(i for i in range(x.ndim) if i != ax))


def expected_squared_norm(grads: Any, axis: int = 0) -> jax.Array:
    """Monte Carlo estimate of ``E||g||^2`` from independent draws (unbiased).

    .. math:: \\widehat{\\mathbb{E}\\|g\\|^2} = \\frac{1}{N} \\sum_{n=1}^N \\|g_n\\|^2

    with the squared norm summed over every leaf and every entry.

    Args:
      grads: a pytree whose leaves stack ``N >= 1`` gradient draws on ``axis``.
      axis: the draw axis.

    Returns:
      A scalar.

    References:
      Domke, Provable Gradient Variance Guarantees for Black-Box Variational Inference,
      2019.

    Examples:
      >>> draws = {"loc": jnp.array([[1.0, 0.0], [3.0, 0.0]]), "scale": jnp.array([1.0, 1.0])}
      >>> float(vb.gradient_variance.expected_squared_norm(draws))  # mean of (1+1, 9+1)
      6.0
    """
    total = 0.0
    for arr, ax in _draw_leaves(grads, axis):
        total = total + _sum_except(jnp.square(arr), ax)
    return jnp.mean(total)


def trace_covariance(grads: Any, axis: int = 0) -> jax.Array:
    """Monte Carlo estimate of the trace of the gradient covariance (unbiased).

    .. math:: \\widehat{\\mathrm{tr}\\,\\mathrm{Cov}[g]} = \\frac{1}{N-1}
        \\sum_{n=1}^N \\|g_n - \\bar g\\|^2

    summed over every leaf and every entry: the total variance of the estimator.

    Args:
      grads: a pytree whose leaves stack ``N >= 2`` gradient draws on ``axis``.
      axis: the draw axis.

    Returns:
      A scalar.

    References:
      Kim, Oh, Wu, Ma & Gardner, Practical and Matching Gradient Variance Bounds for
      Black-Box Variational Bayesian Inference, 2023.

    Examples:
      >>> draws = {"loc": jnp.array([[1.0, 0.0], [3.0, 0.0]]), "scale": jnp.array([1.0, 1.0])}
      >>> float(vb.gradient_variance.trace_covariance(draws))  # only loc[0] varies: var(1, 3)
      2.0
    """
    leaves = _draw_leaves(grads, axis)
    if leaves[0][0].shape[leaves[0][1]] < 2:
        raise ValueError(f"`grads` needs at least 2 draws along axis {axis}.")
    total = 0.0
    for arr, ax in leaves:
        total = total + jnp.sum(jnp.var(arr, axis=ax, ddof=1))
    return total


def gradient_draws(key: jax.Array, grad_fn: Callable[[jax.Array], Any], *, num_draws: int) -> Any:
    """Independent draws of a stochastic gradient, stacked on a new leading axis.

    Args:
      key: a PRNG key, split into ``num_draws`` keys.
      grad_fn: ``grad_fn(key) -> pytree`` of one gradient draw (e.g. ``jax.grad`` of
        ``vb.estimate(key, ...).surrogate`` with respect to the variational parameters).
      num_draws: the number of draws ``N`` (a static int).

    Returns:
      The pytree of ``grad_fn``'s output with leaves ``[N, ...]`` (``jax.vmap`` over keys).

    Examples:
      >>> grad_fn = lambda key: {"w": 3.0 + jax.random.normal(key, (2,))}  # a noisy gradient
      >>> draws = vb.gradient_variance.gradient_draws(jax.random.key(0), grad_fn, num_draws=8)
      >>> draws["w"].shape
      (8, 2)
    """
    num_draws = check_int(num_draws, "num_draws")
    return jax.vmap(grad_fn)(jax.random.split(key, num_draws))


def _scale_matrix(scale: jax.Array, parameterization: str, d: int) -> tuple[jax.Array, jax.Array]:
    """The scale matrix ``C`` and the 0/1 mask of its entries that are parameters."""
    if parameterization == "mean_field":
        if scale.shape != (d,):
            raise ValueError(
                f"`scale` must have shape ({d},) for the mean-field family, got {scale.shape}."
            )
        return jnp.diag(scale), jnp.eye(d, dtype=scale.dtype)
    if scale.shape != (d, d):
        raise ValueError(f"`scale` must have shape ({d}, {d}), got {scale.shape}.")
    if parameterization == "full_rank":
        mask = jnp.tril(jnp.ones((d, d), scale.dtype))
        return scale * mask, mask
    return scale, jnp.ones((d, d), scale.dtype)


def quadratic_location_scale_moments(
    precision: jax.typing.ArrayLike,
    mode: jax.typing.ArrayLike,
    loc: jax.typing.ArrayLike,
    scale: jax.typing.ArrayLike,
    *,
    parameterization: str = "mean_field",
) -> GradientMoments:
    """Exact second moments of the reparameterisation gradient on a quadratic target.

    Target ``log p(z) = -(z - mode)^T A (z - mode) / 2 + const`` (``A = precision``,
    symmetric), family ``z = loc + C u`` with ``u ~ N(0, I_d)``, and the one-draw gradient
    ``g`` of ``E_q[log p(z)]`` with respect to ``(loc, scale)``. The entropy's gradient is
    deterministic: adding it (as ``vb.estimate``'s ELBO does) shifts ``E g`` and leaves
    ``trace_covariance`` unchanged. With ``a = A (loc - mode)``, ``B = A C`` and ``M`` the
    0/1 mask of the scale entries that are parameters,

    .. math:: \\mathbb{E}\\|g\\|^2 = \\|a\\|^2 + \\|B\\|_F^2
        + \\sum_{ij} M_{ij} (a_i^2 + \\|B_{i\\cdot}\\|^2 + 2 B_{ij}^2),\\qquad
        \\mathrm{tr\\,Cov}[g] = \\|B\\|_F^2 + \\sum_{ij} M_{ij}(a_i^2 + \\|B_{i\\cdot}\\|^2
        + B_{ij}^2)

    (Gaussian moments ``E u_j^2 = 1``, ``E u_j^4 = 3``). A row of the scale gradient has as
    many entries as ``M``'s row: 1 for ``"mean_field"`` (``C = diag(scale)``), ``i`` for
    ``"full_rank"`` (``C = tril(scale)``), ``d`` for ``"dense"``, so full-rank variances
    grow with the dimension where mean-field ones do not. For ``A = L I`` and dense ``C``
    the second moment is ``L^2 ((d+1)||loc - mode||^2 + (d+3)||C||_F^2)``, which attains
    Domke's (2019) bound for L-smooth targets.

    Args:
      precision: ``A``, ``[d, d]`` symmetric.
      mode: the target's mode, ``[d]``.
      loc: the family's location, ``[d]``.
      scale: ``[d]`` for ``"mean_field"``, ``[d, d]`` otherwise (``"full_rank"`` uses its
        lower triangle; the upper one is not a parameter).
      parameterization: one of ``"mean_field"``, ``"full_rank"``, ``"dense"``.

    Returns:
      :class:`GradientMoments` of scalars.

    References:
      Domke, Provable Gradient Variance Guarantees for Black-Box Variational Inference,
      2019; Kim, Oh, Wu, Ma & Gardner, Practical and Matching Gradient Variance Bounds
      for Black-Box Variational Bayesian Inference, 2023.

    Examples:
      >>> gv = vb.gradient_variance
      >>> d = 10
      >>> args = (jnp.eye(d), jnp.zeros(d), jnp.zeros(d))
      >>> mf = gv.quadratic_location_scale_moments(*args, jnp.ones(d))
      >>> dense = gv.quadratic_location_scale_moments(*args, jnp.eye(d), parameterization="dense")
      >>> float(mf.expected_squared_norm), float(dense.expected_squared_norm)  # 4 d, (d + 3) d
      (40.0, 130.0)
    """
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"`parameterization` must be one of {PARAMETERIZATIONS}, got {parameterization!r}."
        )
    mode = as_float_array(mode, "mode")
    if mode.ndim != 1:
        raise ValueError(f"`mode` must be a vector [d], got shape {mode.shape}.")
    d = mode.shape[0]
    precision = as_float_array(precision, "precision")
    if precision.shape != (d, d):
        raise ValueError(f"`precision` must have shape ({d}, {d}), got {precision.shape}.")
    loc = as_float_array(loc, "loc")
    if loc.shape != (d,):
        raise ValueError(f"`loc` must have shape ({d},), got {loc.shape}.")
    scale = as_float_array(scale, "scale")
    dtype = jnp.result_type(precision, mode, loc, scale)
    c, mask = _scale_matrix(scale.astype(dtype), parameterization, d)
    a = precision.astype(dtype) @ (loc - mode).astype(dtype)
    b = precision.astype(dtype) @ c
    b_sq = jnp.square(b)
    row = jnp.square(a) + jnp.sum(b_sq, axis=1)
    scale_common = jnp.sum(mask * row[:, None])
    scale_diag = jnp.sum(mask * b_sq)
    loc_mean_sq = jnp.sum(jnp.square(a))
    second = loc_mean_sq + jnp.sum(b_sq) + scale_common + 2.0 * scale_diag
    trace = jnp.sum(b_sq) + scale_common + scale_diag
    return GradientMoments(second, trace)
