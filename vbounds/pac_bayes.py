"""PAC-Bayes generalisation bounds for losses in ``[0, 1]``.

A posterior ``rho`` over hypotheses, a prior ``pi`` fixed before seeing the ``n`` training
examples, the empirical risk ``emp_risk = E_rho[mean_i loss_i]`` and ``kl = KL(rho || pi)``.
Each bound holds with probability at least ``1 - delta`` over the sample, simultaneously for
every ``rho``, and bounds the expected risk ``E_rho[E loss]`` of the stochastic (Gibbs)
predictor from above. Every function is elementwise over broadcast arrays, jittable, and
differentiable in ``emp_risk`` and ``kl`` (so a bound can be a training loss).

The tightest for a fixed sample is :func:`maurer`, which inverts the binary KL
(:func:`kl_inverse`); :func:`mcallester` and :func:`quadratic` are its relaxations by
Pinsker's inequality and its refinement, :func:`catoni` and
:func:`sub_gamma` are linear in the empirical risk for a ``lam`` fixed in advance.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from vbounds._validation import as_float_array, check_int, require

__all__ = [
    "binary_kl",
    "kl_inverse",
    "mcallester",
    "maurer",
    "quadratic",
    "catoni",
    "sub_gamma",
    "selective_risk",
]


def _probabilities(x: jax.typing.ArrayLike, name: str) -> jax.Array:
    arr = as_float_array(x, name)
    require(
        lambda v: (v >= 0.0) & (v <= 1.0), arr, message=f"`{name}` must lie in [0, 1] (no NaN)."
    )
    return arr


def _nonnegative(x: jax.typing.ArrayLike, name: str) -> jax.Array:
    arr = as_float_array(x, name)
    require(lambda v: v >= 0.0, arr, message=f"`{name}` must be >= 0 (no NaN).")
    return arr


def _confidence(delta: jax.typing.ArrayLike, name: str = "delta") -> jax.Array:
    arr = as_float_array(delta, name)
    require(lambda v: (v > 0.0) & (v < 1.0), arr, message=f"`{name}` must lie in (0, 1).")
    return arr


def _x_minus_log1p(x: jax.Array) -> jax.Array:
    """``x - log(1 + x) >= 0`` for ``x > -1``, accurate to a few ulps also for tiny ``x``.

    The direct form cancels to a relative error ``~2 eps / |x|``; the series
    ``x^2/2 - x^3/3 + x^4/4 - x^5/5`` has relative error ``~x^4 / 3``. They cross at
    ``|x| = (6 eps)^(1/5)``: 0.06 in float32, 1e-3 in float64.
    """
    eps = jnp.finfo(x.dtype).eps
    small = jnp.abs(x) < (6.0 * eps) ** 0.2
    xs = jnp.where(small, x, 0.0)
    series = xs * xs * (0.5 - xs * (1.0 / 3.0 - xs * (0.25 - xs * 0.2)))
    xd = jnp.where(small, 1.0, x)
    return jnp.where(small, series, xd - jnp.log1p(xd))


def _binary_kl(q: jax.Array, p: jax.Array) -> jax.Array:
    # kl = q f(d / q) + (1 - q) f(-d / (1 - q)) with f(x) = x - log1p(x) and d = p - q: both
    # terms are >= 0, so nothing cancels when p is close to q (the plain
    # q log(q/p) + (1-q) log((1-q)/(1-p)) loses every digit there in float32).
    d = p - q
    q_pos = q > 0.0
    q_lt1 = q < 1.0
    safe_q = jnp.where(q_pos, q, 1.0)
    safe_r = jnp.where(q_lt1, 1.0 - q, 1.0)
    first = jnp.where(q_pos, safe_q * _x_minus_log1p(d / safe_q), d)
    arg = jnp.where(q_lt1, -d / safe_r, 0.0)
    # p = 1 > q: log1p(-1) = -inf, kl = +inf as it should be.
    second = jnp.where(q_lt1, safe_r * _x_minus_log1p(jnp.maximum(arg, -1.0)), -d)
    return first + second


def binary_kl(q: jax.typing.ArrayLike, p: jax.typing.ArrayLike) -> jax.Array:
    """KL divergence between two Bernoulli distributions, elementwise.

    .. math:: \\mathrm{kl}(q \\| p) = q \\log\\frac{q}{p} + (1-q)\\log\\frac{1-q}{1-p}

    with ``0 log 0 = 0``; ``+inf`` where ``p`` is 0 or 1 and ``q`` differs from it. Accurate
    also when ``p`` is close to ``q`` (no cancellation).

    Args:
      q: first Bernoulli mean, in ``[0, 1]`` (an empirical risk).
      p: second Bernoulli mean, in ``[0, 1]`` (a true risk).

    Returns:
      ``kl(q || p) >= 0``, broadcast over ``q`` and ``p``.

    References:
      Langford & Seeger, Bounds for Averaging Classifiers, 2001.

    Examples:
      >>> round(float(vb.pac_bayes.binary_kl(0.5, 0.25)), 4)  # log(2 / sqrt 3)
      0.1438
      >>> round(float(vb.pac_bayes.binary_kl(0.0, 0.5)), 4)  # -log(1 - p)
      0.6931
    """
    q = _probabilities(q, "q")
    p = _probabilities(p, "p")
    dtype = jnp.result_type(q, p)
    return _binary_kl(q.astype(dtype), p.astype(dtype))


def _bisection_steps(dtype) -> int:
    # The bracket [q, 1] halves each step; after 2 (nmant + 1) steps it is eps^2 wide, so the
    # answer carries a relative error below eps wherever it exceeds eps.
    return 2 * (jnp.finfo(dtype).nmant + 1)


@jax.custom_jvp
def _kl_inverse(q: jax.Array, c: jax.Array) -> jax.Array:
    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        inside = _binary_kl(q, mid) <= c
        return jnp.where(inside, mid, lo), jnp.where(inside, hi, mid)

    # `hi` always has kl(q || hi) > c (or hi = 1): returning it keeps the bound conservative.
    _, hi = jax.lax.fori_loop(0, _bisection_steps(q.dtype), step, (q, jnp.ones_like(q)))
    return jnp.where(c > 0.0, hi, q)


def _kl_inverse_jvp(primals, tangents):
    q, c = primals
    dq, dc = tangents
    p = _kl_inverse(q, c)
    # Implicit function theorem on kl(q || p) = c:
    #   d kl / dp = (p - q) / (p (1 - p)),  d kl / dq = log(q (1 - p) / (p (1 - q))),
    #   dp/dc = 1 / (d kl / dp),  dp/dq = -(d kl / dq) / (d kl / dp).
    interior = (p > q) & (p < 1.0)
    safe_p = jnp.where(interior, p, 0.5)
    safe_q = jnp.where(interior, q, 0.25)
    dp_dc = safe_p * (1.0 - safe_p) / (safe_p - safe_q)
    dkl_dq = jnp.log(safe_q) - jnp.log(safe_p) + jnp.log1p(-safe_p) - jnp.log1p(-safe_q)
    # At c = 0 (p = q < 1) the limits are dp/dc = +inf and dp/dq = 1; at p = 1 the inverse
    # is pinned to the boundary and both vanish.
    at_q = (p <= q) & (p < 1.0)
    dp_dc = jnp.where(interior, dp_dc, jnp.where(at_q, jnp.inf, 0.0))
    dp_dq = jnp.where(interior, -dkl_dq * dp_dc, jnp.where(at_q, 1.0, 0.0))
    # An argument that is not differentiated contributes nothing, even where its derivative
    # is infinite (q = 0 or c = 0), instead of 0 * inf = NaN.
    tangent = jnp.zeros_like(p)
    if not isinstance(dq, SymbolicZero):
        tangent = tangent + dq * dp_dq
    if not isinstance(dc, SymbolicZero):
        tangent = tangent + dc * dp_dc
    return p, tangent


_kl_inverse.defjvp(_kl_inverse_jvp, symbolic_zeros=True)
# Compiled once per shape and dtype: called eagerly, the bisection loop would be retraced and
# recompiled on every call.
_kl_inverse_compiled = jax.jit(_kl_inverse)


def kl_inverse(q: jax.typing.ArrayLike, c: jax.typing.ArrayLike) -> jax.Array:
    """Upper inverse of the binary KL: the largest risk consistent with ``kl <= c``.

    .. math:: \\mathrm{kl}^{-1}(q, c) = \\sup\\{p \\in [q, 1] : \\mathrm{kl}(q \\| p) \\le c\\}

    Computed by bisection on ``[q, 1]`` with a fixed number of steps (48 in float32, 106 in
    float64), so it is jittable and vmappable; the result is the upper end of the final
    bracket, never below the exact value. Its derivatives come from the implicit function
    theorem on ``kl(q || p) = c``, not from the loop:
    ``dp/dc = p (1 - p) / (p - q)`` and
    ``dp/dq = -log(q (1 - p) / (p (1 - q))) p (1 - p) / (p - q)``.
    They are ``+inf`` at ``c = 0`` (``dp/dc``) and at ``q = 0`` (``dp/dq``), as the exact
    function's are, and 0 where the result is 1.

    Args:
      q: empirical risk in ``[0, 1]``.
      c: KL budget, ``>= 0`` (``+inf`` gives 1).

    Returns:
      ``p`` in ``[q, 1]``, broadcast over ``q`` and ``c``.

    References:
      Seeger, PAC-Bayesian Generalisation Error Bounds for Gaussian Process
      Classification, 2002; Reeb et al., Learning Gaussian Processes by Minimizing
      PAC-Bayesian Generalization Bounds, 2018 (the implicit gradient).

    Examples:
      >>> p = vb.pac_bayes.kl_inverse(0.1, 0.05)
      >>> round(float(p), 4)
      0.2201
      >>> round(float(vb.pac_bayes.binary_kl(0.1, p)), 4)  # the KL budget is used up
      0.05
      >>> float(vb.pac_bayes.kl_inverse(0.1, jnp.inf))
      1.0
    """
    q = _probabilities(q, "q")
    c = _nonnegative(c, "c")
    dtype = jnp.result_type(q, c)
    q, c = jnp.broadcast_arrays(q.astype(dtype), c.astype(dtype))
    return _kl_inverse_compiled(q, c)


def _complexity(kl, n: int, delta, log_n_term: bool) -> jax.Array:
    """``kl + log(2 sqrt(n) / delta)`` (Maurer's) or ``kl + log(1 / delta)``."""
    extra = math.log(2.0 * math.sqrt(n)) if log_n_term else 0.0
    return kl + extra - jnp.log(delta)


def _bound_inputs(emp_risk, kl, n, delta):
    emp_risk = _probabilities(emp_risk, "emp_risk")
    kl = _nonnegative(kl, "kl")
    n = check_int(n, "n")
    delta = _confidence(delta)
    dtype = jnp.result_type(emp_risk, kl, delta)
    return emp_risk.astype(dtype), kl.astype(dtype), n, delta.astype(dtype)


def mcallester(
    emp_risk: jax.typing.ArrayLike,
    kl: jax.typing.ArrayLike,
    n: int,
    delta: jax.typing.ArrayLike,
) -> jax.Array:
    """McAllester's PAC-Bayes bound (Maurer's constant), an upper bound on the risk.

    .. math:: R \\le \\hat R + \\sqrt{\\frac{\\mathrm{KL} + \\log(2\\sqrt n/\\delta)}{2n}}

    Pinsker's inequality ``kl(q || p) >= 2 (p - q)^2`` relaxes :func:`maurer` into this, so
    it is never below :func:`maurer`. Not clipped at 1.

    Args:
      emp_risk: empirical risk ``E_rho[mean_i loss_i]`` in ``[0, 1]``.
      kl: ``KL(rho || pi) >= 0``, nats.
      n: number of training examples (a static int).
      delta: confidence, in ``(0, 1)``.

    Returns:
      The bound, broadcast over the array arguments.

    References:
      McAllester, PAC-Bayesian Model Averaging, 1999; Maurer, A Note on the PAC Bayesian
      Theorem, 2004.

    Examples:
      >>> round(float(vb.pac_bayes.mcallester(0.1, 5.0, 1000, 0.05)), 4)
      0.1779
    """
    emp_risk, kl, n, delta = _bound_inputs(emp_risk, kl, n, delta)
    return emp_risk + jnp.sqrt(_complexity(kl, n, delta, True) / (2.0 * n))


def maurer(
    emp_risk: jax.typing.ArrayLike,
    kl: jax.typing.ArrayLike,
    n: int,
    delta: jax.typing.ArrayLike,
) -> jax.Array:
    """The PAC-Bayes-kl bound (Seeger, Maurer): an upper bound on the risk.

    .. math:: R \\le \\mathrm{kl}^{-1}\\Big(\\hat R,
        \\frac{\\mathrm{KL} + \\log(2\\sqrt n/\\delta)}{n}\\Big)

    The tightest of the classical bounds; differentiable through :func:`kl_inverse`.

    Args:
      emp_risk: empirical risk in ``[0, 1]``.
      kl: ``KL(rho || pi) >= 0``, nats.
      n: number of training examples (a static int).
      delta: confidence, in ``(0, 1)``.

    Returns:
      The bound in ``[emp_risk, 1]``.

    References:
      Seeger, PAC-Bayesian Generalisation Error Bounds for Gaussian Process
      Classification, 2002; Maurer, A Note on the PAC Bayesian Theorem, 2004.

    Examples:
      >>> round(float(vb.pac_bayes.maurer(0.1, 5.0, 1000, 0.05)), 4)  # below McAllester's
      0.1531
    """
    emp_risk, kl, n, delta = _bound_inputs(emp_risk, kl, n, delta)
    return kl_inverse(emp_risk, _complexity(kl, n, delta, True) / n)


def quadratic(
    emp_risk: jax.typing.ArrayLike,
    kl: jax.typing.ArrayLike,
    n: int,
    delta: jax.typing.ArrayLike,
) -> jax.Array:
    """The PAC-Bayes-quadratic bound ("f-quad"), an upper bound on the risk.

    .. math:: R \\le \\Big(\\sqrt{\\hat R + \\epsilon/2} + \\sqrt{\\epsilon/2}\\Big)^2,
        \\qquad \\epsilon = \\frac{\\mathrm{KL} + \\log(2\\sqrt n/\\delta)}{n}

    The refined Pinsker inequality ``kl(q || p) >= (p - q)^2 / (2p)`` (``p >= q``) relaxes
    :func:`maurer` into this, so it is never below :func:`maurer`; it is closed-form and,
    for small empirical risks, much tighter than :func:`mcallester`. A common training
    objective for stochastic networks.

    Args:
      emp_risk: empirical risk in ``[0, 1]``.
      kl: ``KL(rho || pi) >= 0``, nats.
      n: number of training examples (a static int).
      delta: confidence, in ``(0, 1)``.

    Returns:
      The bound (not clipped at 1).

    References:
      Rivasplata, Tankov, Kuzborskij & Szepesvari, PAC-Bayes Analysis Beyond the Usual
      Bounds, 2020; Perez-Ortiz, Rivasplata, Shawe-Taylor & Szepesvari, Tighter Risk
      Certificates for Neural Networks, 2021.

    Examples:
      >>> round(float(vb.pac_bayes.quadratic(0.1, 5.0, 1000, 0.05)), 4)  # Maurer 0.1531
      0.1629
    """
    emp_risk, kl, n, delta = _bound_inputs(emp_risk, kl, n, delta)
    half = 0.5 * _complexity(kl, n, delta, True) / n
    return jnp.square(jnp.sqrt(emp_risk + half) + jnp.sqrt(half))


def catoni(
    emp_risk: jax.typing.ArrayLike,
    kl: jax.typing.ArrayLike,
    n: int,
    delta: jax.typing.ArrayLike,
    lam: jax.typing.ArrayLike,
) -> jax.Array:
    """Catoni's PAC-Bayes bound for a ``lam > 0`` fixed in advance: an upper bound on the risk.

    .. math:: R \\le \\frac{1 - \\exp(-\\lambda \\hat R - (\\mathrm{KL} + \\log(1/\\delta))/n)}
        {1 - e^{-\\lambda}}

    Below 1 always; ``lam`` trades the empirical risk against the complexity term.
    ``lam`` must not depend on the sample (a grid of
    values needs a union bound: divide ``delta`` by its size).

    Args:
      emp_risk: empirical risk in ``[0, 1]``.
      kl: ``KL(rho || pi) >= 0``, nats.
      n: number of training examples (a static int).
      delta: confidence, in ``(0, 1)``.
      lam: the trade-off ``lambda > 0``.

    Returns:
      The bound in ``(0, 1)``.

    References:
      Catoni, PAC-Bayesian Supervised Classification: The Thermodynamics of Statistical
      Learning, 2007 (Theorem 1.2.6).

    Examples:
      >>> round(float(vb.pac_bayes.catoni(0.1, 5.0, 1000, 0.05, 2.0)), 4)
      0.2172
    """
    emp_risk, kl, n, delta = _bound_inputs(emp_risk, kl, n, delta)
    lam = as_float_array(lam, "lam")
    require(lambda v: v > 0.0, lam, message="`lam` must be > 0.")
    exponent = -lam * emp_risk - _complexity(kl, n, delta, False) / n
    return jnp.expm1(exponent) / jnp.expm1(-lam)


def sub_gamma(
    emp_risk: jax.typing.ArrayLike,
    kl: jax.typing.ArrayLike,
    n: int,
    delta: jax.typing.ArrayLike,
    lam: jax.typing.ArrayLike,
    *,
    variance: jax.typing.ArrayLike,
    scale: jax.typing.ArrayLike = 0.0,
) -> jax.Array:
    """PAC-Bayes bound for sub-gamma losses (Bernstein and Hoeffding as special cases).

    If each loss is sub-gamma with variance factor ``s^2 = variance`` and scale ``c =
    scale``, i.e. ``log E exp(t (R - loss)) <= t^2 s^2 / (2 (1 - c t))`` for
    ``0 < t < 1/c``, then for a ``lam`` in ``(0, n / c)`` fixed in advance

    .. math:: R \\le \\hat R + \\frac{\\mathrm{KL} + \\log(1/\\delta)}{\\lambda}
        + \\frac{\\lambda s^2}{2 n (1 - c \\lambda / n)}

    (Donsker-Varadhan's change of measure applied to ``lam (R - R_hat)``, whose log moment
    generating function is at most ``n`` times the per-example one at ``t = lam / n``).
    Losses in ``[0, 1]`` are sub-Gaussian with ``variance = 1/4, scale = 0`` (Hoeffding's
    lemma), and, if their variance is at most ``sigma^2``, sub-gamma with
    ``variance = sigma^2, scale = 1/3`` (Bernstein's inequality, as ``R - loss <= 1``).
    ``variance`` must be known a priori, not estimated from the same sample. ``lam = n``
    is the form of Germain et al. (2016).

    Args:
      emp_risk: empirical risk (any real loss; ``[0, 1]`` for the two special cases).
      kl: ``KL(rho || pi) >= 0``, nats.
      n: number of training examples (a static int).
      delta: confidence, in ``(0, 1)``.
      lam: ``lambda`` in ``(0, n / scale)``.
      variance: the variance factor ``s^2 >= 0``.
      scale: the scale ``c >= 0`` (0: sub-Gaussian).

    Returns:
      The bound (not clipped).

    References:
      Germain, Bach, Lacoste & Lacoste-Julien, PAC-Bayesian Theory Meets Bayesian
      Inference, 2016; Boucheron, Lugosi & Massart, Concentration Inequalities, 2013
      (sub-gamma variables, Bernstein's inequality).

    Examples:
      >>> round(float(vb.pac_bayes.sub_gamma(0.1, 5.0, 1000, 0.05, 100.0,
      ...                                     variance=0.09, scale=1 / 3)), 4)
      0.1846
    """
    emp_risk = as_float_array(emp_risk, "emp_risk")
    kl = _nonnegative(kl, "kl")
    n = check_int(n, "n")
    delta = _confidence(delta)
    lam = as_float_array(lam, "lam")
    variance = _nonnegative(variance, "variance")
    scale = _nonnegative(scale, "scale")
    require(
        lambda v, c: (v > 0.0) & (c * v < n),
        lam,
        scale,
        message="`lam` must lie in (0, n / scale).",
    )
    complexity = _complexity(kl, n, delta, False)
    return emp_risk + complexity / lam + lam * variance / (2.0 * n * (1.0 - scale * lam / n))


def selective_risk(
    emp_selective_risk: jax.typing.ArrayLike,
    emp_coverage: jax.typing.ArrayLike,
    kl: jax.typing.ArrayLike,
    n: int,
    delta: jax.typing.ArrayLike,
    *,
    risk_share: float = 0.5,
) -> jax.Array:
    """Upper bound on the selective risk (the error rate on the accepted inputs).

    A selective classifier answers or abstains; its selective risk is
    ``P(error and accept) / P(accept)``, the ratio of a joint risk and the coverage. Both
    are risks of ``[0, 1]`` losses under ``rho``, so :func:`maurer` bounds the joint risk from
    above (confidence ``risk_share * delta``) and the abstention rate from above, i.e. the
    coverage from below (confidence ``(1 - risk_share) * delta``); a union bound gives

    .. math:: R_{sel} \\le \\frac{\\mathrm{kl}^{-1}(\\hat R_{sel} \\hat c,\\ \\epsilon_1)}
        {1 - \\mathrm{kl}^{-1}(1 - \\hat c,\\ \\epsilon_2)},\\quad
        \\epsilon_i = \\frac{\\mathrm{KL} + \\log(2\\sqrt n / \\delta_i)}{n}

    with probability at least ``1 - delta``, clipped to 1 (also where the coverage bound
    reaches 0).

    Args:
      emp_selective_risk: error rate on the accepted training inputs, in ``[0, 1]``.
      emp_coverage: fraction of training inputs accepted, in ``[0, 1]``.
      kl: ``KL(rho || pi) >= 0``, nats (shared by both bounds).
      n: number of training examples, accepted or not (a static int).
      delta: total confidence, in ``(0, 1)``.
      risk_share: the fraction of ``delta`` spent on the joint risk, in ``(0, 1)``.

    Returns:
      The bound in ``[0, 1]``.

    References:
      El-Yaniv & Wiener, On the Foundations of Noise-free Selective Classification, 2010
      (selective risk and coverage); Geifman & El-Yaniv, Selective Classification for Deep
      Neural Networks, 2017 (certified risk at a coverage); Maurer, A Note on the PAC
      Bayesian Theorem, 2004.

    Examples:
      >>> round(float(vb.pac_bayes.selective_risk(0.02, 0.8, 5.0, 1000, 0.05)), 4)
      0.0614
    """
    emp_selective_risk = _probabilities(emp_selective_risk, "emp_selective_risk")
    emp_coverage = _probabilities(emp_coverage, "emp_coverage")
    if not 0.0 < float(risk_share) < 1.0:
        raise ValueError(f"`risk_share` must lie in (0, 1), got {risk_share}.")
    delta = _confidence(delta)
    joint = maurer(emp_selective_risk * emp_coverage, kl, n, risk_share * delta)
    abstain = maurer(1.0 - emp_coverage, kl, n, (1.0 - risk_share) * delta)
    coverage = 1.0 - abstain
    safe = jnp.where(coverage > 0.0, coverage, 1.0)
    return jnp.where(coverage > 0.0, jnp.minimum(joint / safe, 1.0), 1.0)
