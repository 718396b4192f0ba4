"""Classifier lower bound on the Jensen-Shannon divergence and distance between two samples.

A binary classifier ``D(x) = P(real | x)`` trained to separate real from generated
samples (equal class priors) gives

.. math::
    JS(P, Q) \\ge \\log 2 + \\tfrac12 E_P \\log D(x) + \\tfrac12 E_Q \\log(1 - D(x)),

with equality for the Bayes-optimal ``D = p / (p + q)``. The PolyGraph Discrepancy
reports this bound (clipped at 0) in bits and as the JS distance ``sqrt(JS_bits)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vbounds._validation import require
from vbounds.mi import _checks

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_UNITS = {"nats": 1.0, "bits": 1.0 / math.log(2.0)}


def classifier_js_divergence(
    log_prob_real: ArrayLike, log_prob_generated: ArrayLike, *, unit: str = "nats"
) -> Array:
    """Lower bound on the JS divergence from a classifier's log-probabilities.

    .. math::
        \\max\\Big(0,\\; \\log 2 + \\tfrac12 \\operatorname{mean}_i \\log D(x_i)
            + \\tfrac12 \\operatorname{mean}_k \\log(1 - D(\\tilde x_k))\\Big)

    The value lies in ``[0, log 2]`` nats, ``[0, 1]`` bits, because log-probabilities are
    at most 0. From logits ``l`` of "real", ``log D = jax.nn.log_sigmoid(l)`` and
    ``log(1 - D) = jax.nn.log_sigmoid(-l)``. A positive entry is not a log-probability:
    it raises when concrete and makes the result NaN under ``jit``.

    Args:
      log_prob_real: ``[N]`` values ``log D(x_i)``, the log-probability the classifier
        gives the correct class "real" on held-out real samples.
      log_prob_generated: ``[M]`` values ``log(1 - D(x~_k))``, the log-probability of the
        correct class "generated" on held-out generated samples.
      unit: ``"nats"`` or ``"bits"``.

    Returns:
      The bound (scalar).

    References:
      The PolyGraph Discrepancy for evaluating graph generative models (2025). Nowozin,
      Cseke & Tomioka, f-GAN, NeurIPS 2016.

    Examples:
      >>> # A classifier certain and right on every sample: disjoint supports, 1 bit.
      >>> float(vb.mi.classifier_js_divergence(jnp.zeros(3), jnp.zeros(2), unit="bits"))
      1.0
      >>> half = jnp.log(jnp.full(3, 0.5))  # D = 1/2 everywhere: no evidence of a difference
      >>> float(vb.mi.classifier_js_divergence(half, half))
      0.0
    """
    if unit not in _UNITS:
        raise ValueError(f"`unit` must be one of {sorted(_UNITS)}, got {unit!r}.")
    real = _checks.vector(log_prob_real, "log_prob_real")
    generated = _checks.vector(log_prob_generated, "log_prob_generated")
    # The ceiling log 2 holds only for log-probabilities (<= 0); positive "log-probabilities"
    # (probabilities or raw logits passed by mistake) would push the value above it. Clamping
    # them to 0 would hide the mistake, so they are an error (NaN under jit).
    valid = True
    for name, values in (("log_prob_real", real), ("log_prob_generated", generated)):
        require(
            lambda v: v <= 0.0,
            values,
            message=f"`{name}` must hold log-probabilities (<= 0); got a positive entry.",
        )
        valid = valid & jnp.all(values <= 0.0)
    bound = math.log(2.0) + 0.5 * jnp.mean(real) + 0.5 * jnp.mean(generated)
    return jnp.where(valid, jnp.maximum(bound, 0.0) * _UNITS[unit], jnp.nan)


def classifier_js_distance(log_prob_real: ArrayLike, log_prob_generated: ArrayLike) -> Array:
    """Lower bound on the JS distance ``sqrt(JS in bits)``, in ``[0, 1]``.

    Args:
      log_prob_real: ``[N]`` values ``log D(x_i)`` on real samples.
      log_prob_generated: ``[M]`` values ``log(1 - D(x~_k))`` on generated samples.

    Returns:
      The bound (scalar).

    References:
      The PolyGraph Discrepancy (2025). Endres & Schindelin, A new metric for probability
      distributions, IEEE Trans. Inf. Theory 2003.

    Examples:
      >>> float(vb.mi.classifier_js_distance(jnp.zeros(3), jnp.zeros(2)))
      1.0
      >>> p = jnp.log(jnp.array([0.75, 0.75]))  # right with probability 3/4 on both sides
      >>> round(float(vb.mi.classifier_js_distance(p, p)), 4)  # sqrt(1 + log2(0.75))
      0.7648
    """
    bits = classifier_js_divergence(log_prob_real, log_prob_generated, unit="bits")
    positive = bits > 0.0
    # sqrt has an infinite slope at 0: take it only where the bound is positive.
    distance = jnp.where(positive, jnp.sqrt(jnp.where(positive, bits, 1.0)), 0.0)
    # NaN (invalid log-probabilities under jit) compares false: keep it rather than report 0.
    return jnp.where(jnp.isnan(bits), jnp.nan, distance)
