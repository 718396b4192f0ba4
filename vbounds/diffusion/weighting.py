"""Weightings of the denoising loss and samplers of the diffusion time ``t``.

A weighting maps ``(gamma_t, gamma'_t)`` to the multiplier ``w`` of ``||eps - eps_hat||^2``
in the continuous-time loss ``E_t[w(t) ||eps - eps_hat||^2]`` with ``t ~ U(0, 1)``. Only
``elbo_weighting`` gives the negative ELBO; the others are documented with what they are
instead. Kingma & Gao (2023) show that a weighting ``0.5 gamma' w(-gamma)`` with ``w``
monotone in ``t`` is the ELBO of noise-augmented data (up to a constant), not of the data.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from vbounds._validation import check_int

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def elbo_weighting(gamma: ArrayLike, dgamma: ArrayLike) -> Array:
    """The ELBO weighting: the diffusion term of the negative ELBO (a bound).

    .. math:: w(t) = \\tfrac12 \\gamma'(t)

    Args:
      gamma: ``gamma_t`` (unused, kept for a common signature).
      dgamma: ``d gamma / dt``.

    Returns:
      ``w``; ``E_t[w ||eps - eps_hat||^2]`` is the continuous-time diffusion loss.

    References:
      Kingma et al., Variational Diffusion Models, 2021.

    Examples:
      >>> round(float(vd.elbo_weighting(0.0, 18.3)), 4)  # gamma' / 2
      9.15
    """
    del gamma
    return 0.5 * jnp.asarray(dgamma)


def simple_weighting(gamma: ArrayLike, dgamma: ArrayLike) -> Array:
    """DDPM's ``L_simple`` weighting, ``w = 1``: not a bound on ``log p(x)``.

    Relative to the ELBO it reweights time by ``2 / gamma'(t)``.

    Args:
      gamma: ``gamma_t``.
      dgamma: ``d gamma / dt`` (unused).

    Returns:
      Ones shaped like ``gamma``.

    References:
      Ho et al., Denoising Diffusion Probabilistic Models, 2020.

    Examples:
      >>> vd.simple_weighting(jnp.array([-5.0, 0.0, 5.0]), 18.3).tolist()
      [1.0, 1.0, 1.0]
    """
    del dgamma
    return jnp.ones_like(jnp.asarray(gamma))


def min_snr_weighting(gamma: ArrayLike, dgamma: ArrayLike, *, k: float = 5.0) -> Array:
    """Min-SNR weighting on top of the ELBO weighting: not a bound on ``log p(x)``.

    .. math:: w(t) = \\tfrac12 \\gamma'(t) \\min(1, k / \\mathrm{SNR}_t)
       = \\tfrac12 \\gamma'(t) \\min(1, k e^{\\gamma_t}).

    The factor is monotone in ``t``, so by Kingma & Gao (2023) this is the ELBO of
    noise-augmented data, a bound on an augmented likelihood only.

    Args:
      gamma: ``gamma_t``.
      dgamma: ``d gamma / dt``.
      k: the SNR clip (Hang et al. used 5).

    Returns:
      ``w``.

    References:
      Hang et al., Efficient Diffusion Training via Min-SNR Weighting Strategy, 2023.

    Examples:
      >>> round(float(vd.min_snr_weighting(0.0, 2.0)), 4)  # SNR = 1 < k: the ELBO weight
      1.0
      >>> round(float(vd.min_snr_weighting(-5.0, 2.0)), 4)  # SNR = e^5: scaled by 5 / e^5
      0.0337
    """
    gamma = jnp.asarray(gamma)
    return 0.5 * jnp.asarray(dgamma) * jnp.minimum(1.0, k * jnp.exp(gamma))


def sigmoid_weighting(gamma: ArrayLike, dgamma: ArrayLike, *, bias: float = 2.0) -> Array:
    """Sigmoid weighting of the ELBO integrand: not a bound on ``log p(x)``.

    .. math:: w(t) = \\tfrac12 \\gamma'(t)\\, \\mathrm{sigmoid}(\\gamma_t + b)

    (``sigmoid(b - lambda)`` with ``lambda = -gamma`` the log-SNR). Monotone in ``t``, so an
    ELBO of noise-augmented data.

    Args:
      gamma: ``gamma_t``.
      dgamma: ``d gamma / dt``.
      bias: the shift ``b``.

    Returns:
      ``w``.

    References:
      Kingma & Gao, Understanding Diffusion Objectives as the ELBO with Simple Data
      Augmentation, 2023.

    Examples:
      >>> round(float(vd.sigmoid_weighting(-2.0, 2.0, bias=2.0)), 4)  # 0.5 * 2 * sigmoid(0)
      0.5
    """
    gamma = jnp.asarray(gamma)
    return 0.5 * jnp.asarray(dgamma) * jax.nn.sigmoid(gamma + bias)


def debiased_weighting(gamma: ArrayLike, dgamma: ArrayLike) -> Array:
    """The debiased weighting of the ``eps`` loss: not a bound on ``log p(x)``.

    .. math:: w(t) = \\mathrm{SNR}_t^{-1/2} = e^{\\gamma_t / 2}

    It replaces ``L_simple``'s constant weight, whose implied error on ``x`` grows like
    ``1/SNR``, by one whose ``x``-space weight is ``SNR^{1/2}``.

    Args:
      gamma: ``gamma_t``.
      dgamma: ``d gamma / dt`` (unused).

    Returns:
      ``w``.

    References:
      Yu et al., Debias the Training of Diffusion Models (Unmasking Bias in Diffusion Model
      Training), 2023.

    Examples:
      >>> round(float(vd.debiased_weighting(2 * jnp.log(3.0), 18.3)), 4)  # SNR^(-1/2) = 3
      3.0
    """
    del dgamma
    return jnp.exp(0.5 * jnp.asarray(gamma))


def stratified_times(key: jax.Array, batch_size: int) -> Array:
    """Low-discrepancy times across a batch: one uniform shift of an even grid.

    .. math:: t_i = (u + i / B) \\bmod 1, \\quad u \\sim U(0, 1)

    Each ``t_i`` is marginally ``U(0, 1)``, so per-example estimates stay unbiased while the
    batch mean has lower variance.

    Args:
      key: PRNG key.
      batch_size: ``B``.

    Returns:
      ``[B]`` times.

    References:
      Kingma et al., Variational Diffusion Models, 2021.

    Examples:
      >>> t = vd.stratified_times(jax.random.key(0), 4)
      >>> [round(d, 4) for d in np.diff(np.sort(t)).tolist()]  # one shift of an even grid
      [0.25, 0.25, 0.25]
    """
    batch_size = check_int(batch_size, "batch_size")
    u = jax.random.uniform(key, ())
    return jnp.mod(u + jnp.arange(batch_size) / batch_size, 1.0)


def antithetic_times(key: jax.Array, batch_size: int) -> Array:
    """Antithetic times: pairs ``(u, 1 - u)``, each marginally ``U(0, 1)``.

    Args:
      key: PRNG key.
      batch_size: an even ``B``.

    Returns:
      ``[B]`` times, the second half mirroring the first.

    References:
      Hammersley & Morton, A new Monte Carlo technique: antithetic variates, 1956.

    Examples:
      >>> t = vd.antithetic_times(jax.random.key(0), 4)
      >>> [round(s, 4) for s in (t[:2] + t[2:]).tolist()]  # pairs (u, 1 - u)
      [1.0, 1.0]
    """
    batch_size = check_int(batch_size, "batch_size")
    if batch_size % 2:
        raise ValueError(f"`batch_size` must be even for antithetic pairs, got {batch_size}.")
    u = jax.random.uniform(key, (batch_size // 2,))
    return jnp.concatenate([u, 1.0 - u])


class ImportanceState(NamedTuple):
    """History of squared losses per time bin, for ``importance_times``.

    Attributes:
      history: ``[num_bins, history_len]`` squared losses, a ring buffer per bin.
      counts: ``[num_bins]`` number of losses recorded per bin.
    """

    history: Array
    counts: Array


def init_importance_state(num_bins: int, *, history_len: int = 10) -> ImportanceState:
    """An empty loss history (sampling is uniform until every bin is full).

    Args:
      num_bins: number of time bins; use ``T`` for discrete time.
      history_len: losses kept per bin (Nichol & Dhariwal used 10).

    Returns:
      An ``ImportanceState``.

    Examples:
      >>> state = vd.init_importance_state(4, history_len=10)
      >>> state.history.shape, state.counts.tolist()
      ((4, 10), [0, 0, 0, 0])
    """
    num_bins = check_int(num_bins, "num_bins")
    history_len = check_int(history_len, "history_len")
    return ImportanceState(
        history=jnp.zeros((num_bins, history_len)), counts=jnp.zeros((num_bins,), jnp.int32)
    )


def importance_probabilities(state: ImportanceState, *, uniform_mix: float = 1e-3) -> Array:
    """Bin probabilities ``p_b`` proportional to the root mean square loss of the bin.

    .. math:: p_b \\propto \\sqrt{E[L_b^2]}, \\text{ mixed with } (1 - \\epsilon) p +
       \\epsilon / B; \\text{ uniform until every bin has a full history.}

    ``sqrt(E[L^2])`` minimises the variance of the importance-weighted estimate
    ``L(t) / (B p_b)``.

    Args:
      state: the loss history.
      uniform_mix: ``epsilon``, keeps every bin reachable.

    Returns:
      ``[num_bins]`` probabilities.

    References:
      Nichol & Dhariwal, Improved Denoising Diffusion Probabilistic Models, 2021.

    Examples:
      >>> vd.importance_probabilities(vd.init_importance_state(4)).tolist()  # uniform until full
      [0.25, 0.25, 0.25, 0.25]
    """
    num_bins, history_len = state.history.shape
    rms = jnp.sqrt(jnp.mean(state.history, axis=1))
    warm = jnp.all(state.counts >= history_len) & (jnp.sum(rms) > 0)
    p = rms / jnp.where(warm, jnp.sum(rms), 1.0)
    p = (1.0 - uniform_mix) * p + uniform_mix / num_bins
    return jnp.where(warm, p, jnp.full((num_bins,), 1.0 / num_bins))


def importance_times(
    key: jax.Array, state: ImportanceState, batch_size: int, *, uniform_mix: float = 1e-3
) -> tuple[Array, Array]:
    """Importance-sampled times and their weights ``1 / (B p_b)``.

    A bin ``b ~ p`` is drawn, then ``t`` uniformly inside it, so ``t`` has density
    ``B p_b``; ``weight * loss(t)`` is an unbiased estimate of ``E_{t ~ U(0, 1)}[loss(t)]``.
    For discrete time with ``T`` bins, ``ceil(t T)`` is the step ``b + 1``.

    Args:
      key: PRNG key.
      state: the loss history.
      batch_size: number of times.
      uniform_mix: see ``importance_probabilities``.

    Returns:
      ``(t, weights)``, both ``[batch_size]``.

    References:
      Nichol & Dhariwal, Improved Denoising Diffusion Probabilistic Models, 2021.

    Examples:
      >>> state = vd.init_importance_state(4)
      >>> t, weights = vd.importance_times(jax.random.key(0), state, 3)
      >>> t.shape, weights.tolist()  # uniform sampling: weights 1 / (B p_b) = 1
      ((3,), [1.0, 1.0, 1.0])
    """
    batch_size = check_int(batch_size, "batch_size")
    num_bins = state.history.shape[0]
    p = importance_probabilities(state, uniform_mix=uniform_mix)
    k_bin, k_u = jax.random.split(key)
    bins = jax.random.categorical(k_bin, jnp.log(p), shape=(batch_size,))
    u = jax.random.uniform(k_u, (batch_size,))
    t = (bins + u) / num_bins
    return t, 1.0 / (num_bins * p[bins])


def update_importance_state(state: ImportanceState, t: ArrayLike, losses: ArrayLike):
    """Records ``losses`` observed at times ``t`` (a pure update; returns the new state).

    Args:
      state: the loss history.
      t: ``[B]`` times in ``[0, 1]``.
      losses: ``[B]`` per-example losses at those times (unweighted).

    Returns:
      The new ``ImportanceState``.

    Examples:
      >>> state = vd.init_importance_state(2, history_len=1)
      >>> state = vd.update_importance_state(state, jnp.array([0.1, 0.9]), jnp.array([1.0, 3.0]))
      >>> state.counts.tolist()
      [1, 1]
      >>> vd.importance_probabilities(state, uniform_mix=0.0).tolist()  # proportional to 1 and 3
      [0.25, 0.75]
    """
    t = jnp.asarray(t)
    losses = jnp.asarray(losses)
    if t.shape != losses.shape or t.ndim != 1:
        raise ValueError(
            f"`t` and `losses` must be 1-D of equal shape, got {t.shape} and {losses.shape}."
        )
    num_bins, history_len = state.history.shape
    bins = jnp.clip(jnp.floor(t * num_bins).astype(jnp.int32), 0, num_bins - 1)

    def record(carry, item):
        history, counts = carry
        b, loss = item
        slot = counts[b] % history_len
        history = history.at[b, slot].set(jax.lax.stop_gradient(loss) ** 2)
        return (history, counts.at[b].add(1)), None

    (history, counts), _ = jax.lax.scan(record, (state.history, state.counts), (bins, losses))
    return ImportanceState(history=history, counts=counts)
