"""The aggregate posterior of a VAE: ELBO decomposition, beta-TCVAE, MIG (``vb.disentangle``).

The aggregate posterior ``q(z) = (1/N) sum_n q(z | x_n)`` of a dataset of ``N`` examples is
estimated from a minibatch of ``M``: ``log_q_pairwise[i, j, d] = log q(z_{i,d} | x_j)`` for
``z_i ~ q(z | x_i)``, and ``log_prior[i, d] = log p(z_{i,d})`` (factorised posterior and
prior). Estimator weights ``w[i, j]`` (each row sums to one) turn the pairwise densities into
``log q(z_i) = logsumexp_j(log w_ij + sum_d lqp[i, j, d])`` and the dimension marginals
``log q(z_{i,d}) = logsumexp_j(log w_ij + lqp[i, j, d])``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vbounds._validation import as_float_array, check_finite_if_concrete, check_int, require

__all__ = [
    "ElboDecomposition",
    "aggregate_log_density",
    "beta_tcvae_loss",
    "density_gap",
    "elbo_decomposition",
    "estimator_log_weights",
    "mig",
]

ESTIMATORS = ("mws", "mss")


class ElboDecomposition(NamedTuple):
    """The KL term of the ELBO split three ways (batch means, nats).

    ``index_code_mi + total_correlation + dimension_kl`` is the batch mean of
    ``log q(z_i | x_i) - log p(z_i)``, the single-sample KL term of the ELBO.
    """

    index_code_mi: jax.Array
    total_correlation: jax.Array
    dimension_kl: jax.Array


def estimator_log_weights(batch_size: int, *, dataset_size: int, estimator: str = "mss"):
    """Log importance weights ``log w[i, j]`` of the minibatch estimators of ``q(z_i)``.

    Every row sums to one. ``"mws"`` (minibatch weighted sampling) is uniform, ``1/M``.
    ``"mss"`` (minibatch stratified sampling) gives the example's own encoder weight
    ``1/N``, the next example in the batch (cyclically) ``(N - M + 1) / (N (M - 1))`` and
    the other ``M - 2`` examples ``1 / (M - 1)`` each; with the batch drawn uniformly
    without replacement, ``sum_j w_ij q(z_i | x_j)`` is then an unbiased estimate of the
    aggregate posterior ``q(z_i)``. ``"mws"`` is exact when the batch is the whole
    dataset (``M = N``).

    Args:
      batch_size: ``M``, a static int (>= 2 for ``"mss"``).
      dataset_size: ``N >= M``, a static int.
      estimator: ``"mws"`` or ``"mss"``.

    Returns:
      ``[M, M]`` float64 log-weights (a NumPy constant).

    References:
      Chen, Li, Grosse & Duvenaud, Isolating Sources of Disentanglement in Variational
      Autoencoders, 2018 (Appendix C).

    Examples:
      >>> w = np.exp(vb.disentangle.estimator_log_weights(3, dataset_size=10))
      >>> [round(float(v), 4) for v in w[0]]  # own 1/N, next (N-M+1)/(N(M-1)), rest 1/(M-1)
      [0.1, 0.4, 0.5]
    """
    m = check_int(batch_size, "batch_size", minimum=1)
    n = check_int(dataset_size, "dataset_size", minimum=1)
    if n < m:
        raise ValueError(f"`dataset_size` ({n}) must be >= the batch size ({m}).")
    if estimator not in ESTIMATORS:
        raise ValueError(f"`estimator` must be one of {ESTIMATORS}, got {estimator!r}.")
    if estimator == "mws":
        return np.full((m, m), -math.log(m))
    if m < 2:
        raise ValueError(f"`estimator`='mss' needs a batch of at least 2, got {m}.")
    w = np.full((m, m), 1.0 / (m - 1))
    rows = np.arange(m)
    w[rows, (rows + 1) % m] = (n - m + 1) / (n * (m - 1))
    w[rows, rows] = 1.0 / n
    return np.log(w)


def _pairwise(log_q_pairwise, log_prior=None):
    lqp = as_float_array(log_q_pairwise, "log_q_pairwise")
    if lqp.ndim != 3 or lqp.shape[0] != lqp.shape[1]:
        raise ValueError(f"`log_q_pairwise` must have shape [M, M, D], got {lqp.shape}.")
    check_finite_if_concrete(lqp, "log_q_pairwise")
    if log_prior is None:
        return lqp, None
    lp = as_float_array(log_prior, "log_prior")
    if lp.shape != (lqp.shape[0], lqp.shape[2]):
        raise ValueError(
            f"`log_prior` must have shape [M, D] = {(lqp.shape[0], lqp.shape[2])}, got {lp.shape}."
        )
    check_finite_if_concrete(lp, "log_prior")
    return lqp, lp


def aggregate_log_density(
    log_q_pairwise: jax.typing.ArrayLike, *, dataset_size: int, estimator: str = "mss"
) -> tuple[jax.Array, jax.Array]:
    """Minibatch estimates of the aggregate posterior's log density at each sample.

    .. math:: \\log q(z_i) = \\operatorname{logsumexp}_j
        \\big(\\log w_{ij} + \\textstyle\\sum_d \\log q(z_{i,d} | x_j)\\big),\\quad
        \\log q(z_{i,d}) = \\operatorname{logsumexp}_j(\\log w_{ij} + \\log q(z_{i,d} | x_j))

    Args:
      log_q_pairwise: ``[M, M, D]``, ``[i, j, d] = log q(z_{i,d} | x_j)``.
      dataset_size: ``N``, the number of examples the batch is drawn from (static).
      estimator: ``"mss"`` or ``"mws"`` (see :func:`estimator_log_weights`).

    Returns:
      ``(log_qz, log_qz_dims)``: ``[M]`` joint and ``[M, D]`` per-dimension estimates.

    References:
      Chen, Li, Grosse & Duvenaud, Isolating Sources of Disentanglement in Variational
      Autoencoders, 2018.

    Examples:
      >>> lqp = jnp.zeros((4, 4, 2))  # every encoder gives density 1 to every sample
      >>> log_qz, log_qz_dims = vb.disentangle.aggregate_log_density(lqp, dataset_size=4)
      >>> round(float(log_qz[0]), 4), log_qz_dims.shape
      (0.0, (4, 2))
    """
    lqp, _ = _pairwise(log_q_pairwise)
    log_w = jnp.asarray(
        estimator_log_weights(lqp.shape[0], dataset_size=dataset_size, estimator=estimator),
        lqp.dtype,
    )
    log_qz = jax.nn.logsumexp(log_w + jnp.sum(lqp, axis=-1), axis=1)
    log_qz_dims = jax.nn.logsumexp(log_w[:, :, None] + lqp, axis=1)
    return log_qz, log_qz_dims


def _per_example_terms(lqp, lp, dataset_size, estimator):
    """Per-example ``(MI_i, TC_i, dimKL_i)``, each ``[M]``."""
    log_qz, log_qz_dims = aggregate_log_density(lqp, dataset_size=dataset_size, estimator=estimator)
    log_qzx = jnp.sum(jnp.diagonal(lqp, axis1=0, axis2=1).T, axis=-1)
    mi = log_qzx - log_qz
    tc = log_qz - jnp.sum(log_qz_dims, axis=-1)
    dim_kl = jnp.sum(log_qz_dims - lp, axis=-1)
    return mi, tc, dim_kl


def elbo_decomposition(
    log_q_pairwise: jax.typing.ArrayLike,
    log_prior: jax.typing.ArrayLike,
    *,
    dataset_size: int,
    estimator: str = "mss",
) -> ElboDecomposition:
    """Splits the ELBO's KL term into index-code MI, total correlation and dimension-wise KL.

    .. math:: \\mathbb{E}_{p(n)} KL(q(z|n) \\| p(z)) = I_q(z; n)
        + KL\\big(q(z) \\| \\textstyle\\prod_d q(z_d)\\big)
        + \\textstyle\\sum_d KL(q(z_d) \\| p(z_d))

    estimated on the batch: MI = ``mean_i(sum_d lqp[i,i,d] - log q(z_i))``, TC =
    ``mean_i(log q(z_i) - sum_d log q(z_{i,d}))``, dimension KL =
    ``mean_i sum_d(log q(z_{i,d}) - log_prior[i,d])``, with the estimates of
    :func:`aggregate_log_density`. Their sum is exactly
    ``mean_i sum_d(lqp[i,i,d] - log_prior[i,d])``; if ``q(z|x)`` does not depend on ``x``,
    MI = TC = 0 exactly. ``"mws"`` with the whole dataset in the batch gives the exact terms
    of the empirical aggregate posterior.

    Args:
      log_q_pairwise: ``[M, M, D]``, ``[i, j, d] = log q(z_{i,d} | x_j)``, ``z_i ~ q(z|x_i)``.
      log_prior: ``[M, D]``, ``log p(z_{i,d})``.
      dataset_size: ``N``, the number of examples the batch is drawn from (static).
      estimator: ``"mss"`` (minibatch stratified) or ``"mws"`` (minibatch weighted).

    Returns:
      :class:`ElboDecomposition` of batch means, nats.

    References:
      Chen, Li, Grosse & Duvenaud, Isolating Sources of Disentanglement in Variational
      Autoencoders, 2018; Hoffman & Johnson, ELBO surgery, 2016.

    Examples:
      >>> lqp = jnp.array([[[0.0], [-2.0]], [[-2.0], [0.0]]])  # two sharp encoders
      >>> terms = vb.disentangle.elbo_decomposition(lqp, jnp.full((2, 1), -1.0),
      ...                                           dataset_size=2, estimator="mws")
      >>> [round(float(t), 4) for t in terms]  # MI, TC (0 for one dimension), dim KL
      [0.5662, 0.0, 0.4338]
    """
    lqp, lp = _pairwise(log_q_pairwise, log_prior)
    mi, tc, dim_kl = _per_example_terms(lqp, lp, dataset_size, estimator)
    return ElboDecomposition(jnp.mean(mi), jnp.mean(tc), jnp.mean(dim_kl))


def beta_tcvae_loss(
    log_likelihood: jax.typing.ArrayLike,
    log_q_pairwise: jax.typing.ArrayLike,
    log_prior: jax.typing.ArrayLike,
    *,
    dataset_size: int,
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 1.0,
    estimator: str = "mss",
) -> jax.Array:
    """Per-example beta-TCVAE loss: the negative ELBO with its three KL parts reweighted.

    .. math:: \\ell_i = -\\log p(x_i | z_i) + \\alpha\\, MI_i + \\beta\\, TC_i
        + \\gamma\\, \\textstyle\\sum_d KL_{i,d}

    with the per-example terms whose batch means :func:`elbo_decomposition` returns. With
    ``alpha = beta = gamma = 1`` it is the single-sample negative ELBO
    ``-(log p(x_i|z_i) + log p(z_i) - log q(z_i|x_i))`` exactly; beta-TCVAE uses
    ``beta > 1`` on the total correlation only. Minimise the batch mean.

    Args:
      log_likelihood: ``[M]``, ``log p(x_i | z_i)``.
      log_q_pairwise: ``[M, M, D]``, ``[i, j, d] = log q(z_{i,d} | x_j)``.
      log_prior: ``[M, D]``, ``log p(z_{i,d})``.
      dataset_size: ``N`` (static).
      alpha: weight of the index-code mutual information.
      beta: weight of the total correlation.
      gamma: weight of the dimension-wise KL.
      estimator: ``"mss"`` or ``"mws"``.

    Returns:
      ``[M]`` losses (nats).

    References:
      Chen, Li, Grosse & Duvenaud, Isolating Sources of Disentanglement in Variational
      Autoencoders, 2018.

    Examples:
      >>> lqp = jnp.array([[[0.0], [-2.0]], [[-2.0], [0.0]]])
      >>> loss = vb.disentangle.beta_tcvae_loss(jnp.array([-3.0, -3.0]), lqp,
      ...     jnp.full((2, 1), -1.0), dataset_size=2, estimator="mws")
      >>> round(float(loss.mean()), 4)  # = 3 + (0 - (-1)): the negative ELBO
      4.0
    """
    lqp, lp = _pairwise(log_q_pairwise, log_prior)
    ll = as_float_array(log_likelihood, "log_likelihood")
    if ll.shape != (lqp.shape[0],):
        raise ValueError(
            f"`log_likelihood` must have shape [M] = ({lqp.shape[0]},), got {ll.shape}."
        )
    mi, tc, dim_kl = _per_example_terms(lqp, lp, dataset_size, estimator)
    return -ll + alpha * mi + beta * tc + gamma * dim_kl


def density_gap(
    log_q_pairwise: jax.typing.ArrayLike,
    log_prior: jax.typing.ArrayLike,
    *,
    dataset_size: int,
    estimator: str = "mss",
    per_dimension: bool = False,
) -> jax.Array:
    """Per-example density gap ``log q(z_i) - log p(z_i)`` between aggregate posterior and prior.

    .. math:: g_i = \\log q(z_i) - \\log p(z_i),\\qquad
        \\mathbb{E}_{q(z)}[g] = KL(q(z) \\| p(z))

    with ``log q(z_i)`` the minibatch estimate of :func:`aggregate_log_density`. Used in
    place of the per-example KL of the ELBO it regularises the aggregate posterior towards
    the prior without pushing each ``q(z|x)`` onto it (so without the mutual-information
    penalty that drives posterior collapse). ``per_dimension=True`` gives
    ``sum_d (log q(z_{i,d}) - log p(z_{i,d}))`` instead, whose batch mean is the
    ``dimension_kl`` of :func:`elbo_decomposition`; the joint form's batch mean is
    ``total_correlation + dimension_kl``. Add the batch mean (times a weight) to the loss.

    Args:
      log_q_pairwise: ``[M, M, D]``, ``[i, j, d] = log q(z_{i,d} | x_j)``.
      log_prior: ``[M, D]``, ``log p(z_{i,d})``.
      dataset_size: ``N`` (static).
      estimator: ``"mss"`` or ``"mws"``.
      per_dimension: the sum of per-dimension gaps instead of the joint gap.

    Returns:
      ``[M]`` gaps (nats).

    References:
      Zhang, Wang, Zhang & Liu, Improving Variational Autoencoders with Density Gap-based
      Regularization, 2022.

    Examples:
      >>> lqp = jnp.zeros((2, 2, 3))  # q(z|x) = q(z), density 1 at every sample
      >>> gap = vb.disentangle.density_gap(lqp, jnp.full((2, 3), -1.0), dataset_size=2)
      >>> [round(float(g), 4) for g in gap]  # log 1 - 3 * (-1)
      [3.0, 3.0]
    """
    lqp, lp = _pairwise(log_q_pairwise, log_prior)
    log_qz, log_qz_dims = aggregate_log_density(lqp, dataset_size=dataset_size, estimator=estimator)
    if per_dimension:
        return jnp.sum(log_qz_dims - lp, axis=-1)
    return log_qz - jnp.sum(lp, axis=-1)


def _histogram_entropy(counts: jax.Array, axis) -> jax.Array:
    """``-sum p log p`` of non-negative counts over ``axis`` (0 log 0 = 0)."""
    p = counts / jnp.sum(counts, axis=axis, keepdims=True)
    safe = jnp.where(p > 0, p, 1.0)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(safe), 0.0), axis=axis)


@functools.partial(jax.jit, static_argnames=("num_bins", "num_values"))
def _mig_information(f, c, *, num_bins, num_values):
    """Empirical ``I(code_d; factor_k)`` ``[K, D]`` and ``H(factor_k)`` ``[K]``, nats."""
    lo = jnp.min(c, axis=0)
    width = jnp.max(c, axis=0) - lo
    scaled = (c - lo) / jnp.where(width > 0, width, 1.0)
    bins = jnp.clip(jnp.floor(scaled * num_bins).astype(jnp.int32), 0, num_bins - 1)
    code_onehot = jax.nn.one_hot(bins, num_bins, dtype=c.dtype)  # [N, D, B]
    factor_onehot = jax.nn.one_hot(f, num_values, dtype=c.dtype)  # [N, K, V]
    joint = jnp.einsum("ndb,nkv->kdvb", code_onehot, factor_onehot)  # counts
    h_code = _histogram_entropy(jnp.sum(joint, axis=2), axis=-1)  # [K, D]
    h_factor = _histogram_entropy(jnp.sum(joint[:, 0], axis=-1), axis=-1)  # [K]
    h_joint = _histogram_entropy(joint.reshape(*joint.shape[:2], -1), axis=-1)  # [K, D]
    return h_code + h_factor[:, None] - h_joint, h_factor


def mig(
    factors: jax.typing.ArrayLike,
    codes: jax.typing.ArrayLike,
    *,
    num_bins: int = 20,
    num_values: int | None = None,
) -> jax.Array:
    """Mutual information gap of a representation against known factors of variation.

    .. math:: MIG = \\frac{1}{K} \\sum_k \\frac{I(c_{d^{(1)}_k}; v_k) - I(c_{d^{(2)}_k}; v_k)}
        {H(v_k)}

    where ``d^(1)_k, d^(2)_k`` are the code dimensions with the largest and second-largest
    (empirical) mutual information with factor ``k``. Each code dimension is discretised
    into ``num_bins`` equal-width bins between its minimum and maximum. 1 when every factor
    is copied into its own dimension, 0 for codes independent of the factors.

    Args:
      factors: ``[N, K]`` integers in ``[0, num_values)``; no factor may be constant.
      codes: ``[N, D]`` floats, ``D >= 2`` (e.g. the posterior means).
      num_bins: bins per code dimension (static).
      num_values: a bound on the number of values of each factor (static); ``None``
        reads it off concrete ``factors`` (pass it under ``jax.jit``).

    Returns:
      The scalar MIG in ``[0, 1]``.

    References:
      Chen, Li, Grosse & Duvenaud, Isolating Sources of Disentanglement in Variational
      Autoencoders, 2018.

    Examples:
      >>> factors = jnp.array([[0], [0], [1], [1]])
      >>> codes = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
      >>> round(float(vb.disentangle.mig(factors, codes, num_bins=2)), 4)  # dim 0 copies it
      1.0
    """
    num_bins = check_int(num_bins, "num_bins", minimum=2)
    f = jnp.asarray(factors)
    if not jnp.issubdtype(f.dtype, jnp.integer):
        raise TypeError(f"`factors` must be an integer array, got dtype {f.dtype}.")
    if f.ndim != 2 or f.shape[0] == 0:
        raise ValueError(f"`factors` must have shape [N, K] with N >= 1, got {f.shape}.")
    c = as_float_array(codes, "codes")
    if c.ndim != 2 or c.shape[0] != f.shape[0] or c.shape[1] < 2:
        raise ValueError(
            f"`codes` must have shape [N, D] with N = {f.shape[0]} and D >= 2, got {c.shape}."
        )
    check_finite_if_concrete(c, "codes")
    if num_values is None:
        if isinstance(f, jax.core.Tracer):
            raise TypeError("`num_values` must be given when `factors` is traced (under jit).")
        num_values = int(jnp.max(f)) + 1
    num_values = check_int(num_values, "num_values", minimum=1)
    require(
        lambda v: (v >= 0) & (v < num_values),
        f,
        message=f"`factors` must lie in [0, num_values) = [0, {num_values}).",
    )
    info, h_factor = _mig_information(f, c, num_bins=num_bins, num_values=num_values)
    require(
        lambda h: h > 0,
        h_factor,
        message="`factors` has a constant column (zero entropy): MIG is undefined for it.",
    )
    top2 = jax.lax.top_k(info, 2)[0]
    return jnp.mean((top2[:, 0] - top2[:, 1]) / h_factor)
