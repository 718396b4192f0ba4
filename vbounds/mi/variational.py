"""Bounds on mutual information from variational conditionals and encoders.

Lower bound (Barber-Agakov), upper bounds (CLUB, the KL rate) and the variational
information bottleneck objective. Inputs are log-densities the caller computes with
its own model (e.g. distrax ``log_prob`` / ``kl_divergence``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array
from vbounds.bounds import weighted_elbo
from vbounds.mi import _checks

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def barber_agakov(log_q_x_given_y: ArrayLike, entropy_x: ArrayLike) -> Array:
    """Barber-Agakov variational information-maximisation lower bound.

    .. math::
        I(x; y) \\ge H(x) + E_{p(x, y)} \\log q(x | y)

    The gap is ``E_y KL(p(x|y) || q(x|y))``: exact when ``q`` is the true conditional.

    Args:
      log_q_x_given_y: ``[N]`` values ``log q(x_i | y_i)`` on joint pairs.
      entropy_x: ``H(x)`` in nats (known, e.g. for a data distribution or a prior).

    Returns:
      The bound (scalar, nats).

    References:
      Barber & Agakov, The IM Algorithm: A Variational Approach to Information
      Maximization, NeurIPS 2003.

    Examples:
      >>> # x uniform on 4 values, q(x | y) certain and right: I = H(x) = log 4.
      >>> round(float(vb.mi.barber_agakov(jnp.zeros(5), entropy_x=jnp.log(4.0))), 4)
      1.3863
    """
    log_q = _checks.vector(log_q_x_given_y, "log_q_x_given_y")
    h = as_float_array(entropy_x, "entropy_x")
    if h.ndim != 0:
        raise ValueError(f"`entropy_x` must be a scalar, got shape {h.shape}.")
    return h + jnp.mean(log_q)


def club(log_q_y_given_x_matrix: ArrayLike) -> Array:
    """Contrastive log-ratio upper bound (CLUB) on ``I(x; y)``.

    .. math::
        I_{CLUB} = \\operatorname{mean}_i \\log q(y_i | x_i)
            - \\operatorname{mean}_{i \\ne j} \\log q(y_j | x_i)

    An upper bound when ``q(y|x)`` is the true conditional (and whenever
    ``KL(p(x,y) || q) <= KL(p(x)p(y) || q)``). Marginal pairs are the off-diagonal entries.

    Args:
      log_q_y_given_x_matrix: ``[N, N]`` values ``log q(y_j | x_i)`` at ``[i, j]``.

    Returns:
      The bound (scalar, nats).

    References:
      Cheng et al., CLUB: A Contrastive Log-ratio Upper Bound of Mutual Information,
      ICML 2020.

    Examples:
      >>> log_q = jnp.array([[0.0, -2.0], [-2.0, 0.0]])  # log q(y_j | x_i) at [i, j]
      >>> float(vb.mi.club(log_q))
      2.0
    """
    m = _checks.square_scores(log_q_y_given_x_matrix, "log_q_y_given_x_matrix")
    n = m.shape[0]
    off_sum = jnp.sum(m) - jnp.trace(m)
    return jnp.mean(jnp.diagonal(m)) - off_sum / (n * (n - 1))


def club_sampled(log_q_joint: ArrayLike, log_q_marginal: ArrayLike) -> Array:
    """Sampled CLUB (CLUB-S): O(N) with one negative per pair.

    .. math::
        \\operatorname{mean}_i \\big[\\log q(y_i | x_i) - \\log q(y_{k_i} | x_i)\\big]

    with ``k_i`` drawn uniformly from the other pairs (e.g. ``k = (i + r) mod N`` for a
    random shift ``r in 1..N-1``, or a random derangement). Its expectation is `club`'s.

    Args:
      log_q_joint: ``[N]`` values ``log q(y_i | x_i)``.
      log_q_marginal: ``[N]`` values ``log q(y_{k_i} | x_i)``.

    Returns:
      The bound (scalar, nats).

    References:
      Cheng et al., CLUB: A Contrastive Log-ratio Upper Bound of Mutual Information,
      ICML 2020.

    Examples:
      >>> float(vb.mi.club_sampled(jnp.array([0.0, 0.0]), jnp.array([-2.0, -2.0])))
      2.0
    """
    joint = _checks.vector(log_q_joint, "log_q_joint")
    marginal = _checks.vector(log_q_marginal, "log_q_marginal", joint.shape[0])
    return jnp.mean(joint - marginal)


def kl_rate(kl: ArrayLike, axis: int = 0) -> Array:
    """The rate: variational upper bound on the representational MI ``I(x; z)``.

    .. math::
        I(x; z) \\le E_{p(x)} KL\\big(q(z | x) \\,\\|\\, r(z)\\big)

    for any marginal ``r(z)``; tight when ``r`` is the aggregate posterior
    ``E_x q(z|x)``. This is the rate of the information bottleneck and the capacity that
    Capacitron constrains.

    Args:
      kl: ``KL(q(z | x_i) || r(z))`` per example, with the examples along ``axis``.
      axis: the example axis (reduced).

    Returns:
      The bound, reduced over ``axis`` (nats).

    References:
      Alemi et al., Deep Variational Information Bottleneck, ICLR 2017. Battenberg et al.,
      Effective Use of Variational Embedding Capacity in Expressive End-to-End Speech
      Synthesis (Capacitron), 2019.

    Examples:
      >>> float(vb.mi.kl_rate(jnp.array([0.5, 1.5])))
      1.0
    """
    k = as_float_array(kl, "kl", min_ndim=1)
    return jnp.mean(k, axis=axis)


def vib_loss(log_likelihood: ArrayLike, kl: ArrayLike, *, beta: float) -> Array:
    """Variational information bottleneck loss, per example.

    .. math::
        L = -\\log q(y | z) + \\beta\\, KL\\big(q(z | x) \\,\\|\\, r(z)\\big)

    Its mean over ``x, y, z ~ q(z|x)`` upper-bounds ``beta I(x; z) - I(z; y) + H(y)``.

    Args:
      log_likelihood: ``log q(y | z)`` of the decoder/classifier at a sample ``z``.
      kl: ``KL(q(z | x) || r(z))``, broadcastable with ``log_likelihood``.
      beta: trade-off ``beta >= 0``.

    Returns:
      The per-example loss (the broadcast shape), to be minimised.

    References:
      Alemi et al., Deep Variational Information Bottleneck, ICLR 2017.

    Examples:
      >>> loss = vb.mi.vib_loss(jnp.array([-0.1, -2.0]), jnp.array([3.0, 1.0]), beta=0.01)
      >>> [round(float(v), 4) for v in loss]  # -log q(y|z) + beta KL, per example
      [0.13, 2.01]
    """
    _checks.scalar_in(beta, "beta", low=0.0, high=math.inf, low_open=False, high_open=True)
    # The negated beta-weighted ELBO: one implementation of the weighted objective.
    return -weighted_elbo(log_likelihood, kl, beta=beta)
