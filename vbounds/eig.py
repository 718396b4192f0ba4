"""Bounds on the expected information gain (EIG) of an experimental design.

The EIG of a design ``d`` is the mutual information between the parameters and the
outcome, ``EIG(d) = E_{p(theta) p(y | theta, d)}[log p(y | theta, d) - log p(y | d)]``.
Its marginal ``p(y | d)`` is intractable, so the functions below bound it from samples.

Layout of the contrastive estimators (``pce``, ``nmc``): ``log_lik[n, l] = log p(y_n |
theta_{n,l}, d)``, shape ``[N, L + 1]``, where ``theta_{n,0} ~ p(theta)`` generated
``y_n ~ p(y | theta_{n,0}, d)`` and the columns ``l >= 1`` hold ``L`` independent prior
draws. Every bound returns one scalar, the mean over the ``N`` outcomes, in nats.

Beyond the estimators: two bounds from fitted Gaussians (``laplace``,
``gaussian_posterior``, ``gaussian_marginal``), the exact EIG of a linear-Gaussian model
(``linear_gaussian``) with its conjugate update (``linear_gaussian_posterior``), gradient
ascent of any lower bound in the design (``optimize_design``), and greedy adaptive design
for the linear-Gaussian model (``sequential_linear_gaussian``).

References:
  Foster et al., Variational Bayesian Optimal Experimental Design, NeurIPS 2019.
  Foster et al., A Unified Stochastic Gradient Approach to Designing Bayesian-Optimal
  Experiments, AISTATS 2020.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vbounds._validation import (
    as_float_array,
    check_finite_if_concrete,
    check_int,
    concrete_float,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_LOG_2PI = math.log(2.0 * math.pi)


def _log_lik_matrix(log_lik: ArrayLike) -> Array:
    m = as_float_array(log_lik, "log_lik")
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 2:
        raise ValueError(
            "`log_lik` must be an [N, L + 1] matrix with N >= 1 outcomes and L >= 1 "
            f"contrastive prior draws (column 0 is the generating draw), got shape {m.shape}."
        )
    check_finite_if_concrete(m, "log_lik")
    return m


def _vector(x: ArrayLike, name: str, n: int | None = None) -> Array:
    v = as_float_array(x, name)
    if v.ndim != 1 or v.shape[0] < 1 or (n is not None and v.shape[0] != n):
        expected = "a non-empty 1-D array" if n is None else f"shape ({n},)"
        raise ValueError(f"`{name}` must have {expected}, got shape {v.shape}.")
    check_finite_if_concrete(v, name)
    return v


def _logmeanexp(x: Array, axis: int) -> Array:
    return jax.nn.logsumexp(x, axis=axis) - math.log(x.shape[axis])


def pce(log_lik: ArrayLike) -> Array:
    """Prior contrastive estimation (PCE): a lower bound on the EIG.

    .. math::
        \\mathrm{PCE}_L = \\frac1N \\sum_n \\Big[\\log p(y_n | \\theta_{n,0})
            - \\log \\frac{1}{L+1} \\sum_{l=0}^{L} p(y_n | \\theta_{n,l})\\Big]

    A lower bound for every ``L``, increasing to the EIG as ``L -> inf``. Because the
    generating draw is among the contrasts, the bound never exceeds ``log(L + 1)``,
    whatever the input.

    Args:
      log_lik: ``[N, L + 1]`` log-likelihoods, column 0 the generating draw.

    Returns:
      The bound (scalar, nats).

    References:
      Foster et al., A Unified Stochastic Gradient Approach to Designing Bayesian-Optimal
      Experiments, AISTATS 2020.

    Examples:
      >>> # A perfectly informative outcome with 3 contrasts reaches the cap log 4.
      >>> log_lik = jnp.array([[0.0, -50.0, -50.0, -50.0]])
      >>> round(float(vb.eig.pce(log_lik)), 4)
      1.3863
    """
    m = _log_lik_matrix(log_lik)
    # Shifting by the generating column first keeps the exp(0) term exact, so the cap
    # log(L + 1) holds in floating point even for log-likelihoods of magnitude 1e4.
    return math.log(m.shape[1]) - jnp.mean(jax.nn.logsumexp(m - m[:, :1], axis=1))


def nmc(log_lik: ArrayLike) -> Array:
    """Nested Monte Carlo (NMC): an upper bound on the EIG in expectation.

    .. math::
        \\mathrm{NMC}_L = \\frac1N \\sum_n \\Big[\\log p(y_n | \\theta_{n,0})
            - \\log \\frac1L \\sum_{l=1}^{L} p(y_n | \\theta_{n,l})\\Big]

    The inner estimate of ``log p(y_n)`` excludes the generating draw, so by Jensen the
    expectation lies above the EIG, decreasing to it as ``L -> inf``.

    Args:
      log_lik: ``[N, L + 1]`` log-likelihoods, column 0 the generating draw.

    Returns:
      The bound (scalar, nats).

    References:
      Rainforth et al., On Nesting Monte Carlo Estimators, ICML 2018. Foster et al.,
      Variational Bayesian Optimal Experimental Design, NeurIPS 2019.

    Examples:
      >>> log_lik = jnp.array([[0.0, -1.0, -3.0]])
      >>> round(float(vb.eig.nmc(log_lik)), 4)
      1.5662
    """
    m = _log_lik_matrix(log_lik)
    return math.log(m.shape[1] - 1) - jnp.mean(jax.nn.logsumexp(m[:, 1:] - m[:, :1], axis=1))


def posterior(log_q: ArrayLike, log_prior: ArrayLike) -> Array:
    """Posterior (Barber-Agakov) lower bound on the EIG.

    .. math::
        \\mathrm{EIG} \\ge \\frac1N \\sum_n \\big[\\log q(\\theta_n | y_n)
            - \\log p(\\theta_n)\\big]

    for any conditional density ``q(theta | y)``, e.g. an amortised network; the gap is
    ``E_y KL(p(theta | y) || q(theta | y))``.

    Args:
      log_q: ``[N]`` values ``log q(theta_n | y_n)`` at the generating draws.
      log_prior: ``[N]`` values ``log p(theta_n)``.

    Returns:
      The bound (scalar, nats).

    References:
      Barber & Agakov, The IM Algorithm, NeurIPS 2003. Foster et al., Variational Bayesian
      Optimal Experimental Design, NeurIPS 2019.

    Examples:
      >>> round(float(vb.eig.posterior(jnp.array([0.5, 1.0]), jnp.array([-1.0, -1.5]))), 4)
      2.0
    """
    q = _vector(log_q, "log_q")
    return jnp.mean(q - _vector(log_prior, "log_prior", q.shape[0]))


def marginal(log_lik0: ArrayLike, log_q_y: ArrayLike) -> Array:
    """Marginal upper bound on the EIG.

    .. math::
        \\mathrm{EIG} \\le \\frac1N \\sum_n \\big[\\log p(y_n | \\theta_n) - \\log q(y_n)\\big]

    for any density ``q(y)`` over outcomes; the gap is ``KL(p(y | d) || q(y))``.

    Args:
      log_lik0: ``[N]`` values ``log p(y_n | theta_n, d)`` at the generating draws.
      log_q_y: ``[N]`` values ``log q(y_n)``.

    Returns:
      The bound (scalar, nats).

    References:
      Foster et al., Variational Bayesian Optimal Experimental Design, NeurIPS 2019.

    Examples:
      >>> round(float(vb.eig.marginal(jnp.array([0.0, -1.0]), jnp.array([-2.0, -2.0]))), 4)
      1.5
    """
    lik = _vector(log_lik0, "log_lik0")
    return jnp.mean(lik - _vector(log_q_y, "log_q_y", lik.shape[0]))


def vnmc(log_lik0: ArrayLike, log_joint: ArrayLike, log_q: ArrayLike) -> Array:
    """Variational nested Monte Carlo (VNMC): an upper bound on the EIG in expectation.

    .. math::
        \\mathrm{VNMC}_L = \\frac1N \\sum_n \\Big[\\log p(y_n | \\theta_{n,0})
            - \\log \\frac1L \\sum_{l=1}^{L}
              \\frac{p(y_n, \\theta_{n,l})}{q(\\theta_{n,l} | y_n)}\\Big],
        \\quad \\theta_{n,l} \\sim q(\\cdot | y_n)

    The inner term is an importance-sampling (IWAE) lower bound on ``log p(y_n)``, so the
    whole is an upper bound that decreases in ``L``; with ``q`` the exact posterior it is
    the EIG estimate without bias for every ``L``.

    Args:
      log_lik0: ``[N]`` values ``log p(y_n | theta_{n,0}, d)``.
      log_joint: ``[N, L]`` values ``log p(y_n, theta_{n,l})`` (prior times likelihood)
        at draws ``theta_{n,l} ~ q(. | y_n)``.
      log_q: ``[N, L]`` values ``log q(theta_{n,l} | y_n)``.

    Returns:
      The bound (scalar, nats).

    References:
      Foster et al., Variational Bayesian Optimal Experimental Design, NeurIPS 2019.

    Examples:
      >>> lik0 = jnp.array([0.0])
      >>> log_joint, log_q = jnp.array([[-1.0, -2.0]]), jnp.array([[-1.0, -1.0]])
      >>> round(float(vb.eig.vnmc(lik0, log_joint, log_q)), 4)
      0.3799
    """
    lik = _vector(log_lik0, "log_lik0")
    joint = as_float_array(log_joint, "log_joint")
    q = as_float_array(log_q, "log_q")
    for name, arr in (("log_joint", joint), ("log_q", q)):
        if arr.ndim != 2 or arr.shape[0] != lik.shape[0] or arr.shape[1] < 1:
            raise ValueError(
                f"`{name}` must have shape [N, L] = [{lik.shape[0]}, L >= 1] like `log_lik0`, "
                f"got shape {arr.shape}."
            )
        check_finite_if_concrete(arr, name)
    if joint.shape != q.shape:
        raise ValueError(
            f"`log_q` must have the shape of `log_joint` {joint.shape}, got {q.shape}."
        )
    return jnp.mean(lik - _logmeanexp(joint - q, axis=1))


def _design_matrix(design: ArrayLike, name: str = "design") -> Array:
    x = as_float_array(design, name)
    if x.ndim < 2:
        raise ValueError(f"`{name}` must be a [..., P, D] matrix, got shape {x.shape}.")
    return x


def _covariance(cov: ArrayLike, name: str, dim: int) -> Array:
    c = as_float_array(cov, name)
    if c.shape[-2:] != (dim, dim):
        raise ValueError(f"`{name}` must be a [..., {dim}, {dim}] matrix, got shape {c.shape}.")
    return c


def _positive(x: ArrayLike, name: str) -> Array:
    v = as_float_array(x, name)
    value = concrete_float(v, name) if v.ndim == 0 else None
    if value is not None and not value > 0:
        raise ValueError(f"`{name}` must be positive, got {value}.")
    return v


def linear_gaussian(design: ArrayLike, prior_cov: ArrayLike, noise_variance: ArrayLike) -> Array:
    """Exact EIG of the linear-Gaussian model ``y = design @ theta + eps``.

    .. math::
        \\mathrm{EIG} = \\tfrac12 \\log\\det\\big(I + X \\Sigma X^\\top / \\sigma^2\\big)

    for ``theta ~ N(mu, Sigma)``, ``eps ~ N(0, sigma^2 I)``, design ``X``. It does not
    depend on the prior mean nor on the outcome. The ground truth for the estimators.

    Args:
      design: ``[..., P, D]`` design matrix ``X`` (``P`` observations of ``D`` parameters).
      prior_cov: ``[..., D, D]`` prior covariance ``Sigma``.
      noise_variance: observation noise variance ``sigma^2 > 0`` (broadcasts).

    Returns:
      The EIG, shape the broadcast batch shape (nats).

    References:
      Chaloner & Verdinelli, Bayesian Experimental Design: A Review, Statistical Science 1995.

    Examples:
      >>> # One observation of a unit-variance scalar with unit noise: 0.5 log 2.
      >>> round(float(vb.eig.linear_gaussian(jnp.ones((1, 1)), jnp.eye(1), 1.0)), 4)
      0.3466
    """
    x = _design_matrix(design)
    cov = _covariance(prior_cov, "prior_cov", x.shape[-1])
    noise = _positive(noise_variance, "noise_variance")
    p = x.shape[-2]
    gram = x @ cov @ jnp.swapaxes(x, -1, -2) / noise[..., None, None]
    return 0.5 * jnp.linalg.slogdet(jnp.eye(p, dtype=gram.dtype) + gram)[1]


def linear_gaussian_posterior(
    design: ArrayLike,
    y: ArrayLike,
    prior_mean: ArrayLike,
    prior_cov: ArrayLike,
    noise_variance: ArrayLike,
) -> tuple[Array, Array]:
    """Exact (conjugate) posterior of ``theta`` after observing ``y = design @ theta + eps``.

    .. math::
        \\Sigma' = (\\Sigma^{-1} + X^\\top X / \\sigma^2)^{-1}, \\qquad
        \\mu' = \\mu + \\Sigma X^\\top (X \\Sigma X^\\top + \\sigma^2 I)^{-1} (y - X \\mu)

    The posterior is the prior of the next experiment in sequential design.

    Args:
      design: ``[P, D]`` design matrix ``X``.
      y: ``[P]`` observed outcome.
      prior_mean: ``[D]`` prior mean ``mu``.
      prior_cov: ``[D, D]`` prior covariance ``Sigma``.
      noise_variance: scalar noise variance ``sigma^2 > 0``.

    Returns:
      ``(mean [D], cov [D, D])`` of the Gaussian posterior.

    References:
      Chaloner & Verdinelli, Bayesian Experimental Design: A Review, Statistical Science 1995.

    Examples:
      >>> mean, cov = vb.eig.linear_gaussian_posterior(
      ...     jnp.ones((1, 1)), jnp.array([2.0]), jnp.zeros(1), jnp.eye(1), 1.0)
      >>> round(float(mean[0]), 4), round(float(cov[0, 0]), 4)
      (1.0, 0.5)
    """
    x = _design_matrix(design)
    if x.ndim != 2:
        raise ValueError(f"`design` must be a [P, D] matrix, got shape {x.shape}.")
    p, d = x.shape
    obs = _vector(y, "y", p)
    mean = _vector(prior_mean, "prior_mean", d)
    cov = _covariance(prior_cov, "prior_cov", d)
    noise = _positive(noise_variance, "noise_variance")
    # The P x P innovation form needs no inverse of the prior covariance (it may be singular).
    cross = cov @ x.T
    innovation = x @ cross + noise * jnp.eye(p, dtype=cross.dtype)
    gain = jnp.linalg.solve(innovation, cross.T).T
    new_cov = cov - gain @ cross.T
    return mean + gain @ (obs - x @ mean), 0.5 * (new_cov + new_cov.T)


def _gaussian_log_prob(x: Array, mean: Array, cov: Array) -> Array:
    """Row-wise ``log N(x | mean, cov)`` for ``x, mean`` ``[N, D]`` (mean broadcasts)."""
    chol = jnp.linalg.cholesky(cov)
    z = jax.scipy.linalg.solve_triangular(chol, (x - mean).T, lower=True)
    d = x.shape[-1]
    return -0.5 * (d * _LOG_2PI + jnp.sum(z**2, axis=0)) - jnp.sum(jnp.log(jnp.diagonal(chol)))


def _num_fit(num_fit, n: int) -> int:
    k = check_int(n // 2 if num_fit is None else num_fit, "num_fit", minimum=2)
    if k >= n:
        raise ValueError(
            f"`num_fit` must leave at least one pair to evaluate on: need num_fit < N = {n}, "
            f"got {k}."
        )
    return k


def _samples(x: ArrayLike, name: str, n: int | None = None) -> Array:
    a = as_float_array(x, name)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 3 or (n is not None and a.shape[0] != n):
        rows = "N >= 3" if n is None else f"N = {n}"
        raise ValueError(f"`{name}` must be [N, dim] with {rows} rows, got shape {a.shape}.")
    check_finite_if_concrete(a, name)
    return a


def gaussian_posterior(
    theta: ArrayLike, y: ArrayLike, log_prior: ArrayLike, *, num_fit: int | None = None
) -> Array:
    """Posterior lower bound with the best Gaussian posterior whose mean is affine in ``y``.

    .. math::
        q(\\theta | y) = \\mathcal N(\\theta \\mid W y + b, S), \\qquad
        \\mathrm{EIG} \\ge \\operatorname{mean}_{n > n_\\mathrm{fit}}
            \\big[\\log q(\\theta_n | y_n) - \\log p(\\theta_n)\\big]

    ``W, b, S`` are the least-squares regression of ``theta`` on ``y`` (the maximum-
    likelihood conditional Gaussian) fitted on the first ``num_fit`` pairs; the bound is
    evaluated on the others, so ``q`` does not depend on them and the value is a lower
    bound in expectation. Exact in the limit for a linear-Gaussian model, where the
    posterior has this form. No training: a fast baseline for any simulator.

    Args:
      theta: ``[N, D]`` prior draws (``[N]`` for ``D = 1``).
      y: ``[N, P]`` outcomes they generated (``[N]`` for ``P = 1``).
      log_prior: ``[N]`` values ``log p(theta_n)``.
      num_fit: pairs used for the fit (static int, ``N // 2`` by default); needs
        ``num_fit > P + 1`` for a non-singular fit.

    Returns:
      The bound (scalar, nats) over the ``N - num_fit`` held-out pairs.

    References:
      Foster et al., Variational Bayesian Optimal Experimental Design, NeurIPS 2019
      (the posterior bound); Barber & Agakov, The IM Algorithm, NeurIPS 2003.

    Examples:
      >>> key_t, key_e = jax.random.split(jax.random.key(0))
      >>> theta = jax.random.normal(key_t, (4000, 1))
      >>> y = theta + jax.random.normal(key_e, (4000, 1))  # exact EIG 0.5 log 2 = 0.3466
      >>> log_prior = jax.scipy.stats.norm.logpdf(theta[:, 0])
      >>> round(float(vb.eig.gaussian_posterior(theta, y, log_prior)), 2)
      0.35
    """
    t = _samples(theta, "theta")
    n = t.shape[0]
    obs = _samples(y, "y", n)
    prior = _vector(log_prior, "log_prior", n)
    k = _num_fit(num_fit, n)
    design = jnp.concatenate([obs, jnp.ones((n, 1), obs.dtype)], axis=1)
    coef = jnp.linalg.lstsq(design[:k], t[:k])[0]
    residual = t[:k] - design[:k] @ coef
    cov = residual.T @ residual / k
    log_q = _gaussian_log_prob(t[k:], design[k:] @ coef, cov)
    return jnp.mean(log_q - prior[k:])


def gaussian_marginal(y: ArrayLike, log_lik0: ArrayLike, *, num_fit: int | None = None) -> Array:
    """Marginal upper bound with a Gaussian ``q(y)`` fitted to outcomes by moments.

    .. math::
        q(y) = \\mathcal N(y \\mid \\bar y, C), \\qquad
        \\mathrm{EIG} \\le \\operatorname{mean}_{n > n_\\mathrm{fit}}
            \\big[\\log p(y_n | \\theta_n) - \\log q(y_n)\\big]

    The mean and covariance come from the first ``num_fit`` outcomes and the bound is
    evaluated on the others (an upper bound in expectation). Exact in the limit when the
    outcome marginal is Gaussian (a linear-Gaussian model).

    Args:
      y: ``[N, P]`` outcomes (``[N]`` for ``P = 1``), ``y_n ~ p(y | theta_n, d)``.
      log_lik0: ``[N]`` values ``log p(y_n | theta_n, d)``.
      num_fit: outcomes used for the fit (static int, ``N // 2`` by default).

    Returns:
      The bound (scalar, nats) over the ``N - num_fit`` held-out outcomes.

    References:
      Foster et al., Variational Bayesian Optimal Experimental Design, NeurIPS 2019.

    Examples:
      >>> key_t, key_e = jax.random.split(jax.random.key(0))
      >>> theta, eps = jax.random.normal(key_t, (4000,)), jax.random.normal(key_e, (4000,))
      >>> log_lik0 = jax.scipy.stats.norm.logpdf(eps)  # y = theta + eps, exact EIG 0.3466
      >>> round(float(vb.eig.gaussian_marginal(theta + eps, log_lik0)), 2)
      0.35
    """
    obs = _samples(y, "y")
    n = obs.shape[0]
    lik = _vector(log_lik0, "log_lik0", n)
    k = _num_fit(num_fit, n)
    mean = jnp.mean(obs[:k], axis=0)
    centred = obs[:k] - mean
    log_q = _gaussian_log_prob(obs[k:], mean, centred.T @ centred / k)
    return jnp.mean(lik[k:] - log_q)


def laplace(
    log_prior: Callable[[Array], Array],
    log_lik: Callable[[Array, Array], Array],
    theta: ArrayLike,
    y: ArrayLike,
    theta_init: ArrayLike,
    *,
    num_steps: int = 20,
) -> Array:
    """Posterior lower bound with the Laplace approximation of each posterior.

    .. math::
        q(\\theta | y) = \\mathcal N\\big(\\hat\\theta(y), H(y)^{-1}\\big), \\quad
        \\hat\\theta(y) = \\arg\\max_\\theta \\log p(\\theta) p(y | \\theta), \\quad
        H = -\\nabla^2_\\theta \\log p(\\theta) p(y | \\theta) \\big|_{\\hat\\theta}

    and the value is the posterior bound ``mean_n[log q(theta_n | y_n) - log p(theta_n)]``.
    ``theta_hat`` is found by ``num_steps`` Newton steps from ``theta_init``, the same start
    for every outcome, so ``q`` depends on ``y_n`` only and the bound is valid even before
    Newton converges. Exact for a linear-Gaussian model (one Newton step). Newton assumes
    the log-posterior is concave near its mode; where ``H`` is not positive definite the
    value is NaN.

    Args:
      log_prior: ``theta [D] -> log p(theta)`` (scalar, differentiable twice).
      log_lik: ``(theta [D], y_n) -> log p(y_n | theta, d)`` (scalar, differentiable twice).
      theta: ``[N, D]`` prior draws that generated the outcomes.
      y: ``[N, ...]`` outcomes, one per row of ``theta``.
      theta_init: ``[D]`` Newton start (e.g. the prior mean).
      num_steps: Newton steps (static int).

    Returns:
      The bound (scalar, nats).

    References:
      Long et al., Fast Estimation of Expected Information Gains for Bayesian Experimental
      Designs Based on Laplace Approximations, CMAME 2013. Foster et al., Variational
      Bayesian Optimal Experimental Design, NeurIPS 2019.

    Examples:
      >>> log_prior = lambda t: jax.scipy.stats.norm.logpdf(t).sum()
      >>> log_lik = lambda t, y: jax.scipy.stats.norm.logpdf(y, t).sum()
      >>> theta = jnp.array([[0.3], [-1.2]])
      >>> y = jnp.array([[0.1], [-0.4]])  # exact posteriors N(y / 2, 1 / 2): q is exact
      >>> round(float(vb.eig.laplace(log_prior, log_lik, theta, y, jnp.zeros(1))), 4)
      0.1978
    """
    t = as_float_array(theta, "theta")
    if t.ndim != 2 or t.shape[0] < 1:
        raise ValueError(f"`theta` must be an [N, D] array, got shape {t.shape}.")
    obs = jnp.asarray(y)
    if obs.ndim < 1 or obs.shape[0] != t.shape[0]:
        raise ValueError(f"`y` must have N = {t.shape[0]} rows like `theta`, got {obs.shape}.")
    start = _vector(theta_init, "theta_init", t.shape[1])
    steps = check_int(num_steps, "num_steps")

    def one(theta_n, y_n):
        def log_joint(v):
            return log_prior(v) + log_lik(v, y_n)

        def newton(_, v):
            return v - jnp.linalg.solve(jax.hessian(log_joint)(v), jax.grad(log_joint)(v))

        mode = jax.lax.fori_loop(0, steps, newton, start)
        precision = -jax.hessian(log_joint)(mode)
        log_q = _gaussian_log_prob(theta_n[None], mode, jnp.linalg.inv(precision))[0]
        return log_q - log_prior(theta_n)

    # Op-by-op dispatch of vmapped Hessians is slow: compile even when called eagerly.
    return jnp.mean(jax.jit(jax.vmap(one))(t, obs))


def optimize_design(
    bound_fn: Callable[[Any, Array], Array],
    params: Any,
    key: Array,
    *,
    num_steps: int,
    learning_rate: float = 0.01,
) -> tuple[Any, Array]:
    """Ascends a stochastic lower bound on the EIG in the design (and any critic) by Adam.

    Each step draws a fresh key, evaluates ``bound_fn(params, key)`` and moves ``params``
    up its gradient. ``params`` is any pytree: the design alone for ``pce`` (the simulator
    must be reparameterised, so outcomes are differentiable in the design), or ``(design,
    posterior_params)`` for the Barber-Agakov bound with an amortised posterior, which then
    trains the posterior and the design together. Impose a constraint by parametrising it
    inside ``bound_fn`` (e.g. the design ``u / |u|`` of unconstrained ``u`` for a norm
    constraint): projecting after each step would not do, since Adam's per-coordinate
    scaling bends the step away from the gradient. The whole loop is one ``lax.scan``:
    jittable with ``num_steps`` static.

    Args:
      bound_fn: ``(params, key) -> scalar`` lower bound to maximise.
      params: initial parameters (pytree of float arrays).
      key: PRNG key.
      num_steps: Adam steps (static int).
      learning_rate: Adam step size (``b1 = 0.9``, ``b2 = 0.999``, ``eps = 1e-8``).

    Returns:
      ``(params, history)``: the final parameters and ``[num_steps]`` bound values, each
      evaluated before its step.

    References:
      Foster et al., A Unified Stochastic Gradient Approach to Designing Bayesian-Optimal
      Experiments, AISTATS 2020. Kingma & Ba, Adam, ICLR 2015.

    Examples:
      >>> # Maximise -(d - 2)^2 (a stand-in for a bound): the design goes to 2.
      >>> d, history = vb.eig.optimize_design(
      ...     lambda d, key: -(d - 2.0) ** 2, jnp.array(0.0), jax.random.key(0),
      ...     num_steps=500, learning_rate=0.05)
      >>> round(float(d), 2)
      2.0
    """
    steps = check_int(num_steps, "num_steps")
    lr = concrete_float(learning_rate, "learning_rate")
    if lr is not None and not lr > 0:
        raise ValueError(f"`learning_rate` must be positive, got {lr}.")
    if not callable(bound_fn):
        raise TypeError(f"`bound_fn` must be callable, got {type(bound_fn).__name__}.")
    b1, b2, eps = 0.9, 0.999, 1e-8
    value_and_grad = jax.value_and_grad(bound_fn)
    zeros = jax.tree.map(jnp.zeros_like, params)

    def step(carry, inputs):
        p, m, v = carry
        t, step_key = inputs
        value, grad = value_and_grad(p, step_key)
        m = jax.tree.map(lambda a, g: b1 * a + (1 - b1) * g, m, grad)
        v = jax.tree.map(lambda a, g: b2 * a + (1 - b2) * g**2, v, grad)
        scale = learning_rate * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        p = jax.tree.map(lambda x, a, b: x + scale * a / (jnp.sqrt(b) + eps), p, m, v)
        return (p, m, v), value

    keys = jax.random.split(key, steps)
    counts = jnp.arange(1, steps + 1, dtype=jnp.result_type(float))
    (params, _, _), history = jax.lax.scan(step, (params, zeros, zeros), (counts, keys))
    return params, history


class SequentialDesign(NamedTuple):
    """The record of a greedy adaptive design (`sequential_linear_gaussian`), per step."""

    choice: Array  # [T] index of the chosen candidate
    eig: Array  # [T] its EIG under the current prior
    y: Array  # [T, P] observed outcomes
    mean: Array  # [T, D] posterior mean after the step
    cov: Array  # [T, D, D] posterior covariance after the step


def sequential_linear_gaussian(
    candidates: ArrayLike,
    theta: ArrayLike,
    prior_mean: ArrayLike,
    prior_cov: ArrayLike,
    noise_variance: ArrayLike,
    key: Array,
    *,
    num_steps: int,
) -> SequentialDesign:
    """Greedy adaptive design for the linear-Gaussian model, with exact conjugate updates.

    At step ``t`` the design with the largest exact EIG under the current prior
    ``N(mu_t, Sigma_t)`` is chosen among ``candidates``, its outcome ``y_t = X theta +
    eps`` is simulated for the true ``theta``, and the posterior
    (`linear_gaussian_posterior`) becomes the next prior. The per-step EIGs sum to the
    EIG of all chosen designs stacked (the chain rule of mutual information).

    What it supports: only the linear-Gaussian model, where the update is exact and the
    EIG does not depend on past outcomes (so the greedy sequence is fixed in advance; the
    outcomes move the mean only). For other models use `optimize_design` with a bound
    whose prior draws come from your own posterior approximation after each observation.

    Args:
      candidates: ``[C, P, D]`` candidate design matrices.
      theta: ``[D]`` the true parameter generating the outcomes.
      prior_mean: ``[D]`` initial prior mean.
      prior_cov: ``[D, D]`` initial prior covariance.
      noise_variance: scalar noise variance ``> 0``.
      key: PRNG key for the observation noise.
      num_steps: number of experiments ``T`` (static int); a candidate may be reused.

    Returns:
      A `SequentialDesign` of per-step arrays.

    References:
      Chaloner & Verdinelli, Bayesian Experimental Design: A Review, Statistical Science
      1995. Foster et al., Deep Adaptive Design, ICML 2021 (adaptive design).

    Examples:
      >>> candidates = jnp.stack([jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]])])
      >>> record = vb.eig.sequential_linear_gaussian(
      ...     candidates, jnp.zeros(2), jnp.zeros(2), jnp.diag(jnp.array([4.0, 1.0])), 1.0,
      ...     jax.random.key(0), num_steps=2)
      >>> [int(c) for c in record.choice], [round(float(e), 4) for e in record.eig]
      ([0, 1], [0.8047, 0.3466])
    """
    cands = as_float_array(candidates, "candidates")
    if cands.ndim != 3 or cands.shape[0] < 1:
        raise ValueError(f"`candidates` must be a [C, P, D] array, got shape {cands.shape}.")
    _, p, d = cands.shape
    truth = _vector(theta, "theta", d)
    mean0 = _vector(prior_mean, "prior_mean", d)
    cov0 = _covariance(prior_cov, "prior_cov", d)
    noise = _positive(noise_variance, "noise_variance")
    steps = check_int(num_steps, "num_steps")
    dtype = jnp.result_type(cands, truth, mean0, cov0, noise)
    cands, truth, noise = cands.astype(dtype), truth.astype(dtype), noise.astype(dtype)

    def step(carry, step_key):
        mean, cov = carry
        eigs = linear_gaussian(cands, cov, noise)
        choice = jnp.argmax(eigs)
        design = cands[choice]
        y = design @ truth + jnp.sqrt(noise) * jax.random.normal(step_key, (p,), cov.dtype)
        mean, cov = linear_gaussian_posterior(design, y, mean, cov, noise)
        return (mean, cov), SequentialDesign(choice, eigs[choice], y, mean, cov)

    initial = (mean0.astype(dtype), cov0.astype(dtype))
    _, record = jax.lax.scan(step, initial, jax.random.split(key, steps))
    return record
