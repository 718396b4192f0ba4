"""Bounds for implicit and semi-implicit variational families.

A semi-implicit ``q(z) = E_{psi ~ q(psi)} q(z | psi)`` has an explicit conditional but no
tractable marginal; :func:`sivi` is the surrogate lower bound of Yin & Zhou that replaces
``log q(z)`` by a ``K + 1``-sample mixture estimate, increasing in ``K`` towards the ELBO.
A fully implicit sampler ``z = g(eps) + sigma * eta`` has no density at all;
:func:`linearized_entropy` approximates its entropy by linearising ``g`` around each draw
(Uppal et al.'s LIVI), which needs only the Jacobian of ``g``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from vbounds._validation import (
    as_float_array,
    check_finite_if_concrete,
    check_nonempty,
    normalize_axis,
    require,
)

__all__ = ["sivi", "linearized_entropy"]


def sivi(
    log_joint: jax.typing.ArrayLike, log_q_conditional: jax.typing.ArrayLike, axis: int = 0
) -> jax.Array:
    """Semi-implicit VI surrogate bound, one draw of ``z`` per example.

    .. math:: \\underline{\\mathcal{L}}_K = \\log p(x, z)
        - \\log \\frac{1}{K + 1} \\sum_{k=0}^{K} q(z \\mid \\psi_k),
        \\quad \\psi_0, \\dots, \\psi_K \\sim q(\\psi),\\ z \\sim q(z \\mid \\psi_0)

    The mixture includes ``psi_0``, the mixing draw that generated ``z``: that makes its
    expectation a lower bound on the ELBO of the marginal ``q(z)`` (hence on ``log p(x)``),
    non-decreasing in ``K`` and equal to it as ``K -> inf``. ``K = 0`` is the ELBO of the
    conditional ``q(z | psi_0)`` alone.

    Args:
      log_joint: ``log p(x, z)`` for the draw ``z``, shape ``[...]``.
      log_q_conditional: ``log q(z | psi_k)``, ``K + 1`` values along ``axis`` with the
        generating ``psi_0`` first; the other axes match ``log_joint``.
      axis: the mixing-sample axis of ``log_q_conditional``.

    Returns:
      ``[...]`` per-draw surrogate bounds; their mean over draws estimates the bound.

    References:
      Yin & Zhou, Semi-Implicit Variational Inference, 2018.

    Examples:
      >>> # q(z | psi) values 0.5 (generating psi) and 0.1 (another psi), p(x, z) = 0.2.
      >>> value = vb.implicit.sivi(jnp.log(0.2), jnp.log(jnp.array([0.5, 0.1])))
      >>> round(float(value), 4)  # log 0.2 - log 0.3
      -0.4055
    """
    lq = as_float_array(log_q_conditional, "log_q_conditional", min_ndim=1)
    ax = normalize_axis(axis, lq.ndim)
    check_nonempty(lq, ax, "log_q_conditional")
    check_finite_if_concrete(lq, "log_q_conditional")
    lj = as_float_array(log_joint, "log_joint")
    expected = lq.shape[:ax] + lq.shape[ax + 1 :]
    if lj.shape != expected:
        raise ValueError(
            f"`log_joint` must have shape {expected} (`log_q_conditional` without `axis`), "
            f"got {lj.shape}."
        )
    return lj - (jax.nn.logsumexp(lq, axis=ax) - math.log(lq.shape[ax]))


def linearized_entropy(
    generator: Callable[[jax.Array], jax.Array],
    eps: jax.typing.ArrayLike,
    *,
    noise_variance: float | jax.Array,
) -> jax.Array:
    """Locally linearised entropy of an implicit sampler ``z = g(eps) + sigma * eta``.

    .. math:: \\hat H(\\epsilon) = \\tfrac{d_z}{2} \\log(2 \\pi e)
        + \\tfrac12 \\log\\det\\big(J(\\epsilon) J(\\epsilon)^\\top + \\sigma^2 I\\big),
        \\qquad J = \\partial g / \\partial \\epsilon,\\ \\epsilon \\sim \\mathcal{N}(0, I)

    Around each draw ``q`` is replaced by the Gaussian ``N(g(eps), J J^T + sigma^2 I)`` of
    the linearised generator; the mean of ``H_hat`` over draws estimates the entropy of
    ``q`` without ``q.log_prob``, for the entropy term of an ELBO. It is exact for an
    affine ``g``, and for an invertible ``g`` (``d_eps = d_z``) it tends to the exact
    ``H(eps) + E log |det J|`` as ``sigma -> 0``; otherwise it is an approximation, not a
    bound. The determinant is taken in the smaller of the two dimensions.

    Args:
      generator: ``g``, maps one ``[d_eps]`` noise vector to one ``[d_z]`` sample;
        differentiable.
      eps: ``[S, d_eps]`` standard-normal draws.
      noise_variance: ``sigma^2 >= 0``, the variance of the added Gaussian noise (must be
        positive when ``d_eps < d_z``, or the entropy is ``-inf``).

    Returns:
      ``[S]`` per-draw entropy estimates, nats.

    References:
      Uppal, Stensbo-Smidt, Boomsma & Frellsen, Implicit Variational Inference for
      High-Dimensional Posteriors, 2023.

    Examples:
      >>> g = lambda e: 2.0 * e  # q = N(0, 4 + 1)
      >>> h = vb.implicit.linearized_entropy(g, jnp.zeros((3, 1)), noise_variance=1.0)
      >>> round(float(h[0]), 4), round(0.5 * float(jnp.log(2 * jnp.pi * jnp.e * 5.0)), 4)
      (2.2237, 2.2237)
    """
    eps = as_float_array(eps, "eps", min_ndim=2)
    if eps.ndim != 2:
        raise ValueError(f"`eps` must be [S, d_eps], got shape {eps.shape}.")
    check_nonempty(eps, 0, "eps")
    var = as_float_array(noise_variance, "noise_variance")
    if var.shape != ():
        raise ValueError(f"`noise_variance` must be a scalar, got shape {var.shape}.")
    require(lambda v: v >= 0, var, message="`noise_variance` must be non-negative.")
    out = jax.eval_shape(generator, jax.ShapeDtypeStruct(eps.shape[1:], eps.dtype))
    if len(out.shape) != 1:
        raise ValueError(f"`generator` must map [d_eps] to [d_z], got output {out.shape}.")
    d_z, d_eps = out.shape[0], eps.shape[1]

    def one(e):
        jac = jax.jacfwd(generator)(e)
        # det(J J^T + s I_dz) = s^(dz - de) det(J^T J + s I_de): use the smaller Gram matrix.
        gram = jac @ jac.T if d_z <= d_eps else jac.T @ jac
        small = gram.shape[0]
        _, logdet = jnp.linalg.slogdet(gram + var * jnp.eye(small, dtype=gram.dtype))
        if d_z > small:  # static; skipping it keeps sigma = 0 finite when d_eps >= d_z
            logdet = logdet + (d_z - small) * jnp.log(var)
        return logdet

    logdets = jax.vmap(one)(eps)
    return 0.5 * d_z * math.log(2 * math.pi * math.e) + 0.5 * logdets
