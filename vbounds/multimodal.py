"""Multimodal VAE ELBOs: products, mixtures, mixtures of products of experts (``vb.multimodal``).

One example with ``E`` modalities ``x_1..x_E`` and a ``D``-dimensional latent. Each modality
has a Gaussian encoder (expert) ``q_e(z | x_e) = N(means[e], exp(log_vars[e]))``;
``means`` and ``log_vars`` are ``[E, D]``. ``log_likelihood(z)`` maps latents ``[K, D]`` to
the per-modality log-likelihoods ``log p(x_e | z)``, ``[K, E]`` (it closes over the decoders'
parameters). ``mask`` (``[E]`` booleans, all true by default) marks the modalities that
are observed. The prior is ``N(0, I)``. Write for one example and ``jax.vmap`` over a batch.
Every function samples with the reparameterisation trick, so its gradient with respect to
``means``, ``log_vars`` and whatever ``log_likelihood`` closes over is the usual estimator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbounds import bounds as _bounds
from vbounds._validation import as_float_array, check_finite_if_concrete, check_int, require

__all__ = [
    "Gaussian",
    "product_of_experts",
    "poe_elbo",
    "mvae_elbo",
    "moe_elbo",
    "mopoe_elbo",
    "subsampling_gap",
]

_LOG_2PI = math.log(2.0 * math.pi)
_BOUNDS = ("elbo", "iwae")


class Gaussian(NamedTuple):
    """A diagonal Gaussian by its mean and log-variance."""

    mean: jax.Array
    log_var: jax.Array


def _normal_log_prob(z, mean, log_var):
    """``log N(z; mean, exp(log_var))`` summed over the last axis."""
    return -0.5 * jnp.sum(_LOG_2PI + log_var + (z - mean) ** 2 * jnp.exp(-log_var), axis=-1)


def _experts(means, log_vars):
    mu = as_float_array(means, "means")
    lv = as_float_array(log_vars, "log_vars")
    if mu.ndim < 2:
        raise ValueError(f"`means` must have shape [E, ..., D], got {mu.shape}.")
    if lv.shape != mu.shape:
        raise ValueError(f"`log_vars` must have the shape of `means` {mu.shape}, got {lv.shape}.")
    check_finite_if_concrete(mu, "means")
    check_finite_if_concrete(lv, "log_vars")
    return mu, lv


def _mask(mask, shape):
    if mask is None:
        return jnp.ones(shape, bool)
    m = jnp.asarray(mask)
    if m.dtype != jnp.bool_:
        raise TypeError(f"`mask` must be a boolean array, got dtype {m.dtype}.")
    try:
        return jnp.broadcast_to(m, shape)
    except ValueError as err:
        raise ValueError(f"`mask` must broadcast to {shape}, got shape {m.shape}.") from err


def product_of_experts(
    means: jax.typing.ArrayLike,
    log_vars: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    prior_mean: jax.typing.ArrayLike = 0.0,
    prior_log_var: jax.typing.ArrayLike = 0.0,
    with_prior: bool = True,
) -> Gaussian:
    """The normalised product of Gaussian experts (exact, precision-weighted).

    .. math:: \\Lambda = \\Lambda_0 + \\sum_e m_e \\Lambda_e,\\qquad
        \\mu = \\Lambda^{-1}\\big(\\Lambda_0 \\mu_0 + \\sum_e m_e \\Lambda_e \\mu_e\\big)

    with precisions ``Lambda_e = exp(-log_vars[e])``, the prior expert ``(mu_0, Lambda_0)``
    and ``m`` the mask: a missing modality's expert is left out of the product. Computed in
    log space (``log_var = -logsumexp(-log_vars)``), so precisions of very different scales
    stay accurate.

    Args:
      means: ``[E, ..., D]`` expert means (expert axis first).
      log_vars: ``[E, ..., D]`` expert log-variances.
      mask: booleans broadcastable to ``means.shape[:-1]`` (``[E]`` for one example);
        ``None`` uses every expert.
      prior_mean: the prior expert's mean (broadcast to ``means.shape[1:]``).
      prior_log_var: the prior expert's log-variance.
      with_prior: include the prior expert (then an all-missing mask gives the prior).

    Returns:
      :class:`Gaussian` ``(mean, log_var)`` of shape ``means.shape[1:]``.

    References:
      Hinton, Training Products of Experts by Minimizing Contrastive Divergence, 2002;
      Wu & Goodman, Multimodal Generative Models for Scalable Weakly-Supervised Learning,
      2018.

    Examples:
      >>> q = vb.multimodal.product_of_experts(jnp.array([[2.0], [4.0]]), jnp.zeros((2, 1)))
      >>> round(float(q.mean[0]), 4), round(float(jnp.exp(q.log_var[0])), 4)  # with N(0, 1)
      (2.0, 0.3333)
      >>> q = vb.multimodal.product_of_experts(jnp.array([[2.0], [4.0]]), jnp.zeros((2, 1)),
      ...                                      mask=jnp.array([True, False]))
      >>> round(float(q.mean[0]), 4)  # N(2, 1) times N(0, 1)
      1.0
    """
    mu, lv = _experts(means, log_vars)
    m = _mask(mask, mu.shape[:-1])[..., None]
    log_prec = jnp.where(m, -lv, -jnp.inf)
    if with_prior:
        p_mean = jnp.broadcast_to(as_float_array(prior_mean, "prior_mean"), mu.shape[1:])
        p_lv = jnp.broadcast_to(as_float_array(prior_log_var, "prior_log_var"), mu.shape[1:])
        log_prec = jnp.concatenate([-p_lv[None], log_prec])
        mu = jnp.concatenate([p_mean[None], mu])
    else:
        require(
            lambda v: jnp.any(v, axis=0),
            m,
            message="`mask` leaves no expert and `with_prior` is False: the product is undefined.",
        )
    total = jax.nn.logsumexp(log_prec, axis=0)
    share = jnp.exp(log_prec - total)  # each expert's fraction of the total precision
    return Gaussian(jnp.sum(share * mu, axis=0), -total)


def _check_bound(bound):
    if bound not in _BOUNDS:
        raise ValueError(f"`bound` must be one of {_BOUNDS}, got {bound!r}.")
    return _bounds.elbo if bound == "elbo" else _bounds.iwae


def _call_likelihood(log_likelihood, z, num_modalities):
    ll = log_likelihood(z)
    if jnp.shape(ll) != (z.shape[0], num_modalities):
        raise ValueError(
            f"`log_likelihood` must map latents [K, D] to [K, E] = "
            f"{(z.shape[0], num_modalities)}, got shape {jnp.shape(ll)}."
        )
    return ll


def _masked_sum(ll, mask):
    return jnp.sum(jnp.where(mask, ll, 0.0), axis=-1)


def _standard_normal_log_prob(z):
    return _normal_log_prob(z, 0.0, jnp.zeros(()))


def _poe_bounds(key, log_likelihood, mu, lv, subset_masks, recon_masks, num_samples, bound_fn):
    """One bound per row of ``subset_masks`` ``[S, E]``: ``z ~ PoE(subset, prior)``,
    reconstructing the modalities of the matching row of ``recon_masks``."""
    num_subsets, num_modalities = subset_masks.shape
    q = jax.vmap(lambda s: product_of_experts(mu, lv, mask=s))(subset_masks)  # [S, D]
    eps = jax.random.normal(key, (num_subsets, num_samples, mu.shape[-1]), mu.dtype)
    z = q.mean[:, None] + jnp.exp(0.5 * q.log_var)[:, None] * eps  # [S, K, D]
    flat = z.reshape(-1, mu.shape[-1])
    ll = _call_likelihood(log_likelihood, flat, num_modalities)
    ll = ll.reshape(num_subsets, num_samples, num_modalities)
    log_w = (
        _masked_sum(ll, recon_masks[:, None, :])
        + _standard_normal_log_prob(z)
        - _normal_log_prob(z, q.mean[:, None], q.log_var[:, None])
    )
    return bound_fn(log_w, axis=1)


def poe_elbo(
    key: jax.Array,
    log_likelihood: Callable[[jax.Array], jax.Array],
    means: jax.typing.ArrayLike,
    log_vars: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    num_samples: int = 1,
    bound: str = "elbo",
) -> jax.Array:
    """ELBO (or IWAE bound) of the observed modalities with the product-of-experts posterior.

    .. math:: \\mathcal{L} = \\mathbb{E}_{z \\sim q}\\Big[\\sum_{e \\in S}
        \\log p(x_e | z) + \\log p(z) - \\log q(z)\\Big],\\quad
        q = p(z) \\textstyle\\prod_{e \\in S} q_e(z | x_e) / Z

    over the observed set ``S`` (``mask``); a lower bound on ``log p(x_S)``. With no modality
    observed it is exactly 0 (``q`` is the prior). With one modality it is the unimodal
    :func:`vbounds.elbo` (or :func:`vbounds.iwae`) of the log-weights at the same draws.

    Args:
      key: a PRNG key.
      log_likelihood: ``z [K, D] -> [K, E]`` per-modality ``log p(x_e | z)``.
      means: ``[E, D]`` expert means.
      log_vars: ``[E, D]`` expert log-variances.
      mask: ``[E]`` booleans, the observed modalities (all by default).
      num_samples: ``K`` (static).
      bound: ``"elbo"`` or ``"iwae"``.

    Returns:
      The scalar bound (nats) on this draw.

    References:
      Wu & Goodman, Multimodal Generative Models for Scalable Weakly-Supervised Learning,
      2018.

    Examples:
      >>> def log_likelihood(z):  # x_e | z ~ N(z, 1) at x = (1, -1)
      ...     x = jnp.array([1.0, -1.0])
      ...     return -0.5 * (x - z) ** 2 - 0.5 * jnp.log(2 * jnp.pi)
      >>> mu, lv = jnp.array([[0.5], [-0.5]]), jnp.full((2, 1), jnp.log(2.0))
      >>> value = vb.multimodal.poe_elbo(jax.random.key(0), log_likelihood, mu, lv,
      ...                                num_samples=4)
      >>> round(float(value), 2)  # below log p(x) = log N(x; 0, I + 1 1^T) = -3.3872
      -3.62
    """
    mu, lv = _experts(means, log_vars)
    k = check_int(num_samples, "num_samples")
    bound_fn = _check_bound(bound)
    present = _mask(mask, mu.shape[:1])
    return _poe_bounds(key, log_likelihood, mu, lv, present[None], present[None], k, bound_fn)[0]


def mvae_elbo(
    key: jax.Array,
    log_likelihood: Callable[[jax.Array], jax.Array],
    means: jax.typing.ArrayLike,
    log_vars: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    num_subsets: int = 0,
    num_samples: int = 1,
    bound: str = "elbo",
) -> jax.Array:
    """The MVAE training objective: PoE ELBOs of the full set, each modality and random subsets.

    .. math:: \\mathcal{L} = \\mathcal{L}(x_{1:E}) + \\sum_e \\mathcal{L}(x_e)
        + \\sum_{j=1}^{J} \\mathcal{L}(x_{S_j})

    each term a :func:`poe_elbo` that reconstructs only its own subset, with ``S_j`` drawn
    uniformly among the non-empty subsets (sub-sampling), restricted to the observed
    modalities (a term left with no observed modality is exactly 0). With one modality the
    full set and the singleton coincide and the objective is that one ELBO. A sum of lower
    bounds on marginal log-likelihoods of subsets, not itself a bound on ``log p(x)``.

    Args:
      key: a PRNG key.
      log_likelihood: ``z [K, D] -> [K, E]``.
      means: ``[E, D]`` expert means.
      log_vars: ``[E, D]`` expert log-variances.
      mask: ``[E]`` booleans, the observed modalities.
      num_subsets: ``J``, random subsets per call (static).
      num_samples: ``K`` per term (static).
      bound: ``"elbo"`` or ``"iwae"`` for every term.

    Returns:
      The scalar objective (nats; maximise it).

    References:
      Wu & Goodman, Multimodal Generative Models for Scalable Weakly-Supervised Learning,
      2018.

    Examples:
      >>> log_likelihood = lambda z: -0.5 * (jnp.array([1.0, -1.0]) - z) ** 2 - 0.9189
      >>> mu, lv = jnp.zeros((2, 1)), jnp.zeros((2, 1))
      >>> value = vb.multimodal.mvae_elbo(jax.random.key(0), log_likelihood, mu, lv,
      ...                                 num_subsets=2)
      >>> round(float(value), 2)  # a sum of five subset ELBOs
      -11.57
    """
    mu, lv = _experts(means, log_vars)
    k = check_int(num_samples, "num_samples")
    j = check_int(num_subsets, "num_subsets", minimum=0)
    bound_fn = _check_bound(bound)
    e = mu.shape[0]
    present = _mask(mask, (e,))
    fixed = [np.ones(e, bool)] + (list(np.eye(e, dtype=bool)) if e > 1 else [])
    subsets = jnp.asarray(np.stack(fixed))
    key_terms, key_subsets = jax.random.split(key)
    if j:
        codes = jax.random.randint(key_subsets, (j,), 1, 2**e)
        random_subsets = (codes[:, None] >> jnp.arange(e)) & 1 == 1
        subsets = jnp.concatenate([subsets, random_subsets])
    subsets = subsets & present
    return jnp.sum(_poe_bounds(key_terms, log_likelihood, mu, lv, subsets, subsets, k, bound_fn))


def mopoe_elbo(
    key: jax.Array,
    log_likelihood: Callable[[jax.Array], jax.Array],
    means: jax.typing.ArrayLike,
    log_vars: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    num_samples: int = 1,
) -> jax.Array:
    """Mixture-of-products-of-experts ELBO: the mean over subsets of subset-PoE ELBOs.

    .. math:: \\mathcal{L} = \\frac{1}{|\\mathcal{P}|} \\sum_{S \\in \\mathcal{P}}
        \\mathbb{E}_{q_S}\\Big[\\sum_{e} \\log p(x_e | z) + \\log p(z) - \\log q_S(z)\\Big]

    over the non-empty subsets ``P`` of the observed modalities, ``q_S`` the PoE of ``S``
    with the prior expert; every term reconstructs all observed modalities. By convexity of
    the KL it is a lower bound on the ELBO of the mixture posterior
    ``(1/|P|) sum_S q_S``, hence on ``log p(x)``. One draw of ``num_samples`` per subset
    (``2^E - 1`` subsets: meant for a few modalities). With one modality it is
    :func:`poe_elbo`.

    Args:
      key: a PRNG key.
      log_likelihood: ``z [K, D] -> [K, E]``.
      means: ``[E, D]`` expert means.
      log_vars: ``[E, D]`` expert log-variances.
      mask: ``[E]`` booleans, the observed modalities (at least one).
      num_samples: ``K`` per subset (static).

    Returns:
      The scalar bound (nats).

    References:
      Sutter, Daunhawer & Vogt, Generalized Multimodal ELBO, 2021.

    Examples:
      >>> log_likelihood = lambda z: -0.5 * (jnp.array([1.0, -1.0]) - z) ** 2 - 0.9189
      >>> mu, lv = jnp.array([[0.5], [-0.5]]), jnp.full((2, 1), jnp.log(2.0))
      >>> value = vb.multimodal.mopoe_elbo(jax.random.key(0), log_likelihood, mu, lv)
      >>> round(float(value), 2)  # log p(x) = -3.3872
      -4.31
    """
    mu, lv = _experts(means, log_vars)
    k = check_int(num_samples, "num_samples")
    e = mu.shape[0]
    if e > 12:
        raise ValueError(f"`means` has {e} modalities: 2^E - 1 subsets is too many (max 12).")
    present = _mask(mask, (e,))
    require(lambda p: jnp.any(p), present, message="`mask` must mark at least one modality.")
    subsets = jnp.asarray(np.array(list(itertools.product([False, True], repeat=e))[1:]))
    valid = ~jnp.any(subsets & ~present, axis=1)  # subsets of the observed modalities
    recon = jnp.broadcast_to(present, subsets.shape)
    values = _poe_bounds(key, log_likelihood, mu, lv, subsets, recon, k, _bounds.elbo)
    return jnp.sum(jnp.where(valid, values, 0.0)) / jnp.sum(valid)


def moe_elbo(
    key: jax.Array,
    log_likelihood: Callable[[jax.Array], jax.Array],
    means: jax.typing.ArrayLike,
    log_vars: jax.typing.ArrayLike,
    *,
    mask: jax.typing.ArrayLike | None = None,
    num_samples: int = 1,
    bound: str = "iwae",
    dreg: bool = False,
) -> jax.Array:
    """MMVAE bound: mixture-of-experts posterior, stratified importance sampling.

    .. math:: \\mathcal{L} = \\frac{1}{|S|} \\sum_{m \\in S} \\mathbb{E}_{z^{1:K} \\sim q_m}
        \\log \\frac{1}{K} \\sum_k \\frac{p(x_S, z^k)}{q(z^k | x_S)},\\quad
        q(z | x_S) = \\frac{1}{|S|} \\sum_{e \\in S} q_e(z | x_e)

    (``bound="elbo"``: the mean of the log-weights instead of the log-mean). Each stratum
    ``m`` samples its own expert and weighs by the mixture density; a lower bound on
    ``log p(x_S)``. With one modality it is :func:`vbounds.iwae` (or :func:`vbounds.elbo`)
    of that expert's log-weights. ``dreg=True`` keeps the value and replaces the gradient
    with respect to ``means``/``log_vars`` by the doubly-reparameterised one (Tucker et al.
    2019; the path gradient with the mixture density at stopped parameters, weighted by
    the squared normalised weights; for ``"elbo"`` the sticking-the-landing gradient); the
    decoders' gradient is unchanged.

    Args:
      key: a PRNG key.
      log_likelihood: ``z [K, D] -> [K, E]``.
      means: ``[E, D]`` expert means.
      log_vars: ``[E, D]`` expert log-variances.
      mask: ``[E]`` booleans, the observed modalities (at least one).
      num_samples: ``K`` per stratum (static).
      bound: ``"iwae"`` or ``"elbo"``.
      dreg: use the DReG gradient for the encoders.

    Returns:
      The scalar bound (nats) on this draw.

    References:
      Shi, Siddharth, Paige & Torr, Variational Mixture-of-Experts Autoencoders for
      Multi-Modal Deep Generative Models, 2019.

    Examples:
      >>> log_likelihood = lambda z: -0.5 * (jnp.array([1.0, -1.0]) - z) ** 2 - 0.9189
      >>> mu, lv = jnp.array([[0.5], [-0.5]]), jnp.zeros((2, 1))
      >>> value = vb.multimodal.moe_elbo(jax.random.key(0), log_likelihood, mu, lv,
      ...                                num_samples=16)
      >>> round(float(value), 2)  # log p(x) = -3.3872
      -3.43
    """
    mu, lv = _experts(means, log_vars)
    k = check_int(num_samples, "num_samples")
    bound_fn = _check_bound(bound)
    e, d = mu.shape
    present = _mask(mask, (e,))
    require(lambda p: jnp.any(p), present, message="`mask` must mark at least one modality.")
    count = jnp.sum(present)
    eps = jax.random.normal(key, (e, k, d), mu.dtype)
    z = mu[:, None] + jnp.exp(0.5 * lv)[:, None] * eps  # stratum m samples expert m

    def log_weights(zz, mu_, lv_):
        ll = _call_likelihood(log_likelihood, zz.reshape(-1, d), e).reshape(e, k, e)
        log_q_each = _normal_log_prob(zz[:, :, None, :], mu_, lv_)  # [E, K, E]
        log_mix = jax.nn.logsumexp(jnp.where(present, log_q_each, -jnp.inf), axis=-1) - jnp.log(
            count
        )
        return _masked_sum(ll, present) + _standard_normal_log_prob(zz) - log_mix

    def combine(per_stratum):
        return jnp.sum(jnp.where(present, per_stratum, 0.0)) / count

    if not dreg:
        return combine(bound_fn(log_weights(z, mu, lv), axis=1))
    z0 = jax.lax.stop_gradient(z)
    log_w, vjp_fn = jax.vjp(
        lambda zz: log_weights(zz, jax.lax.stop_gradient(mu), jax.lax.stop_gradient(lv)), z0
    )
    if bound == "iwae":
        coef = jax.nn.softmax(jax.lax.stop_gradient(log_w), axis=1) ** 2
    else:
        coef = jnp.full_like(log_w, 1.0 / k)
    coef = coef * jnp.where(present, 1.0, 0.0)[:, None] / count
    (grad_z,) = vjp_fn(coef)
    path = jnp.sum(jax.lax.stop_gradient(grad_z) * (z - z0))
    return combine(bound_fn(log_w, axis=1)) + path


def subsampling_gap(
    log_joint: jax.typing.ArrayLike,
    subsets: jax.typing.ArrayLike,
    *,
    weights: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """The sub-sampling discrepancy of mixture-based multimodal ELBOs, from a discrete joint.

    .. math:: \\Delta(X, \\mathcal{S}) = \\sum_{A \\in \\mathcal{S}} \\omega_A\\,
        H(X_{\\bar A} | X_A) = \\sum_A \\omega_A \\big(H(X) - H(X_A)\\big)

    the mixture-weighted conditional entropy of the modalities left out of each subset
    given those in it: the information no encoder of ``x_A`` can carry about ``x_{not A}``,
    which every sub-sampled (mixture-based) objective - MMVAE, MoPoE, MVAE's subset terms -
    must pay when it reconstructs all modalities from ``q(z | x_A)``. Zero when each
    modality is determined by every subset; ``H(X_2)`` for two independent modalities and
    the subset ``{1}``.

    Args:
      log_joint: ``[V_1, ..., V_E]`` log-probabilities of the joint of ``E`` discrete
        modalities (normalised; ``-inf`` allowed).
      subsets: ``[S, E]`` booleans, the subsets ``A`` (concrete, each non-empty).
      weights: ``[S]`` mixture weights ``omega_A`` summing to one (uniform by default).

    Returns:
      ``Delta`` in nats (a scalar ``>= 0``).

    References:
      Daunhawer, Sutter, Chin-Cheong, Palumbo & Vogt, On the Limitations of Multimodal
      VAEs, 2022.

    Examples:
      >>> log_joint = jnp.log(jnp.full((2, 2), 0.25))  # two independent fair bits
      >>> subsets = jnp.array([[True, False], [False, True]])
      >>> round(float(vb.multimodal.subsampling_gap(log_joint, subsets)), 4)  # log 2
      0.6931
    """
    lj = as_float_array(log_joint, "log_joint", min_ndim=1)
    require(lambda v: ~jnp.isnan(v) & ~jnp.isposinf(v), lj, message="`log_joint` has NaN or +inf.")
    require(
        lambda v: jnp.abs(jax.nn.logsumexp(v)) < 1e-4,
        lj,
        message="`log_joint` must be normalised (logsumexp = 0).",
    )
    s = np.asarray(subsets)
    e = lj.ndim
    if s.dtype != np.bool_ or s.ndim != 2 or s.shape[1] != e:
        raise ValueError(f"`subsets` must be a boolean array [S, E] with E = {e}, got {s.shape}.")
    if not np.all(s.any(axis=1)):
        raise ValueError("`subsets` must not contain the empty subset.")
    if weights is None:
        w = jnp.full((s.shape[0],), 1.0 / s.shape[0], lj.dtype)
    else:
        w = as_float_array(weights, "weights")
        if w.shape != (s.shape[0],):
            raise ValueError(f"`weights` must have shape ({s.shape[0]},), got {w.shape}.")
        require(
            lambda v: (jnp.abs(jnp.sum(v) - 1.0) < 1e-5) & jnp.all(v >= 0),
            w,
            message="`weights` must be non-negative and sum to one.",
        )
    p = jnp.exp(lj)
    h_joint = -jnp.sum(jnp.where(p > 0, p * lj, 0.0))
    gaps = []
    for row in s:
        out = tuple(int(a) for a in np.flatnonzero(~row))
        log_marginal = jax.nn.logsumexp(lj, axis=out) if out else lj
        pm = jnp.exp(log_marginal)
        h_subset = -jnp.sum(jnp.where(pm > 0, pm * log_marginal, 0.0))
        gaps.append(h_joint - h_subset)
    return jnp.sum(w * jnp.stack(gaps))
