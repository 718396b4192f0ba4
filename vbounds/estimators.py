"""Gradient estimators for importance-weighted bounds.

One entry point, :func:`estimate`, draws ``K`` samples from ``q`` for one example and
returns the bound's value and a *surrogate*: a scalar equal to the value whose
gradient, with respect to the variational parameters and to anything ``log_joint``
closes over, is the chosen estimator of the bound's gradient. ``jax.vmap`` it over a
batch, average the surrogates and differentiate.

Every estimator gives the model parameters (those ``log_joint`` closes over) the same
gradient on the same draw, ``sum_k wbar_k grad log p(x, z_k)`` with the bound's
normalised weights; they differ only in the gradient for ``q``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbounds import bounds as _bounds
from vbounds._validation import check_int, concrete_float

__all__ = ["Estimate", "estimate", "rws_wake_phi", "ESTIMATE_BOUNDS", "GRADIENT_ESTIMATORS"]

# The values of `estimate`'s `bound` and `estimator` arguments.
ESTIMATE_BOUNDS = ("elbo", "iwae", "renyi", "vr_max")
GRADIENT_ESTIMATORS = ("reparam", "stl", "dreg", "score", "vimco")


class Estimate(NamedTuple):
    """Result of :func:`estimate`.

    Attributes:
      value: the bound on this draw, gradient stopped; equals ``vb.<bound>(log_weights)``.
      surrogate: same value; its gradient is the estimator's gradient of the bound.
      log_weights: the ``[K]`` log-weights of the draw, gradient stopped.
    """

    value: jax.Array
    surrogate: jax.Array
    log_weights: jax.Array


def _check_key(key: Any) -> None:
    arr = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(arr.dtype, jax.dtypes.prng_key):
        if arr.ndim != 0:
            raise ValueError(f"`key` must be a single PRNG key, got a key array {arr.shape}.")
        return
    if arr.dtype != jnp.uint32 or arr.shape != (2,):
        raise TypeError(
            "`key` must be a PRNG key (jax.random.key or jax.random.PRNGKey), got "
            f"dtype {arr.dtype} shape {arr.shape}."
        )


def _bound_fn(bound: str, alpha: float) -> Callable[[jax.Array, int], jax.Array]:
    """Returns ``f(log_w, axis)`` for the named bound."""
    if bound == "elbo":
        return _bounds.elbo
    if bound == "iwae":
        return _bounds.iwae
    if bound == "vr_max":
        return _bounds.vr_max
    return lambda log_w, axis: _bounds.renyi(log_w, alpha, axis=axis)


def _log_prob_shape_check(name: str, value: jax.Array, k: int) -> jax.Array:
    if jnp.shape(value) != (k,):
        raise ValueError(
            f"`{name}` must return one value per sample, shape ({k},) for num_samples={k}, "
            f"got shape {jnp.shape(value)}. Write log_joint/make_q for one example and "
            "jax.vmap over the batch."
        )
    return value


def _require_reparameterised(z: Any, estimator: str) -> None:
    for leaf in jax.tree.leaves(z):
        if not jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
            raise ValueError(
                f"`estimator`={estimator!r} needs a reparameterisable q with continuous "
                f"samples, but q sampled dtype {jnp.asarray(leaf).dtype}; use 'score' or "
                "'vimco' for discrete latents."
            )


def _tree_vdot_per_sample(a: Any, b: Any) -> jax.Array:
    """Sum over all leaves and all event axes of ``a * b``: a scalar."""
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _normalised_weights(bound: str, alpha: float, log_w: jax.Array) -> jax.Array:
    """``d bound / d log_w``: the weights with which model gradients are averaged."""
    if bound == "elbo" or (bound == "renyi" and alpha == 1.0):
        return jnp.full_like(log_w, 1.0 / log_w.shape[0])
    if bound == "vr_max":
        return jax.nn.one_hot(jnp.argmax(log_w), log_w.shape[0], dtype=log_w.dtype)
    scale = 1.0 if bound == "iwae" else 1.0 - alpha
    return jax.nn.softmax(scale * log_w)


def _path_gradient_terms(
    key, log_joint, make_q, q_params, k: int, coef_fn: Callable[[jax.Array], jax.Array]
):
    """Log-weights with the score term of q removed, and a path-only surrogate for q.

    Returns ``(log_w, phi_term)``: ``log_w`` is differentiable with respect to the model
    parameters only (z and q's parameters stopped); ``phi_term`` has value zero and
    gradient ``sum_k c_k d log_w_k / d z_k  d z_k / d phi`` with ``c = coef_fn(log_w)``.
    ``log_joint`` is traced once: the z-gradient comes from the same linearisation.
    """
    q = make_q(q_params)
    z = q.sample(seed=key, sample_shape=(k,))
    _require_reparameterised(z, "dreg")
    return_z = z
    z0 = jax.lax.stop_gradient(z)
    q_stop = make_q(jax.lax.stop_gradient(q_params))

    def log_weight(zz):
        lp = _log_prob_shape_check("log_joint", log_joint(zz), k)
        return lp - _log_prob_shape_check("q.log_prob", q_stop.log_prob(zz), k)

    log_w, vjp_fn = jax.vjp(log_weight, z0)
    coef = jax.lax.stop_gradient(coef_fn(jax.lax.stop_gradient(log_w)))
    (grad_z,) = vjp_fn(coef)
    grad_z = jax.lax.stop_gradient(grad_z)
    delta_z = jax.tree.map(lambda a, b: a - b, return_z, z0)
    return log_w, _tree_vdot_per_sample(grad_z, delta_z)


def _dreg_coefficients(alpha: float) -> Callable[[jax.Array], jax.Array]:
    """Per-sample coefficient of the path gradient for the DReG Renyi estimator.

    For ``L = 1/(1-a) log mean_k w_k^(1-a)`` with ``wh = softmax((1-a) log w)``, the
    score term ``-sum_k wh_k grad log q(z_k)`` equals in expectation
    ``-(1-a) sum_k wh_k (1 - wh_k) dlog w_k/dz dz/dphi`` (reparameterisation of the
    score function), leaving the coefficient ``a wh + (1-a) wh^2``: ``wh^2`` for IWAE
    (a=0, Tucker et al.) and ``1/K`` for the ELBO (a=1, sticking the landing).
    """

    def coef(log_w):
        wh = jax.nn.softmax((1.0 - alpha) * log_w)
        return alpha * wh + (1.0 - alpha) * wh**2

    return coef


def _leave_one_out_matrix(log_w: jax.Array, replace_with_mean: bool) -> jax.Array:
    """Row k: the draw without sample k (``[K, K-1]``), or with it replaced by the mean
    of the others (``[K, K]``, VIMCO). Costs O(K^2): score estimators use small K."""
    k = log_w.shape[0]
    others_idx = np.array([[j for j in range(k) if j != i] for i in range(k)], dtype=np.int32)
    others = log_w[others_idx]
    if not replace_with_mean:
        return others
    mean_others = jnp.mean(others, axis=1)
    return jnp.where(jnp.eye(k, dtype=bool), mean_others[:, None], log_w[None, :])


def estimate(
    key: jax.Array,
    log_joint: Callable[[Any], jax.Array],
    make_q: Callable[[Any], Any],
    q_params: Any,
    *,
    num_samples: int,
    bound: str = "iwae",
    estimator: str = "reparam",
    alpha: float | None = None,
) -> Estimate:
    """Value of a sampled bound for one example and a surrogate carrying its gradient.

    Estimators of the gradient with respect to ``q_params``:

    * ``"reparam"``: differentiate through reparameterised samples.
    * ``"stl"``: sticking the landing; drops the score term of ``log q`` (zero
      variance when q is the exact posterior). Unbiased for the ELBO; for
      multi-sample bounds it is biased (Tucker et al. 2019), use ``"dreg"``.
    * ``"dreg"``: doubly reparameterised, unbiased for ``iwae`` and ``renyi`` (and
      equal to ``"stl"`` for ``elbo``). Traces ``log_joint`` once.
    * ``"score"``: score function (REINFORCE) with learning signal the bound and, for
      ``K > 1``, the leave-one-out baseline "the bound on the other K-1 samples".
    * ``"vimco"``: score function with VIMCO's baseline, the bound with sample k
      replaced by the mean log-weight of the others (Mnih & Rezende 2016); K >= 2.

    Args:
      key: PRNG key for the draw.
      log_joint: ``z -> log p(x, z)`` with a leading sample axis (``[K, ...]`` or a
        pytree of such), returning ``[K]``; closes over the model parameters.
      make_q: ``q_params -> q`` with ``sample(seed=, sample_shape=)`` and ``log_prob``.
      q_params: the variational parameters (any pytree).
      num_samples: K.
      bound: one of ``"elbo"``, ``"iwae"``, ``"renyi"``, ``"vr_max"``.
      estimator: one of ``"reparam"``, ``"stl"``, ``"dreg"``, ``"score"``, ``"vimco"``.
      alpha: the Renyi order, required for ``bound="renyi"`` (a concrete float, finite or
        ``-inf``); ignored by the other bounds. There is no default: ``alpha = 0`` would
        silently be the IWAE bound.

    Returns:
      ``Estimate(value, surrogate, log_weights)``.

    References:
      Kingma & Welling 2014; Burda et al. 2016; Li & Turner 2016; Roeder, Wu &
      Duvenaud, Sticking the Landing, 2017; Tucker, Lawson, Gu & Maddison, Doubly
      Reparameterized Gradient Estimators, 2019; Mnih & Rezende, Variational
      Inference for Monte Carlo Objectives, 2016.

    Examples:
      >>> x = 1.5  # z ~ N(0, 1), x | z ~ N(z, 1): log p(x) = log N(1.5; 0, 2)
      >>> def log_joint(z):  # [K] -> [K]
      ...     return distrax.Normal(0.0, 1.0).log_prob(z) + distrax.Normal(z, 1.0).log_prob(x)
      >>> def make_q(p):
      ...     return distrax.Normal(p["mean"], jnp.exp(p["log_scale"]))
      >>> posterior = {"mean": 0.75, "log_scale": 0.5 * jnp.log(0.5)}  # q = p(z | x) exactly
      >>> key = jax.random.key(0)
      >>> est = vb.estimate(key, log_joint, make_q, posterior, num_samples=8, estimator="dreg")
      >>> round(float(est.value), 4)  # every weight is p(x): the bound is exact on any draw
      -1.828
      >>> round(float(distrax.Normal(0.0, jnp.sqrt(2.0)).log_prob(x)), 4)
      -1.828
      >>> def loss(q_params):
      ...     return -vb.estimate(key, log_joint, make_q, q_params, num_samples=8,
      ...                         estimator="dreg").surrogate
      >>> grads = jax.grad(loss)(posterior)  # DReG: exactly zero at the posterior
      >>> [abs(round(float(g), 4)) for g in (grads["mean"], grads["log_scale"])]
      [0.0, 0.0]
      >>> try:  # the Renyi bound needs its order
      ...     vb.estimate(key, log_joint, make_q, posterior, num_samples=8, bound="renyi")
      ... except ValueError as err:
      ...     print(str(err)[:48])
      `alpha` is required for bound='renyi' (the Renyi
    """
    k = check_int(num_samples, "num_samples")
    if bound not in ESTIMATE_BOUNDS:
        raise ValueError(f"`bound` must be one of {ESTIMATE_BOUNDS}, got {bound!r}.")
    if estimator not in GRADIENT_ESTIMATORS:
        raise ValueError(f"`estimator` must be one of {GRADIENT_ESTIMATORS}, got {estimator!r}.")
    if not callable(log_joint):
        raise TypeError("`log_joint` must be callable: z -> log p(x, z).")
    if not callable(make_q):
        raise TypeError("`make_q` must be callable: q_params -> distribution.")
    _check_key(key)
    a = 0.0
    if bound == "renyi":
        if alpha is None:
            raise ValueError(
                "`alpha` is required for bound='renyi' (the Renyi order; alpha=0 is 'iwae', "
                "alpha=1 is 'elbo')."
            )
        a = concrete_float(alpha, "alpha")
        if a is None or math.isnan(a) or a == math.inf:
            raise ValueError(f"`alpha` must be a concrete finite float, got {alpha!r}.")
    if estimator == "vimco" and k < 2:
        raise ValueError(f"`estimator`='vimco' needs num_samples >= 2, got {k}.")
    if estimator == "dreg" and bound == "vr_max":
        raise ValueError("`estimator`='dreg' is defined for bound elbo, iwae or renyi.")
    f = _bound_fn(bound, a)

    if estimator == "dreg":
        dreg_alpha = 1.0 if bound == "elbo" else a
        if dreg_alpha == -math.inf:
            raise ValueError("`estimator`='dreg' needs a finite `alpha`.")
        log_w, phi_term = _path_gradient_terms(
            key, log_joint, make_q, q_params, k, _dreg_coefficients(dreg_alpha)
        )
        return _assemble(f, bound, a, log_w, phi_term)

    q = make_q(q_params)
    z = q.sample(seed=key, sample_shape=(k,))
    if estimator in ("reparam", "stl"):
        _require_reparameterised(z, estimator)
        q_for_density = q if estimator == "reparam" else make_q(jax.lax.stop_gradient(q_params))
        log_w = _log_prob_shape_check("log_joint", log_joint(z), k) - _log_prob_shape_check(
            "q.log_prob", q_for_density.log_prob(z), k
        )
        surrogate = f(log_w, 0)
        return Estimate(jax.lax.stop_gradient(surrogate), surrogate, jax.lax.stop_gradient(log_w))

    z = jax.lax.stop_gradient(z)
    log_q = _log_prob_shape_check("q.log_prob", q.log_prob(z), k)
    log_w = _log_prob_shape_check("log_joint", log_joint(z), k) - log_q
    log_w_s = jax.lax.stop_gradient(log_w)
    value = f(log_w_s, 0)
    if k == 1:
        signal = value[None]
    else:
        baseline = f(_leave_one_out_matrix(log_w_s, estimator == "vimco"), 1)
        signal = value - baseline
    score_term = jnp.sum(jax.lax.stop_gradient(signal) * (log_q - jax.lax.stop_gradient(log_q)))
    surrogate = f(log_w, 0) + score_term
    return Estimate(value, surrogate, log_w_s)


def _assemble(f, bound: str, alpha: float, log_w: jax.Array, phi_term: jax.Array) -> Estimate:
    """Value plus zero-valued terms whose gradients are the model and path gradients."""
    log_w_s = jax.lax.stop_gradient(log_w)
    value = f(log_w_s, 0)
    weights = jax.lax.stop_gradient(_normalised_weights(bound, alpha, log_w_s))
    model_term = jnp.sum(weights * (log_w - log_w_s))
    return Estimate(value, value + model_term + phi_term, log_w_s)


def rws_wake_phi(
    key: jax.Array,
    log_joint: Callable[[Any], jax.Array],
    make_q: Callable[[Any], Any],
    q_params: Any,
    *,
    num_samples: int,
    estimator: str = "is",
) -> Estimate:
    """Reweighted wake-sleep: the wake-phi update for q and the wake-theta update.

    The surrogate's gradient with respect to ``q_params`` estimates
    ``grad_phi E_{p(z|x)}[log q(z)] = -grad_phi KL(p(z|x) || q)`` (the inclusive,
    mass-covering objective: ascend it) by self-normalised importance sampling,

    .. math:: \\sum_k \\tilde w_k \\nabla_\\phi \\log q_\\phi(z_k),\\quad
        \\tilde w = \\mathrm{softmax}(\\log w)

    and with respect to the model parameters the IWAE (wake-theta) gradient
    ``sum_k w~_k grad log p(x, z_k)``. ``estimator="dreg"`` is the doubly
    reparameterised form ``sum_k (w~_k - w~_k^2) dlog w_k/dz dz/dphi`` (same
    expectation, lower variance; needs a reparameterisable q). ``value`` is the
    IWAE bound on the draw.

    Args:
      key: PRNG key.
      log_joint: ``z -> log p(x, z)``, ``[K, ...] -> [K]``.
      make_q: ``q_params -> q``.
      q_params: variational parameters.
      num_samples: K.
      estimator: ``"is"`` (score form, works for discrete q) or ``"dreg"``.

    Returns:
      ``Estimate(value, surrogate, log_weights)``; ``surrogate`` equals ``value``.

    References:
      Bornschein & Bengio, Reweighted Wake-Sleep, 2015; Le et al., Revisiting
      Reweighted Wake-Sleep, 2019; Tucker et al., Doubly Reparameterized Gradient
      Estimators, 2019.

    Examples:
      >>> x = 1.5  # z ~ N(0, 1), x | z ~ N(z, 1): log p(x) = log N(1.5; 0, 2)
      >>> def log_joint(z):  # [K] -> [K]
      ...     return distrax.Normal(0.0, 1.0).log_prob(z) + distrax.Normal(z, 1.0).log_prob(x)
      >>> def make_q(p):
      ...     return distrax.Normal(p["mean"], jnp.exp(p["log_scale"]))
      >>> posterior = {"mean": 0.75, "log_scale": 0.5 * jnp.log(0.5)}  # q = p(z | x) exactly
      >>> key = jax.random.key(0)
      >>> est = vb.rws_wake_phi(key, log_joint, make_q, posterior, num_samples=8, estimator="dreg")
      >>> round(float(est.value), 4)  # the IWAE value: exact at the posterior
      -1.828
      >>> grads = jax.grad(lambda p: vb.rws_wake_phi(
      ...     key, log_joint, make_q, p, num_samples=8, estimator="dreg").surrogate)(posterior)
      >>> [abs(round(float(g), 4)) for g in (grads["mean"], grads["log_scale"])]  # the optimum
      [0.0, 0.0]
    """
    k = check_int(num_samples, "num_samples")
    if estimator not in ("is", "dreg"):
        raise ValueError(f"`estimator` must be 'is' or 'dreg', got {estimator!r}.")
    _check_key(key)
    if estimator == "dreg":

        def coef(log_w):
            wt = jax.nn.softmax(log_w)
            return wt - wt**2

        log_w, phi_term = _path_gradient_terms(key, log_joint, make_q, q_params, k, coef)
        return _assemble(_bounds.iwae, "iwae", 0.0, log_w, phi_term)

    q = make_q(q_params)
    z = jax.lax.stop_gradient(q.sample(seed=key, sample_shape=(k,)))
    log_q = _log_prob_shape_check("q.log_prob", q.log_prob(z), k)
    log_p = _log_prob_shape_check("log_joint", log_joint(z), k)
    log_q_s = jax.lax.stop_gradient(log_q)
    log_w_s = jax.lax.stop_gradient(log_p - log_q_s)
    value = _bounds.iwae(log_w_s)
    weights = jax.nn.softmax(log_w_s)
    model_term = jnp.sum(weights * (log_p - jax.lax.stop_gradient(log_p)))
    phi_term = jnp.sum(weights * (log_q - log_q_s))
    return Estimate(value, value + model_term + phi_term, log_w_s)
