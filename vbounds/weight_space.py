"""Variational inference over network weights: Bayes by backprop and its noise tricks.

``q(w) = N(loc, scale^2)`` factorises over every weight (a pytree of ``loc`` and ``scale``
arrays of the same structure). :func:`elbo` is the Bayes-by-backprop bound with the KL term
estimated on the same draws as the likelihood, so any prior with a log density works, such
as the :func:`scale_mixture_log_prob` of Blundell et al. :func:`local_reparameterization`
and :func:`flipout` draw a dense layer's stochastic output ``x @ w`` for ``w ~ q`` with less
gradient variance than one shared weight draw: the first samples the Gaussian pre-activation
of each example independently, the second shares one weight perturbation and decorrelates
the examples with random signs. Both have the exact per-example mean ``x @ loc`` and
variance ``x^2 @ scale^2``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array, check_int, require

__all__ = ["scale_mixture_log_prob", "elbo", "local_reparameterization", "flipout"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _normal_log_prob(x, loc, scale):
    return -0.5 * jnp.square((x - loc) / scale) - jnp.log(scale) - _HALF_LOG_2PI


def scale_mixture_log_prob(
    w: jax.typing.ArrayLike,
    *,
    mixture_weight: float = 0.5,
    scale1: float = 1.0,
    scale2: float = math.exp(-6.0),
) -> jax.Array:
    """Elementwise log density of the scale-mixture prior of Bayes by backprop.

    .. math:: p(w) = \\pi\\, \\mathcal{N}(w \\mid 0, \\sigma_1^2)
        + (1 - \\pi)\\, \\mathcal{N}(w \\mid 0, \\sigma_2^2)

    A wide component and a narrow one (``scale2 << scale1``) give a heavy-tailed prior with a
    spike at zero. Its KL to a Gaussian ``q`` has no closed form, hence :func:`elbo`'s Monte
    Carlo KL.

    Args:
      w: weights, any shape.
      mixture_weight: ``pi`` in ``[0, 1]``, the weight of the ``scale1`` component.
      scale1: standard deviation of the first component (positive).
      scale2: standard deviation of the second component (positive).

    Returns:
      ``log p(w)``, elementwise, same shape as ``w``.

    References:
      Blundell, Cornebise, Kavukcuoglu & Wierstra, Weight Uncertainty in Neural Networks,
      2015.

    Examples:
      >>> lp = vb.weight_space.scale_mixture_log_prob(jnp.zeros(2), mixture_weight=1.0)
      >>> round(float(lp[0]), 4)  # log N(0 | 0, 1)
      -0.9189
    """
    w = as_float_array(w, "w")
    pi = as_float_array(mixture_weight, "mixture_weight")
    s1 = as_float_array(scale1, "scale1")
    s2 = as_float_array(scale2, "scale2")
    require(lambda p: (p >= 0) & (p <= 1), pi, message="`mixture_weight` must be in [0, 1].")
    require(lambda s: s > 0, s1, message="`scale1` must be positive.")
    require(lambda s: s > 0, s2, message="`scale2` must be positive.")
    # log(0) = -inf for pi in {0, 1} drops that component inside the logsumexp.
    return jnp.logaddexp(
        jnp.log(pi) + _normal_log_prob(w, 0.0, s1),
        jnp.log1p(-pi) + _normal_log_prob(w, 0.0, s2),
    )


def _check_mean_field(loc: Any, scale: Any):
    locs, treedef = jax.tree.flatten(loc)
    scales, scale_def = jax.tree.flatten(scale)
    if treedef != scale_def:
        raise ValueError(
            f"`scale` must have the pytree structure of `loc`, got {scale_def} and {treedef}."
        )
    if not locs:
        raise ValueError("`loc` must hold at least one array.")
    locs = [as_float_array(v, "loc") for v in locs]
    scales = [as_float_array(v, "scale") for v in scales]
    for m, s in zip(locs, scales):
        if m.shape != s.shape:
            raise ValueError(f"`scale` leaf of shape {s.shape} differs from `loc`'s {m.shape}.")
        require(lambda v: v > 0, s, message="`scale` must be positive.")
    return locs, scales, treedef


def elbo(
    key: jax.Array,
    log_likelihood_fn: Callable[[Any], jax.Array],
    loc: Any,
    scale: Any,
    *,
    log_prior_fn: Callable[[jax.Array], jax.Array],
    num_samples: int = 1,
) -> jax.Array:
    """Bayes-by-backprop ELBO over weights, with the KL estimated by Monte Carlo.

    .. math:: \\mathcal{L} = \\frac{1}{S} \\sum_{s=1}^S \\big[\\log p(\\mathcal{D} \\mid w_s)
        + \\log p(w_s) - \\log q(w_s)\\big], \\qquad w_s = \\mathrm{loc}
        + \\mathrm{scale} \\odot \\epsilon_s,\\ \\epsilon_s \\sim \\mathcal{N}(0, I)

    An unbiased estimate of the lower bound ``E_q log p(D | w) - KL(q || p)`` on
    ``log p(D)``, reparameterised, so ``jax.grad`` with respect to ``loc``, ``scale`` and
    anything ``log_likelihood_fn`` closes over is the Bayes-by-backprop gradient. When ``q``
    is the exact posterior every draw equals ``log p(D)``. On a minibatch of ``B`` of ``N``
    examples, scale the minibatch log-likelihood by ``N / B`` inside ``log_likelihood_fn``.

    Args:
      key: PRNG key for the weight noise.
      log_likelihood_fn: ``weights -> log p(D | weights)``, a scalar; ``weights`` has the
        pytree structure of ``loc``.
      loc: pytree of weight means.
      scale: pytree of positive weight standard deviations, the structure of ``loc``.
      log_prior_fn: elementwise log prior density, applied to every leaf and summed (e.g.
        :func:`scale_mixture_log_prob`, or a Gaussian's log density).
      num_samples: number of weight draws ``S`` (static).

    Returns:
      The scalar ELBO estimate, nats.

    References:
      Blundell, Cornebise, Kavukcuoglu & Wierstra, Weight Uncertainty in Neural Networks,
      2015.

    Examples:
      >>> # One weight, prior N(0, 1), one observation y = 1 ~ N(w, 1): posterior N(1/2, 1/2).
      >>> log_lik = lambda w: -0.5 * (1.0 - w) ** 2 - 0.5 * jnp.log(2 * jnp.pi)
      >>> log_prior = lambda w: -0.5 * w**2 - 0.5 * jnp.log(2 * jnp.pi)
      >>> value = vb.weight_space.elbo(jax.random.key(0), log_lik, 0.5, jnp.sqrt(0.5),
      ...                              log_prior_fn=log_prior, num_samples=4)
      >>> round(float(value), 4)  # log N(1 | 0, 2), whatever the draw
      -1.5155
    """
    num_samples = check_int(num_samples, "num_samples")
    locs, scales, treedef = _check_mean_field(loc, scale)
    # One draw for every weight: one random-number op, whatever the number of leaves.
    dtype = jnp.result_type(*locs)
    sizes = [m.size for m in locs]
    flat = jax.random.normal(key, (num_samples, sum(sizes)), dtype=dtype)
    pieces = jnp.split(flat, list(itertools.accumulate(sizes))[:-1], axis=1)
    samples = [m + s * e.reshape(num_samples, *m.shape) for m, s, e in zip(locs, scales, pieces)]

    def one_draw(leaves):
        weights = jax.tree.unflatten(treedef, leaves)
        log_lik = jnp.asarray(log_likelihood_fn(weights))
        if log_lik.shape != ():
            raise ValueError(
                f"`log_likelihood_fn` must return a scalar, got shape {log_lik.shape}."
            )
        log_prior = sum(jnp.sum(log_prior_fn(v)) for v in leaves)
        log_q = sum(jnp.sum(_normal_log_prob(v, m, s)) for v, m, s in zip(leaves, locs, scales))
        return log_lik + log_prior - log_q

    return jnp.mean(jax.vmap(one_draw)(samples))


def _dense_args(x, weight_loc, weight_scale):
    x = as_float_array(x, "x", min_ndim=1)
    loc = as_float_array(weight_loc, "weight_loc")
    scale = as_float_array(weight_scale, "weight_scale")
    if loc.ndim != 2:
        raise ValueError(f"`weight_loc` must be an [in, out] matrix, got shape {loc.shape}.")
    if scale.shape != loc.shape:
        raise ValueError(f"`weight_scale` must have shape {loc.shape}, got {scale.shape}.")
    if x.shape[-1] != loc.shape[0]:
        raise ValueError(
            f"`x` must end in the input dimension {loc.shape[0]} of `weight_loc`, got {x.shape}."
        )
    require(lambda v: v >= 0, scale, message="`weight_scale` must be non-negative.")
    return x, loc, scale


def local_reparameterization(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    weight_loc: jax.typing.ArrayLike,
    weight_scale: jax.typing.ArrayLike,
) -> jax.Array:
    """A dense layer's output ``x @ w``, ``w ~ q``, sampled as its Gaussian pre-activation.

    .. math:: y = x\\, \\mathrm{loc} + \\sqrt{x^2\\, \\mathrm{scale}^2} \\odot \\epsilon,
        \\qquad \\epsilon \\sim \\mathcal{N}(0, I)

    With independent Gaussian weights the pre-activation of each example is Gaussian with
    that mean and variance; drawing it directly gives every example its own implicit weight
    draw at the cost of one, which lowers the gradient variance of minibatch ELBOs.

    Args:
      key: PRNG key.
      x: ``[..., in]`` inputs; every leading index gets independent noise.
      weight_loc: ``[in, out]`` weight means.
      weight_scale: ``[in, out]`` non-negative weight standard deviations.

    Returns:
      ``[..., out]`` sampled outputs (add the bias outside).

    References:
      Kingma, Salimans & Welling, Variational Dropout and the Local Reparameterization
      Trick, 2015.

    Examples:
      >>> y = vb.weight_space.local_reparameterization(
      ...     jax.random.key(0), jnp.ones((3, 2)), jnp.ones((2, 4)), jnp.zeros((2, 4)))
      >>> y.shape, float(y[0, 0])  # zero scale: the deterministic x @ loc
      ((3, 4), 2.0)
    """
    x, loc, scale = _dense_args(x, weight_loc, weight_scale)
    mean = x @ loc
    std = jnp.sqrt(jnp.square(x) @ jnp.square(scale))
    return mean + std * jax.random.normal(key, mean.shape, dtype=mean.dtype)


def flipout(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    weight_loc: jax.typing.ArrayLike,
    weight_scale: jax.typing.ArrayLike,
) -> jax.Array:
    """A dense layer's output ``x @ w``, ``w ~ q``, with Flipout's pseudo-independent draws.

    .. math:: y_b = x_b\\, \\mathrm{loc}
        + \\big((x_b \\odot r_b)\\, (\\mathrm{scale} \\odot \\epsilon)\\big) \\odot s_b

    One perturbation ``scale * eps`` is shared by the batch; random signs ``r_b`` (inputs)
    and ``s_b`` (outputs) per example turn it into ``eps * r_b s_b^T``, again a draw of
    ``q``'s symmetric noise, so each example sees an exact sample of ``w ~ q`` while the
    examples' perturbations are decorrelated. Unlike :func:`local_reparameterization` the
    outputs of one example come from one consistent weight matrix.

    Args:
      key: PRNG key.
      x: ``[..., in]`` inputs; every leading index gets its own signs.
      weight_loc: ``[in, out]`` weight means.
      weight_scale: ``[in, out]`` non-negative weight standard deviations.

    Returns:
      ``[..., out]`` sampled outputs (add the bias outside).

    References:
      Wen, Vicol, Ba, Tran & Grosse, Flipout: Efficient Pseudo-Independent Weight
      Perturbations on Mini-Batches, 2018.

    Examples:
      >>> y = vb.weight_space.flipout(
      ...     jax.random.key(0), jnp.ones((3, 2)), jnp.ones((2, 4)), jnp.zeros((2, 4)))
      >>> y.shape, float(y[0, 0])
      ((3, 4), 2.0)
    """
    x, loc, scale = _dense_args(x, weight_loc, weight_scale)
    k_eps, k_signs = jax.random.split(key)
    perturbation = scale * jax.random.normal(k_eps, loc.shape, dtype=loc.dtype)
    fan_in = loc.shape[0]
    signs = jax.random.rademacher(k_signs, (*x.shape[:-1], fan_in + loc.shape[1]), dtype=x.dtype)
    signs_in, signs_out = signs[..., :fan_in], signs[..., fan_in:]
    return x @ loc + ((x * signs_in) @ perturbation) * signs_out
