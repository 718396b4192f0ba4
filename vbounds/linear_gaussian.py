"""Linear-Gaussian latent models: PPCA and factor analysis, exactly.

The model is ``z ~ N(0, I_k)``, ``x = weight @ z + mean + eps``, ``eps ~ N(0, Psi)`` with a
diagonal noise covariance ``Psi``: a scalar ``noise_variance`` is probabilistic PCA, a
``[d]`` vector is factor analysis. Everything here is in closed form: the log-likelihood
``log N(x | mean, W W^T + Psi)``, the Gaussian posterior ``p(z | x)``, and the ELBO of any
Gaussian ``q(z | x)`` (the E-step objective), which equals the log-likelihood exactly at the
posterior. Every computation works in the ``k``-dimensional latent space (Woodbury and the
matrix determinant lemma), so ``d`` may be large. ``x`` is ``[..., d]``; results keep the
leading axes (one value per example).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array, require

__all__ = ["GaussianPosterior", "log_likelihood", "posterior", "elbo"]


class GaussianPosterior(NamedTuple):
    """A Gaussian ``q(z | x)`` or ``p(z | x)``.

    Attributes:
      mean: ``[..., k]`` means, one per example.
      cov: ``[k, k]`` covariance (the exact posterior's is the same for every example) or
        ``[..., k, k]``.
    """

    mean: jax.Array
    cov: jax.Array


def _model(x, weight, mean, noise_variance):
    """Validates the arguments; returns them as arrays with the noise as a ``[d]`` vector."""
    w = as_float_array(weight, "weight")
    if w.ndim != 2:
        raise ValueError(f"`weight` must be a [d, k] matrix, got shape {w.shape}.")
    d = w.shape[0]
    xs = as_float_array(x, "x", min_ndim=1)
    if xs.shape[-1] != d:
        raise ValueError(f"`x` must end in the data dimension {d} of `weight`, got {xs.shape}.")
    mu = as_float_array(mean, "mean")
    if mu.shape not in ((), (d,)):
        raise ValueError(f"`mean` must be a scalar or have shape ({d},), got {mu.shape}.")
    psi = as_float_array(noise_variance, "noise_variance")
    if psi.shape not in ((), (d,)):
        raise ValueError(
            f"`noise_variance` must be a scalar (PPCA) or have shape ({d},) (factor "
            f"analysis), got {psi.shape}."
        )
    require(lambda v: v > 0, psi, message="`noise_variance` must be positive.")
    return xs, w, mu, jnp.broadcast_to(psi, (d,))


def _precision_factor(w, psi):
    """``W^T Psi^-1`` and the Cholesky factor of ``M = I + W^T Psi^-1 W`` (posterior precision)."""
    wt_psi_inv = w.T / psi
    m = jnp.eye(w.shape[1], dtype=w.dtype) + wt_psi_inv @ w
    return wt_psi_inv, jnp.linalg.cholesky(m)


def log_likelihood(
    x: jax.typing.ArrayLike,
    weight: jax.typing.ArrayLike,
    mean: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
) -> jax.Array:
    """Exact log-likelihood of PPCA / factor analysis.

    .. math:: \\log p(x) = \\log \\mathcal{N}(x \\mid \\mu, W W^\\top + \\Psi)

    computed as ``log det C = sum log psi + log det M`` and
    ``r^T C^-1 r = r^T Psi^-1 r - b^T M^-1 b`` with ``M = I + W^T Psi^-1 W``,
    ``b = W^T Psi^-1 r``, ``r = x - mu``.

    Args:
      x: ``[..., d]`` observations.
      weight: ``[d, k]`` loading matrix ``W``.
      mean: ``[d]`` (or scalar) offset ``mu``.
      noise_variance: scalar (PPCA) or ``[d]`` (factor analysis) diagonal of ``Psi``.

    Returns:
      ``[...]`` log-likelihoods, nats.

    References:
      Tipping & Bishop, Probabilistic Principal Component Analysis, 1999.

    Examples:
      >>> w = jnp.array([[1.0], [0.0]])  # d = 2, k = 1: x_1 ~ N(0, 2), x_2 ~ N(0, 1)
      >>> ll = vb.linear_gaussian.log_likelihood(jnp.zeros(2), w, 0.0, 1.0)
      >>> round(float(ll), 4)  # -log(2 pi) - log(2) / 2
      -2.1845
    """
    xs, w, mu, psi = _model(x, weight, mean, noise_variance)
    d = w.shape[0]
    r = xs - mu
    wt_psi_inv, chol = _precision_factor(w, psi)
    b = r @ wt_psi_inv.T
    half_solved = jax.scipy.linalg.solve_triangular(chol, b[..., None], lower=True)[..., 0]
    quad = jnp.sum(r**2 / psi, axis=-1) - jnp.sum(half_solved**2, axis=-1)
    logdet = jnp.sum(jnp.log(psi)) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return -0.5 * (d * math.log(2 * math.pi) + logdet + quad)


def posterior(
    x: jax.typing.ArrayLike,
    weight: jax.typing.ArrayLike,
    mean: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
) -> GaussianPosterior:
    """Exact posterior ``p(z | x)`` of PPCA / factor analysis.

    .. math:: p(z \\mid x) = \\mathcal{N}\\big(M^{-1} W^\\top \\Psi^{-1} (x - \\mu),\\ M^{-1}\\big),
        \\qquad M = I + W^\\top \\Psi^{-1} W

    Args:
      x: ``[..., d]`` observations.
      weight: ``[d, k]`` loading matrix.
      mean: ``[d]`` (or scalar) offset.
      noise_variance: scalar or ``[d]`` noise variances.

    Returns:
      :class:`GaussianPosterior` with ``mean`` ``[..., k]`` and the shared ``cov`` ``[k, k]``.

    References:
      Tipping & Bishop, Probabilistic Principal Component Analysis, 1999.

    Examples:
      >>> w = jnp.array([[1.0], [0.0]])
      >>> post = vb.linear_gaussian.posterior(jnp.array([2.0, 5.0]), w, 0.0, 1.0)
      >>> round(float(post.mean[0]), 4), round(float(post.cov[0, 0]), 4)  # x_1 / 2, 1 / 2
      (1.0, 0.5)
    """
    xs, w, mu, psi = _model(x, weight, mean, noise_variance)
    wt_psi_inv, chol = _precision_factor(w, psi)
    cov = jax.scipy.linalg.cho_solve((chol, True), jnp.eye(w.shape[1], dtype=w.dtype))
    return GaussianPosterior(mean=(xs - mu) @ (cov @ wt_psi_inv).T, cov=cov)


def elbo(
    x: jax.typing.ArrayLike,
    weight: jax.typing.ArrayLike,
    mean: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
    q_mean: jax.typing.ArrayLike,
    q_cov: jax.typing.ArrayLike,
) -> jax.Array:
    """Closed-form ELBO of PPCA / factor analysis for a Gaussian ``q(z | x) = N(m, S)``.

    .. math:: \\mathcal{L} = \\log \\mathcal{N}(x \\mid \\mu + W m, \\Psi)
        - \\tfrac12 \\operatorname{tr}(W^\\top \\Psi^{-1} W S)
        - \\tfrac12 (m^\\top m + \\operatorname{tr} S - k - \\log\\det S)

    the expected log-likelihood minus ``KL(q || N(0, I))``. A lower bound on
    :func:`log_likelihood`, equal to it exactly when ``q`` is :func:`posterior`; the gap is
    ``KL(q || p(z | x))``. Maximising it over ``q`` is the E-step of EM.

    Args:
      x: ``[..., d]`` observations.
      weight: ``[d, k]`` loading matrix.
      mean: ``[d]`` (or scalar) offset.
      noise_variance: scalar or ``[d]`` noise variances.
      q_mean: ``[..., k]`` means of ``q``.
      q_cov: ``[k, k]`` or ``[..., k, k]`` covariances of ``q`` (positive definite).

    Returns:
      ``[...]`` ELBO values, nats.

    References:
      Tipping & Bishop, Probabilistic Principal Component Analysis, 1999;
      Ghahramani & Hinton, The EM Algorithm for Mixtures of Factor Analyzers, 1996.

    Examples:
      >>> w, x = jnp.array([[1.0], [0.0]]), jnp.array([2.0, 5.0])
      >>> post = vb.linear_gaussian.posterior(x, w, 0.0, 1.0)
      >>> exact = vb.linear_gaussian.log_likelihood(x, w, 0.0, 1.0)
      >>> tight = vb.linear_gaussian.elbo(x, w, 0.0, 1.0, post.mean, post.cov)
      >>> abs(round(float(tight - exact), 4))  # tight at the posterior
      0.0
      >>> loose = vb.linear_gaussian.elbo(x, w, 0.0, 1.0, jnp.zeros(1), jnp.eye(1))
      >>> bool(loose < exact)
      True
    """
    xs, w, mu, psi = _model(x, weight, mean, noise_variance)
    d, k = w.shape
    m = as_float_array(q_mean, "q_mean", min_ndim=1)
    if m.shape[-1] != k:
        raise ValueError(f"`q_mean` must end in the latent dimension {k}, got {m.shape}.")
    s = as_float_array(q_cov, "q_cov", min_ndim=2)
    if s.shape[-2:] != (k, k):
        raise ValueError(f"`q_cov` must end in ({k}, {k}), got {s.shape}.")
    resid = xs - mu - m @ w.T
    expected_loglik = -0.5 * (
        d * math.log(2 * math.pi) + jnp.sum(jnp.log(psi)) + jnp.sum(resid**2 / psi, axis=-1)
    )
    precision = jnp.eye(k, dtype=w.dtype) + (w.T / psi) @ w
    # tr(W^T Psi^-1 W S) + tr(S) in one trace.
    trace = jnp.sum(precision * s, axis=(-2, -1))
    logdet_s = 2.0 * jnp.sum(jnp.log(jnp.diagonal(jnp.linalg.cholesky(s), axis1=-2, axis2=-1)), -1)
    return expected_loglik - 0.5 * (jnp.sum(m**2, axis=-1) + trace - k - logdet_s)
