"""Latent stochastic differential equations: Girsanov path KLs and their ELBOs.

A latent SDE has a prior ``dz = f_p(z, t) dt + g(z, t) dW`` and a variational posterior
``dz = f_q(z, t) dt + g(z, t) dW`` with the same (diagonal) diffusion ``g``. Girsanov's
theorem gives the KL between their path measures as the expected energy of
``u = (f_q - f_p) / g`` along posterior paths,

.. math:: \\mathrm{KL}(Q \\,\\|\\, P) = \\mathbb{E}_Q \\int_0^T \\tfrac12 \\|u(z_t, t)\\|^2 dt,

which :func:`path_kl` estimates on one Euler-Maruyama path (first order in the step size).
:func:`elbo` adds the initial-state KL and the observations' log-likelihood.

Fractional noise (Hurst index ``H != 1/2``) is not Markov, but its Markov approximation
(MA-fBM) is: a weighted sum of Ornstein-Uhlenbeck processes driven by one Brownian motion,
``B^H_t ~ sum_k omega_k Y_k(t)``, ``dY_k = -gamma_k Y_k dt + dW``.
:func:`mafbm_weights` gives the weights that best approximate type-II (Riemann-Liouville)
fBM, :func:`mafbm_covariance` and :func:`fbm_covariance` the two covariances, and
:func:`mafbm_elbo` the ELBO of an SDE driven by MA-fBM with a control of ``W``.

Times are a grid ``ts`` ``[N+1]`` (any strictly increasing spacing); one path per call,
batch with ``jax.vmap``. Every Gaussian increment can be given as ``noise`` (standard
normals) instead of drawn from ``key``: common random numbers across step sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy import special

from vbounds._validation import as_float_array, check_int, concrete_float, require

__all__ = [
    "PathKL",
    "path_kl",
    "SDEELBO",
    "elbo",
    "mafbm_rates",
    "mafbm_weights",
    "mafbm_covariance",
    "fbm_covariance",
    "mafbm_elbo",
]


class PathKL(NamedTuple):
    """Result of :func:`path_kl`.

    Attributes:
      value: the one-path estimate of ``KL(Q || P)`` over paths, a scalar.
      path: ``[N+1, *z0.shape]``, the Euler-Maruyama path of the posterior SDE.
    """

    value: jax.Array
    path: jax.Array


class SDEELBO(NamedTuple):
    """Result of :func:`elbo` and :func:`mafbm_elbo`: one draw of a latent SDE's ELBO.

    Attributes:
      value: ``log_likelihood - initial_kl - path_kl``, a scalar (lower bound in expectation).
      log_likelihood: ``sum_m log p(x_m | z(ts[observed_at[m]]))`` on the sampled path.
      path_kl: the path-space KL estimate along the path.
      initial_kl: ``KL(q(z_0) || p(z_0))`` (analytic).
      path: ``[N+1, ...]``, the sampled latent path.
    """

    value: jax.Array
    log_likelihood: jax.Array
    path_kl: jax.Array
    initial_kl: jax.Array
    path: jax.Array


def _time_grid(ts: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array]:
    ts = as_float_array(ts, "ts")
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"`ts` must be a 1-D time grid with at least 2 points, got {ts.shape}.")
    dts = jnp.diff(ts)
    require(lambda d: d > 0, dts, message="`ts` must be strictly increasing.")
    return ts, dts


def _standard_noise(key, noise, shape: tuple[int, ...], dtype) -> jax.Array:
    if noise is None:
        if key is None:
            raise ValueError("Give a PRNG `key` or the standard-normal `noise`.")
        return jax.random.normal(key, shape, dtype)
    noise = jnp.asarray(noise, dtype)
    if noise.shape != shape:
        raise ValueError(f"`noise` must have shape {shape} (steps first), got {noise.shape}.")
    return noise


def _euler_maruyama(step, state, ts, dts, noise):
    """Integrates ``state`` with ``step(state, t, dt, dw) -> (state, energy)`` on the grid.

    Returns the path of states (initial state included) and ``sum 0.5 ||u||^2 dt``.
    """

    def body(state, inputs):
        t, dt, eps = inputs
        new_state, energy = step(state, t, dt, jnp.sqrt(dt) * eps)
        return new_state, (new_state, energy)

    _, (states, energies) = jax.lax.scan(body, state, (ts[:-1], dts, noise))
    path = jax.tree.map(lambda s0, s: jnp.concatenate([s0[None], s]), state, states)
    return path, jnp.sum(energies)


def path_kl(
    key: jax.Array | None,
    z0: jax.typing.ArrayLike,
    *,
    posterior_drift: Callable[[jax.Array, jax.Array], jax.Array],
    prior_drift: Callable[[jax.Array, jax.Array], jax.Array],
    diffusion: Callable[[jax.Array, jax.Array], jax.typing.ArrayLike],
    ts: jax.typing.ArrayLike,
    noise: jax.typing.ArrayLike | None = None,
) -> PathKL:
    """Girsanov KL between two SDEs with a shared diffusion, on one Euler-Maruyama path.

    .. math:: \\widehat{\\mathrm{KL}} = \\sum_n \\tfrac12 \\Big\\|\\frac{f_q(z_n, t_n) -
        f_p(z_n, t_n)}{g(z_n, t_n)}\\Big\\|^2 \\Delta t_n, \\quad z_{n+1} = z_n + f_q
        \\Delta t_n + g \\sqrt{\\Delta t_n}\\, \\epsilon_n

    An unbiased estimate of the Euler-discretised KL, which converges to the path-space
    ``KL(Q || P)`` at first order in the step size (an estimate; its expectation is the KL
    up to ``O(dt)``). Differentiable in the drifts' parameters (the path is
    reparameterised).

    Args:
      key: a PRNG key (``None`` when ``noise`` is given).
      z0: the initial state (any shape; the drifts map it to its own shape).
      posterior_drift: ``f_q(z, t)``.
      prior_drift: ``f_p(z, t)``.
      diffusion: ``g(z, t)``, a diagonal diffusion broadcastable to ``z``, positive.
      ts: ``[N+1]`` strictly increasing times.
      noise: optional ``[N, *z0.shape]`` standard normals (``dW_n = sqrt(dt_n) noise[n]``).

    Returns:
      A :class:`PathKL` (the estimate and the path).

    References:
      Li, Wong, Chen & Duvenaud, Scalable Gradients for Stochastic Differential Equations,
      2020; Tzen & Raginsky, Neural Stochastic Differential Equations, 2019.

    Examples:
      >>> out = vb.sde.path_kl(
      ...     jax.random.key(0), jnp.zeros(1), posterior_drift=lambda z, t: jnp.ones(1),
      ...     prior_drift=lambda z, t: jnp.zeros(1), diffusion=lambda z, t: 1.0,
      ...     ts=jnp.linspace(0.0, 2.0, 5))
      >>> round(float(out.value), 4)  # constant u = 1 for time 2: KL = 1
      1.0
    """
    z0 = as_float_array(z0, "z0")
    ts, dts = _time_grid(ts)
    dtype = jnp.result_type(z0, ts)
    eps = _standard_noise(key, noise, (dts.shape[0], *z0.shape), dtype)

    def step(z, t, dt, dw):
        f_q = posterior_drift(z, t)
        g = jnp.asarray(diffusion(z, t), dtype)
        u = (f_q - prior_drift(z, t)) / g
        return z + f_q * dt + g * dw, 0.5 * jnp.sum(u**2) * dt

    path, kl = _euler_maruyama(step, z0.astype(dtype), ts, dts, eps)
    return PathKL(kl, path)


def _observation_log_likelihood(x, path, ts, observed_at, emission) -> jax.Array:
    index = jnp.asarray(observed_at)
    if index.ndim != 1 or not jnp.issubdtype(index.dtype, jnp.integer):
        raise ValueError(
            f"`observed_at` must be a 1-D integer array, got {index.dtype}{index.shape}."
        )
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] != index.shape[0]:
        raise ValueError(
            f"`x` must have one observation per entry of `observed_at` ({index.shape[0]}) on "
            f"its leading axis, got shape {x.shape}."
        )
    n = ts.shape[0]
    require(
        lambda i: (i >= 0) & (i < n), index, message=f"`observed_at` must index `ts` (0..{n - 1})."
    )
    states = jax.tree.map(lambda p: p[index], path)

    def one(state, t, x_m):
        log_prob = emission(state, t).log_prob(x_m)
        if jnp.shape(log_prob) != ():
            raise ValueError(
                "`emission` must return a distribution whose log_prob of one observation is a "
                f"scalar, got shape {jnp.shape(log_prob)}; wrap it in distrax.Independent."
            )
        return log_prob

    return jnp.sum(jax.vmap(one)(states, ts[index], x))


def elbo(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    *,
    ts: jax.typing.ArrayLike,
    observed_at: jax.typing.ArrayLike,
    initial_posterior: Any,
    initial_prior: Any,
    posterior_drift: Callable[[jax.Array, jax.Array], jax.Array],
    prior_drift: Callable[[jax.Array, jax.Array], jax.Array],
    diffusion: Callable[[jax.Array, jax.Array], jax.typing.ArrayLike],
    emission: Callable[[jax.Array, jax.Array], Any],
    noise: jax.typing.ArrayLike | None = None,
) -> SDEELBO:
    """ELBO of a latent SDE on one posterior path (a lower bound in expectation).

    .. math:: \\mathcal{L} = \\sum_m \\log p(x_m \\mid z_{t_m}) - \\mathrm{KL}(q(z_0) \\,\\|\\,
        p(z_0)) - \\mathrm{KL}(Q \\,\\|\\, P)

    with ``z_0 ~ q(z_0)`` (reparameterised), the path from :func:`path_kl` and the path KL
    on it (Euler-Maruyama, first order in the step size).

    Args:
      key: a PRNG key (the initial state, and the increments unless ``noise`` is given).
      x: ``[M, ...]`` observations.
      ts: ``[N+1]`` integration grid.
      observed_at: ``[M]`` integer indices into ``ts``: ``x[m]`` is observed at
        ``ts[observed_at[m]]``.
      initial_posterior: ``q(z_0)``, a distribution (distrax) with a KL to ``initial_prior``.
      initial_prior: ``p(z_0)``.
      posterior_drift: ``f_q(z, t)``.
      prior_drift: ``f_p(z, t)``.
      diffusion: ``g(z, t)``, diagonal and shared by both.
      emission: ``emission(z, t)`` -> the distribution of an observation at time ``t``.
      noise: optional ``[N, *z_0.shape]`` standard normals for the increments.

    Returns:
      An :class:`SDEELBO`.

    References:
      Li, Wong, Chen & Duvenaud, Scalable Gradients for Stochastic Differential Equations,
      2020.

    Examples:
      >>> normal = distrax.MultivariateNormalDiag(jnp.zeros(1), jnp.ones(1))
      >>> out = vb.sde.elbo(
      ...     jax.random.key(0), jnp.zeros((2, 1)), ts=jnp.linspace(0.0, 1.0, 11),
      ...     observed_at=jnp.array([5, 10]), initial_posterior=normal, initial_prior=normal,
      ...     posterior_drift=lambda z, t: -z, prior_drift=lambda z, t: -z,
      ...     diffusion=lambda z, t: 0.5,
      ...     emission=lambda z, t: distrax.MultivariateNormalDiag(z, jnp.ones(1)))
      >>> float(out.path_kl), float(out.initial_kl)  # q equals p: both KLs are zero
      (0.0, 0.0)
    """
    key_init, key_path = jax.random.split(key)
    z0 = initial_posterior.sample(seed=key_init)
    initial_kl = initial_posterior.kl_divergence(initial_prior)
    ts_arr, _ = _time_grid(ts)
    kl = path_kl(
        None if noise is not None else key_path,
        z0,
        posterior_drift=posterior_drift,
        prior_drift=prior_drift,
        diffusion=diffusion,
        ts=ts_arr,
        noise=noise,
    )
    log_lik = _observation_log_likelihood(x, kl.path, ts_arr, observed_at, emission)
    return SDEELBO(log_lik - initial_kl - kl.value, log_lik, kl.value, initial_kl, kl.path)


# ----------------------------------------------------------------------------------------
# Markov-approximate fractional Brownian motion (MA-fBM).


def mafbm_rates(num_components: int, *, max_rate: float = 20.0) -> jax.Array:
    """Geometrically spaced mean-reversion rates ``gamma_k`` for MA-fBM (exact).

    ``gamma_k = r^(k - (K+1)/2)``, ``k = 1..K``, with ``r`` chosen so the rates run from
    ``1 / max_rate`` to ``max_rate``: slow components carry the long memory, fast ones the
    roughness.

    Args:
      num_components: ``K >= 2`` (a static int).
      max_rate: the largest rate (> 1); a time step well below ``1 / max_rate`` keeps the
        Euler-Maruyama integration of the fastest component stable.

    Returns:
      ``[K]`` increasing rates.

    References:
      Daems, Opper, Crevecoeur & Demeester, Variational Inference for SDEs Driven by
      Fractional Noise, 2024; Harms & Stefanovits, Affine Representations of Fractional
      Processes with Applications in Mathematical Finance, 2019.

    Examples:
      >>> vb.sde.mafbm_rates(3, max_rate=4.0).tolist()
      [0.25, 1.0, 4.0]
    """
    k = check_int(num_components, "num_components", minimum=2)
    top = concrete_float(max_rate, "max_rate")
    if top is not None and top <= 1.0:
        raise ValueError(f"`max_rate` must be > 1, got {max_rate}.")
    exponent = jnp.arange(1, k + 1) - (k + 1) / 2
    return jnp.asarray(max_rate, jnp.result_type(float)) ** (2 * exponent / (k - 1))


def _rates(rates: jax.typing.ArrayLike) -> jax.Array:
    rates = as_float_array(rates, "rates")
    if rates.ndim != 1 or rates.shape[0] == 0:
        raise ValueError(f"`rates` must be a non-empty 1-D array, got shape {rates.shape}.")
    require(lambda r: r > 0, rates, message="`rates` must be positive.")
    return rates


def _hurst(hurst) -> None:
    h = concrete_float(hurst, "hurst")
    if h is not None and not 0.0 < h < 1.0:
        raise ValueError(f"`hurst` must be in (0, 1), got {hurst}.")


def mafbm_weights(
    hurst: jax.typing.ArrayLike, rates: jax.typing.ArrayLike, *, horizon: jax.typing.ArrayLike
) -> jax.Array:
    """Weights ``omega`` of the MA-fBM closest to type-II fBM on ``[0, horizon]`` (exact).

    Minimises ``int_0^T E(B^H_t - sum_k omega_k Y_k(t))^2 dt`` with ``Y_k(t) = int_0^t
    exp(-gamma_k (t - s)) dW_s`` and the Riemann-Liouville fBM ``B^H_t = int_0^t (t - s)^(H -
    1/2) dW_s / Gamma(H + 1/2)``: the normal equations ``A omega = b`` with

    .. math:: A_{ij} = \\frac{T - (1 - e^{-(\\gamma_i + \\gamma_j) T}) / (\\gamma_i +
        \\gamma_j)}{\\gamma_i + \\gamma_j}, \\quad b_k = \\gamma_k^{-a} \\big(T P(a,
        \\gamma_k T) - \\tfrac{a}{\\gamma_k} P(a + 1, \\gamma_k T)\\big),

    ``a = H + 1/2`` and ``P`` the regularised lower incomplete gamma function.

    Args:
      hurst: ``H`` in ``(0, 1)``.
      rates: ``[K]`` positive rates ``gamma_k`` (e.g. :func:`mafbm_rates`).
      horizon: ``T > 0``.

    Returns:
      ``[K]`` weights.

    References:
      Daems et al., Variational Inference for SDEs Driven by Fractional Noise, 2024.

    Examples:
      >>> w = vb.sde.mafbm_weights(0.5, jnp.array([1e-4]), horizon=1.0)
      >>> round(float(w[0]), 3)  # H = 1/2 is Brownian motion: one slow OU, weight ~1
      1.0
    """
    _hurst(hurst)
    rates = _rates(rates)
    a = jnp.asarray(hurst, rates.dtype) + 0.5
    horizon = jnp.asarray(horizon, rates.dtype)
    total = rates[:, None] + rates[None, :]
    gram = (horizon + jnp.expm1(-total * horizon) / total) / total
    x = rates * horizon
    b = rates**-a * (horizon * special.gammainc(a, x) - a / rates * special.gammainc(a + 1, x))
    return jnp.linalg.solve(gram, b)


def mafbm_covariance(
    s: jax.typing.ArrayLike,
    t: jax.typing.ArrayLike,
    *,
    weights: jax.typing.ArrayLike,
    rates: jax.typing.ArrayLike,
) -> jax.Array:
    """``Cov(B_s, B_t)`` of the MA-fBM ``B = sum_k omega_k Y_k`` started at zero (exact).

    .. math:: \\mathrm{Cov}(B_s, B_t) = \\sum_{i,j} \\omega_i \\omega_j
        e^{-\\gamma_i s - \\gamma_j t} \\frac{e^{(\\gamma_i + \\gamma_j) \\min(s, t)} - 1}
        {\\gamma_i + \\gamma_j}

    Args:
      s: times ``>= 0`` (broadcast against ``t``).
      t: times ``>= 0``.
      weights: ``[K]`` (e.g. :func:`mafbm_weights`).
      rates: ``[K]``.

    Returns:
      The covariances, broadcast shape of ``s`` and ``t``.

    Examples:
      >>> cov = vb.sde.mafbm_covariance(1.0, 1.0, weights=jnp.ones(1), rates=jnp.array([1.0]))
      >>> round(float(cov), 4)  # one OU process: (1 - e^-2) / 2
      0.4323
    """
    rates = _rates(rates)
    weights = as_float_array(weights, "weights")
    if weights.shape != rates.shape:
        raise ValueError(
            f"`weights` must have the shape of `rates` {rates.shape}, got {weights.shape}."
        )
    s, t = jnp.broadcast_arrays(jnp.asarray(s, rates.dtype), jnp.asarray(t, rates.dtype))
    lo = jnp.minimum(s, t)[..., None, None]
    gi, gj = rates[:, None], rates[None, :]
    total = gi + gj
    # e^{-g_i s - g_j t} (e^{(g_i+g_j) lo} - 1), written so no exponent is positive.
    terms = jnp.exp(-gi * (s[..., None, None] - lo) - gj * (t[..., None, None] - lo)) * (
        -jnp.expm1(-total * lo)
    )
    return jnp.einsum("i,j,...ij->...", weights, weights, terms / total)


def fbm_covariance(
    s: jax.typing.ArrayLike, t: jax.typing.ArrayLike, *, hurst: jax.typing.ArrayLike
) -> jax.Array:
    """``Cov(B^H_s, B^H_t)`` of type-II (Riemann-Liouville) fractional Brownian motion (exact).

    ``B^H_t = int_0^t (t - u)^(H - 1/2) dW_u / Gamma(H + 1/2)``; for ``s <= t``, with
    ``a = H + 1/2``:

    .. math:: \\mathrm{Cov}(B_s, B_t) = \\frac{t^{a-1} s^a}{a\\, \\Gamma(a)^2}
        \\, {}_2F_1(1 - a, 1; a + 1; s / t)

    and ``Var(B_t) = t^(2H) / (2H Gamma(a)^2)``. ``H = 1/2`` is Brownian motion.

    Args:
      s: times ``>= 0`` (broadcast against ``t``).
      t: times ``>= 0``.
      hurst: ``H`` in ``(0, 1)``.

    Returns:
      The covariances, broadcast shape of ``s`` and ``t``.

    References:
      Lévy, Random Functions, 1953; Marinucci & Robinson, Alternative Forms of Fractional
      Brownian Motion, 1999.

    Examples:
      >>> round(float(vb.sde.fbm_covariance(0.5, 2.0, hurst=0.5)), 4)  # Brownian: min(s, t)
      0.5
    """
    _hurst(hurst)
    s = as_float_array(s, "s")
    t = as_float_array(t, "t")
    s, t = jnp.broadcast_arrays(s, t)
    a = jnp.asarray(hurst, s.dtype) + 0.5
    lo, hi = jnp.minimum(s, t), jnp.maximum(s, t)
    safe_hi = jnp.where(hi > 0, hi, 1.0)
    value = (
        safe_hi ** (a - 1)
        * lo**a
        * special.hyp2f1(1 - a, 1.0, a + 1, lo / safe_hi)
        / (a * special.gamma(a) ** 2)
    )
    return jnp.where(lo > 0, value, 0.0)


def mafbm_elbo(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    *,
    ts: jax.typing.ArrayLike,
    observed_at: jax.typing.ArrayLike,
    initial_posterior: Any,
    initial_prior: Any,
    weights: jax.typing.ArrayLike,
    rates: jax.typing.ArrayLike,
    drift: Callable[[jax.Array, jax.Array], jax.Array],
    diffusion: Callable[[jax.Array, jax.Array], jax.typing.ArrayLike],
    control: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    emission: Callable[[jax.Array, jax.Array], Any],
    noise: jax.typing.ArrayLike | None = None,
) -> SDEELBO:
    """ELBO of an SDE driven by Markov-approximate fBM, on one posterior path.

    Prior: ``dz = b(z, t) dt + g(z, t) dB``, ``B = sum_k omega_k Y_k``,
    ``dY_k = -gamma_k Y_k dt + dW`` (one ``W`` per latent dimension, ``Y_k(0) = 0``); the
    state ``(z, Y)`` is Markov. Posterior: the same system with ``dW`` replaced by
    ``u(z, Y, t) dt + dW``. Both share every noise path, so Girsanov's KL is the control
    energy and

    .. math:: \\mathcal{L} = \\sum_m \\log p(x_m \\mid z_{t_m}) - \\mathrm{KL}(q(z_0) \\,\\|\\,
        p(z_0)) - \\sum_n \\tfrac12 \\|u_n\\|^2 \\Delta t_n

    on an Euler-Maruyama path (a lower bound in expectation; first order in the step size).

    Args:
      key: a PRNG key (initial state, and increments unless ``noise`` is given).
      x: ``[M, ...]`` observations.
      ts: ``[N+1]`` integration grid.
      observed_at: ``[M]`` integer indices into ``ts``.
      initial_posterior: ``q(z_0)`` over ``[d]`` latents.
      initial_prior: ``p(z_0)``.
      weights: ``[K]`` MA-fBM weights (:func:`mafbm_weights`).
      rates: ``[K]`` rates (:func:`mafbm_rates`).
      drift: ``b(z, t)`` -> ``[d]``.
      diffusion: ``g(z, t)``, broadcastable to ``[d]`` (diagonal).
      control: ``u(z, Y, t)`` -> ``[d]``, with ``Y`` of shape ``[K, d]``.
      emission: ``emission(z, t)`` -> the distribution of an observation.
      noise: optional ``[N, d]`` standard normals for ``dW``.

    Returns:
      An :class:`SDEELBO` whose ``path`` is ``[N+1, d]``.

    References:
      Daems, Opper, Crevecoeur & Demeester, Variational Inference for SDEs Driven by
      Fractional Noise, 2024.

    Examples:
      >>> rates = vb.sde.mafbm_rates(4, max_rate=5.0)
      >>> normal = distrax.MultivariateNormalDiag(jnp.zeros(1), jnp.ones(1))
      >>> out = vb.sde.mafbm_elbo(
      ...     jax.random.key(0), jnp.zeros((1, 1)), ts=jnp.linspace(0.0, 1.0, 21),
      ...     observed_at=jnp.array([20]), initial_posterior=normal, initial_prior=normal,
      ...     weights=vb.sde.mafbm_weights(0.3, rates, horizon=1.0), rates=rates,
      ...     drift=lambda z, t: -z, diffusion=lambda z, t: 1.0,
      ...     control=lambda z, y, t: jnp.full(1, 2.0),
      ...     emission=lambda z, t: distrax.MultivariateNormalDiag(z, jnp.ones(1)))
      >>> round(float(out.path_kl), 4)  # constant u = 2 for time 1: KL = 2
      2.0
    """
    rates = _rates(rates)
    weights = as_float_array(weights, "weights")
    if weights.shape != rates.shape:
        raise ValueError(
            f"`weights` must have the shape of `rates` {rates.shape}, got {weights.shape}."
        )
    ts_arr, dts = _time_grid(ts)
    key_init, key_path = jax.random.split(key)
    z0 = initial_posterior.sample(seed=key_init)
    if jnp.ndim(z0) != 1:
        raise ValueError(f"`initial_posterior` must sample [d] latents, got shape {jnp.shape(z0)}.")
    initial_kl = initial_posterior.kl_divergence(initial_prior)
    dtype = jnp.result_type(z0, ts_arr, rates)
    eps = _standard_noise(
        None if noise is not None else key_path, noise, (dts.shape[0], z0.shape[0]), dtype
    )

    def step(state, t, dt, dw):
        z, y = state
        u = control(z, y, t)
        dy = (u - rates[:, None] * y) * dt + dw
        dz = drift(z, t) * dt + jnp.asarray(diffusion(z, t), dtype) * (weights @ dy)
        return (z + dz, y + dy), 0.5 * jnp.sum(u**2) * dt

    state0 = (z0.astype(dtype), jnp.zeros((rates.shape[0], z0.shape[0]), dtype))
    (path, _), kl = _euler_maruyama(step, state0, ts_arr, dts, eps)
    log_lik = _observation_log_likelihood(x, path, ts_arr, observed_at, emission)
    return SDEELBO(log_lik - initial_kl - kl, log_lik, kl, initial_kl, path)
