"""Lower bounds on ``log p(x)`` from importance log-weights.

Every function takes log-weights ``log_w[k] = log p(x, z_k) - log q(z_k | x)`` for
``z_k ~ q`` with the sample axis ``axis`` (0 by default; ``vod``: -1, the retrieval layout
``[B, K]``), reduces over that axis only
and keeps every other axis (per-example values). All are computed in log space and
stay finite in float32 for log-weights of magnitude 1e4 and K up to 1e5.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vbounds._validation import (
    as_float_array,
    check_finite_if_concrete,
    check_int,
    check_nonempty,
    concrete_float,
    normalize_axis,
)

__all__ = ["elbo", "iwae", "renyi", "vr_max", "vod", "weighted_elbo", "kl_divergence"]


def _log_weights(log_w: jax.typing.ArrayLike, axis: int, name: str = "log_w"):
    arr = as_float_array(log_w, name, min_ndim=1)
    ax = normalize_axis(axis, arr.ndim)
    check_nonempty(arr, ax, name)
    check_finite_if_concrete(arr, name)
    return arr, ax


def elbo(log_w: jax.typing.ArrayLike, axis: int = 0) -> jax.Array:
    """Evidence lower bound: the mean log-weight.

    .. math:: \\mathcal{L} = \\frac{1}{K} \\sum_k \\log w_k

    Args:
      log_w: log importance weights, sample axis ``axis``.
      axis: the sample axis.

    Returns:
      The bound with ``axis`` reduced.

    References:
      Kingma & Welling, Auto-Encoding Variational Bayes, 2014.

    Examples:
      >>> log_w = jnp.array([0.0, 2.0])  # K = 2 log-weights
      >>> round(float(vb.elbo(log_w)), 4)
      1.0
      >>> vb.elbo(jnp.zeros((2, 3))).shape  # [K, B] -> one value per example
      (3,)
    """
    arr, ax = _log_weights(log_w, axis)
    return jnp.mean(arr, axis=ax)


def iwae(log_w: jax.typing.ArrayLike, axis: int = 0) -> jax.Array:
    """Importance-weighted bound: the log of the mean weight.

    .. math:: \\mathcal{L}_K = \\log \\frac{1}{K} \\sum_k w_k

    Args:
      log_w: log importance weights, sample axis ``axis``.
      axis: the sample axis.

    Returns:
      The bound with ``axis`` reduced.

    References:
      Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, 2016.

    Examples:
      >>> log_w = jnp.log(jnp.array([1.0, 3.0]))  # weights 1 and 3
      >>> round(float(vb.iwae(log_w)), 4)  # log of their mean, log 2
      0.6931
      >>> round(float(vb.elbo(log_w)), 4)  # below it: the mean of the logs, log(3) / 2
      0.5493
    """
    arr, ax = _log_weights(log_w, axis)
    return jax.nn.logsumexp(arr, axis=ax) - math.log(arr.shape[ax])


def vr_max(log_w: jax.typing.ArrayLike, axis: int = 0) -> jax.Array:
    """The VR-max objective: the largest log-weight (Renyi's alpha -> -inf limit).

    Not a lower bound in general (it is an upper bound on the K-sample IWAE value).

    Args:
      log_w: log importance weights, sample axis ``axis``.
      axis: the sample axis.

    Returns:
      ``max_k log w_k`` with ``axis`` reduced.

    References:
      Li & Turner, Renyi Divergence Variational Inference, 2016.

    Examples:
      >>> float(vb.vr_max(jnp.array([0.0, 2.0, -1.0])))
      2.0
    """
    arr, ax = _log_weights(log_w, axis)
    return jnp.max(arr, axis=ax)


def renyi(log_w: jax.typing.ArrayLike, alpha: float | jax.Array, axis: int = 0) -> jax.Array:
    """Variational Renyi bound of order ``alpha`` (Monte Carlo form).

    .. math:: \\mathcal{L}_\\alpha = \\frac{1}{1-\\alpha}
        \\log \\frac{1}{K} \\sum_k w_k^{1-\\alpha}

    ``alpha = 1`` is :func:`elbo` (the limit), ``alpha = 0`` is :func:`iwae`,
    ``alpha = -inf`` is :func:`vr_max`. The value is non-increasing in ``alpha`` and
    continuous at ``alpha = 1``: near it a cumulant series in ``1 - alpha`` replaces the
    direct form, whose float32 rounding error grows like ``1e-7 / |1 - alpha|``.
    A traced ``alpha`` is supported; ``alpha == 1`` and ``alpha == -inf`` then select the
    ELBO and VR-max branches (a traced NaN or ``+inf`` gives NaN).

    Args:
      log_w: log importance weights, sample axis ``axis``.
      alpha: the Renyi order (a float, or a scalar array).
      axis: the sample axis.

    Returns:
      The bound with ``axis`` reduced.

    References:
      Li & Turner, Renyi Divergence Variational Inference, 2016.

    Examples:
      >>> log_w = jnp.log(jnp.array([1.0, 3.0]))
      >>> round(float(vb.renyi(log_w, alpha=0.5)), 4)  # 2 log((1 + sqrt 3) / 2)
      0.6238
      >>> [round(float(vb.renyi(log_w, alpha=a)), 4) for a in (0.0, 1.0, -jnp.inf)]
      [0.6931, 0.5493, 1.0986]
    """
    arr, ax = _log_weights(log_w, axis)
    if jnp.ndim(alpha) != 0:
        raise ValueError(f"`alpha` must be a scalar, got shape {jnp.shape(alpha)}.")
    a = concrete_float(alpha, "alpha")
    if a is not None:
        if math.isnan(a) or a == math.inf:
            raise ValueError(f"`alpha` must be a finite number or -inf, got {a}.")
        if a == 1.0:
            return jnp.mean(arr, axis=ax)
        if a == -math.inf:
            return jnp.max(arr, axis=ax)
        return _power_mean(arr, 1.0 - a, ax)
    alpha = jnp.asarray(alpha, arr.dtype)
    one_minus = 1.0 - alpha
    is_one = one_minus == 0.0
    is_max = alpha == -jnp.inf
    # The general branch must stay finite at the two limits, or `where` would pass NaN
    # into the gradient; it is evaluated at a harmless order there and discarded.
    safe = jnp.where(is_one | is_max, 1.0, one_minus)
    general = _power_mean(arr, safe, ax)
    return jnp.where(
        is_one,
        _elbo_with_slope(arr, one_minus, ax),
        jnp.where(is_max, jnp.max(arr, axis=ax), general),
    )


def _elbo_with_slope(arr: jax.Array, one_minus_alpha, ax: int) -> jax.Array:
    """The ELBO plus ``(1 - alpha) var / 2``: equal to it at ``alpha = 1``, with the slope
    ``d L_alpha / d alpha = -var / 2`` that the Renyi bound has there."""
    top = _finite_max(arr, ax)
    # -inf log-weights (zero weights) make the ELBO -inf; mask them out of the slope so that
    # it, and its gradient, stay finite.
    centred = jnp.where(jnp.isfinite(arr), arr - top, 0.0)
    return jnp.mean(arr, axis=ax) + one_minus_alpha * 0.5 * jnp.var(centred, axis=ax)


def _finite_max(arr: jax.Array, ax: int) -> jax.Array:
    """``max`` over ``ax`` (kept), 0 where it is not finite; a constant for autodiff."""
    top = jax.lax.stop_gradient(jnp.max(arr, axis=ax, keepdims=True))
    return jnp.where(jnp.isfinite(top), top, 0.0)


# |c| (max v - min v) below which `_power_mean` uses its cumulant series. The series of
# log E exp(c d) converges for |c| (max d - min d) < pi; at 0.1 the first omitted term is
# below 1e-8 of the spread, and outside it the direct form's derivative in c (error
# ~1e-7 spread / |c|) is accurate to 1e-6 of the spread squared.
_SERIES_RADIUS = 0.1


def _power_mean(values: jax.Array, c, ax: int, log_s: jax.Array | None = None) -> jax.Array:
    """``(1/c) log sum_k s_k exp(c v_k)`` for ``c != 0`` (``s`` uniform when ``log_s`` is None).

    The plain form loses everything near ``c = 0``: ``log sum exp`` carries an absolute
    rounding error of ~1e-7 in float32, which the division by ``c`` turns into an error of
    ``1e-7 / |c|`` (0.3 nats at ``c = 1e-7``). Two forms replace it.

    Direct: with ``z_k = c (v_k - max v) - max_j(...) <= 0``, where ``sum_k s_k exp(z_k)`` is
    near 1 (all ``|z_k|`` small) the log is taken as ``log1p(sum_k s_k expm1(z_k))``, whose
    terms share a sign and keep their relative accuracy; the value is then accurate to ~1e-7
    of the spread of ``v``. Elsewhere ``sum_k s_k exp(z_k) < 0.61``, which needs
    ``|c| (max v - min v) > 0.5``, and the plain log is accurate to 1e-7 / |c| < 2e-7 times
    the spread.

    Series, for ``|c| (max v - min v) <= 0.1`` and finite ``v``: the value is
    ``mean + c k2/2 + c^2 k3/6 + c^3 k4/24 + c^4 k5/120`` in the ``s``-weighted cumulants
    ``k_n`` of ``v``. Same value as the direct form to float32 rounding, but its derivative
    in ``c`` (a traced ``alpha``) is exact, where the direct form's cancels ``1/c`` terms.
    """
    top = _finite_max(values, ax)
    if log_s is None:
        log_s = jnp.full_like(values, -math.log(values.shape[ax]))
    weights = jnp.exp(log_s)

    scaled = c * (values - top)
    shift = _finite_max(scaled, ax)
    z = scaled - shift
    log_mean = jax.nn.logsumexp(log_s + z, axis=ax)
    near_one = log_mean > -0.5
    # Double `where`: the unused log1p argument can reach -1 (gradient -inf times 0 = NaN).
    excess = jnp.where(near_one, jnp.sum(weights * jnp.expm1(z), axis=ax), 0.0)
    log_mean = jnp.where(near_one, jnp.log1p(excess), log_mean)
    direct = jnp.squeeze(top, ax) + (jnp.squeeze(shift, ax) + log_mean) / c

    finite = jnp.isfinite(values)
    # -inf entries (zero weights) are masked so that the unused series stays finite.
    v = jnp.where(finite, values - top, 0.0)
    spread = jnp.max(v, axis=ax) - jnp.min(v, axis=ax)
    mean = jnp.sum(weights * v, axis=ax, keepdims=True)
    d = v - mean
    m2, m3, m4, m5 = (jnp.sum(weights * d**n, axis=ax) for n in (2, 3, 4, 5))
    k4 = m4 - 3.0 * m2**2
    k5 = m5 - 10.0 * m3 * m2
    series = jnp.squeeze(top + mean, ax) + c * (
        m2 / 2.0 + c * (m3 / 6.0 + c * (k4 / 24.0 + c * k5 / 120.0))
    )
    use_series = jnp.all(finite, axis=ax) & (jnp.abs(c) * spread <= _SERIES_RADIUS)
    return jnp.where(use_series, series, direct)


def vod(
    log_likelihood: jax.typing.ArrayLike,
    log_prior: jax.typing.ArrayLike,
    log_q: jax.typing.ArrayLike,
    alpha: float = 0.0,
    log_s: jax.typing.ArrayLike | None = None,
    axis: int = -1,
) -> jax.Array:
    """VOD: the self-normalised importance-weighted Renyi bound.

    With ``zeta_i = p(z_i) / q(z_i)`` (unnormalised allowed), ``s = softmax(log_s)``
    and ``v_i = p(x | z_i) zeta_i / sum_j s_j zeta_j``:

    .. math:: \\mathcal{L}^{VOD}_\\alpha = \\frac{1}{1-\\alpha}
        \\log \\sum_i s_i v_i^{1-\\alpha}

    ``alpha = 1`` is the limit ``sum_i s_i log v_i``. Invariant to constants added
    to ``log_prior``, ``log_q`` or ``log_s``; with ``q = p(z)`` and uniform ``s`` it is
    :func:`renyi` of ``log_likelihood``.

    Args:
      log_likelihood: ``log p(x | z_i)``, sample axis ``axis``.
      log_prior: ``log p(z_i)`` up to a constant, same shape.
      log_q: ``log q(z_i)`` of the sampling distribution up to a constant, same shape.
      alpha: Renyi order.
      log_s: optional log self-normalisation weights (e.g. the retriever scores of
        a cached top-K set), same shape; uniform when ``None``.
      axis: the sample axis (the K retrieved documents), **last** (``-1``) by default,
        unlike every other bound in ``vb`` (sample axis 0). VOD's inputs come from
        retrieval, where a batch of questions is scored against its top-K documents as a
        ``[B, K]`` array with the documents last; the default follows that layout. Pass
        ``axis=0`` for ``[K, ...]`` log-weights.

    Returns:
      The bound with ``axis`` reduced.

    References:
      Lievin, Motzfeldt, Havtorn, Winther, Maaloe, Variational Open-Domain
      Question Answering, 2023.

    Examples:
      >>> ll = jnp.array([[0.0, -1.0, -2.0]])  # [B = 1 question, K = 3 documents]: samples last
      >>> zeros = jnp.zeros_like(ll)  # q = p and uniform s: VOD is the Renyi bound of ll
      >>> value = vb.vod(ll, zeros, zeros, alpha=0.0)
      >>> value.shape, round(float(value[0]), 4)
      ((1,), -0.691)
      >>> round(float(vb.iwae(ll, axis=-1)[0]), 4)
      -0.691
    """
    ll = as_float_array(log_likelihood, "log_likelihood", min_ndim=1)
    ax = normalize_axis(axis, ll.ndim)
    arrays = {"log_prior": log_prior, "log_q": log_q}
    if log_s is not None:
        arrays["log_s"] = log_s
    converted = {}
    for name, value in arrays.items():
        arr = as_float_array(value, name, min_ndim=1)
        if arr.shape != ll.shape:
            raise ValueError(
                f"`{name}` must have the shape of `log_likelihood` {ll.shape}, got {arr.shape}."
            )
        converted[name] = arr
    check_nonempty(ll, ax, "log_likelihood")
    check_finite_if_concrete(ll, "log_likelihood")
    k = ll.shape[ax]
    if log_s is None:
        log_s_norm = jnp.full_like(ll, -math.log(k))
    else:
        log_s_norm = jax.nn.log_softmax(converted["log_s"], axis=ax)
    log_zeta = converted["log_prior"] - converted["log_q"]
    log_norm = jax.nn.logsumexp(log_s_norm + log_zeta, axis=ax, keepdims=True)
    log_v = ll + log_zeta - log_norm
    a = concrete_float(alpha, "alpha")
    if a is None:
        raise TypeError("`alpha` of `vod` must be a concrete float (a hyperparameter).")
    if not math.isfinite(a):
        raise ValueError(f"`alpha` of `vod` must be a finite number, got {a}.")
    if a == 1.0:
        return jnp.sum(jnp.exp(log_s_norm) * log_v, axis=ax)
    return _power_mean(log_v, 1.0 - a, ax, log_s_norm)


def weighted_elbo(
    log_likelihood: jax.typing.ArrayLike,
    kl: jax.typing.ArrayLike,
    *,
    beta: float | jax.Array = 1.0,
    likelihood_weight: float | jax.Array = 1.0,
    capacity: float | jax.Array | None = None,
) -> jax.Array:
    """ELBO with weights on its terms (beta-VAE, data-emphasised, capacity forms).

    .. math:: \\lambda \\, \\mathbb{E}_q \\log p(x|z) - \\beta \\, \\mathrm{KL}
    .. math:: \\lambda \\, \\mathbb{E}_q \\log p(x|z) - \\beta \\, |\\mathrm{KL} - C|
        \\quad (\\text{capacity } C)

    ``beta = likelihood_weight = 1`` is the ELBO. ``beta > 1`` is the beta-VAE;
    ``likelihood_weight > 1`` the data-emphasised ELBO (Data-Emphasized Variational
    Objective) and AutoGen's prefactor on the reconstruction term; ``capacity`` the
    capacity-constrained form (Burgess et al. 2018; Capacitron). Only the plain
    ELBO is a bound on ``log p(x)``.

    Args:
      log_likelihood: per-example expected log-likelihood ``E_q log p(x|z)``.
      kl: per-example ``KL(q(z|x) || p(z))`` (analytic or Monte Carlo), broadcastable.
      beta: weight on the KL term (non-negative).
      likelihood_weight: weight on the likelihood term (non-negative).
      capacity: optional KL target in nats (non-negative).

    Returns:
      The weighted objective, per example (to be maximised).

    References:
      Higgins et al., beta-VAE, 2017; Burgess et al., Understanding disentangling in
      beta-VAE, 2018; Battaglia et al., Effective Use of Variational Embedding
      Capacity in Expressive End-to-End Speech Synthesis, 2019.

    Examples:
      >>> float(vb.weighted_elbo(-3.0, 1.5))  # the ELBO, log-likelihood minus KL
      -4.5
      >>> float(vb.weighted_elbo(-3.0, 1.5, beta=2.0))  # beta-VAE
      -6.0
      >>> float(vb.weighted_elbo(-3.0, 1.5, capacity=0.5))  # -3 - |1.5 - 0.5|
      -4.0
    """
    ll = as_float_array(log_likelihood, "log_likelihood")
    kl = as_float_array(kl, "kl")
    try:
        jnp.broadcast_shapes(ll.shape, kl.shape)
    except ValueError as err:
        raise ValueError(
            f"`kl` shape {kl.shape} does not broadcast with `log_likelihood` {ll.shape}."
        ) from err
    for name, value in (("beta", beta), ("likelihood_weight", likelihood_weight)):
        v = concrete_float(value, name) if jnp.ndim(value) == 0 else None
        if v is not None and (math.isnan(v) or v < 0):
            raise ValueError(f"`{name}` must be non-negative, got {v}.")
    if capacity is None:
        return likelihood_weight * ll - beta * kl
    c = concrete_float(capacity, "capacity") if jnp.ndim(capacity) == 0 else None
    if c is not None and (math.isnan(c) or c < 0):
        raise ValueError(f"`capacity` must be non-negative, got {c}.")
    return likelihood_weight * ll - beta * jnp.abs(kl - capacity)


def kl_divergence(q, p, *, key: jax.Array | None = None, num_samples: int = 1) -> jax.Array:
    """``KL(q || p)``: distrax's closed form where it has one, Monte Carlo otherwise.

    The Monte Carlo estimate ``mean_k [log q(z_k) - log p(z_k)]`` with reparameterised
    ``z_k ~ q`` is unbiased; it needs ``key``.

    Args:
      q: a distrax (or TFP-on-JAX) distribution.
      p: the reference distribution, same event shape.
      key: PRNG key for the Monte Carlo fallback.
      num_samples: number of Monte Carlo samples for the fallback.

    Returns:
      The divergence, with q's batch shape.

    Examples:
      >>> q, p = distrax.Normal(0.0, 1.0), distrax.Normal(1.0, 1.0)
      >>> round(float(vb.kl_divergence(q, p)), 4)  # closed form: (0 - 1)^2 / 2
      0.5
      >>> kl = vb.kl_divergence(q, distrax.Laplace(0.0, 1.0), key=jax.random.key(0), num_samples=8)
      >>> kl.shape  # no closed form: a Monte Carlo estimate from 8 samples
      ()
    """
    try:
        return q.kl_divergence(p)
    except (NotImplementedError, AttributeError, TypeError):
        pass
    if key is None:
        raise ValueError(
            f"No closed-form KL between {type(q).__name__} and {type(p).__name__}: "
            "pass `key` (and `num_samples`) for the Monte Carlo estimate."
        )
    num_samples = check_int(num_samples, "num_samples")
    z, log_q = q.sample_and_log_prob(seed=key, sample_shape=(num_samples,))
    return jnp.mean(log_q - p.log_prob(z), axis=0)
