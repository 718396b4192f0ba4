"""Gaussian diffusion bounds: VDM's continuous- and discrete-time VLB, DDPM's parts.

Conventions (Kingma et al. 2021): ``gamma(t)`` increasing on ``t in [0, 1]``,
``sigma_t^2 = sigmoid(gamma_t)``, ``alpha_t^2 = sigmoid(-gamma_t)``,
``z_t = alpha_t x + sigma_t eps``, ``SNR_t = exp(-gamma_t)``. Every function returns loss
terms (the negative ELBO, in nats) for one example; ``jax.vmap`` over a batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import distrax
import jax
import jax.numpy as jnp

from vbounds._validation import check_int, require
from vbounds.diffusion._common import (
    VLBTerms,
    check_broadcasts_to,
    check_callable,
    check_choice,
    check_num_steps,
    float_data,
)
from vbounds.diffusion.weighting import elbo_weighting

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

DECODERS = frozenset({"gaussian", "discretized", "binned"})
_DECREASING = (
    "`gamma_fn` must be increasing in t (gamma = -log SNR rises with the noise); "
    "it decreases (or is NaN) at the given t."
)
_LOG_2PI = math.log(2.0 * math.pi)


def _alpha_sigma(gamma: Array) -> tuple[Array, Array]:
    return jnp.sqrt(jax.nn.sigmoid(-gamma)), jnp.sqrt(jax.nn.sigmoid(gamma))


def prior_kl(x: ArrayLike, gamma_1: ArrayLike) -> Array:
    """Exact ``KL(q(z_1 | x) || N(0, I))``, summed over the event.

    .. math:: \\tfrac12 \\sum_i \\left[\\alpha_1^2 (x_i^2 - 1) + \\mathrm{softplus}(-\\gamma_1)
       \\right]

    (``sigma^2 - 1 = -alpha^2`` and ``-log sigma^2 = softplus(-gamma)``, exact in float32.)

    Args:
      x: one example, any shape.
      gamma_1: ``gamma(1)``, scalar or broadcasting to ``x``.

    Returns:
      A scalar.

    References:
      Kingma et al., Variational Diffusion Models, 2021.

    Examples:
      >>> # gamma_1 = 0: z_1 ~ N(x / sqrt 2, 1/2); KL = 0.5 (x^2 / 2 - 1/2 + log 2) per dimension
      >>> round(float(vd.prior_kl(jnp.array([1.0, -1.0]), 0.0)), 4)
      0.6931
    """
    x = float_data(x, "x")
    gamma_1 = jnp.asarray(gamma_1)
    kl = 0.5 * (jax.nn.sigmoid(-gamma_1) * (x**2 - 1.0) + jax.nn.softplus(-gamma_1))
    return jnp.sum(jnp.broadcast_to(kl, x.shape))


def _gaussian_prior_kl(x, gamma_k, prior_mean, prior_log_variance):
    """KL(N(alpha_k x, sigma_k^2) || N(m, exp(log_v))), summed."""
    alpha_k, _ = _alpha_sigma(gamma_k)
    log_var_q = jax.nn.log_sigmoid(gamma_k)
    diff = alpha_k * x - prior_mean
    kl = 0.5 * (
        jnp.exp(log_var_q - prior_log_variance)
        + diff**2 * jnp.exp(-prior_log_variance)
        - 1.0
        + prior_log_variance
        - log_var_q
    )
    return jnp.sum(jnp.broadcast_to(kl, x.shape))


def _grid(num_bins: int) -> Array:
    return jnp.linspace(-1.0, 1.0, num_bins)


def _bin_index(x: Array, num_bins: int) -> Array:
    return jnp.clip(jnp.round((x + 1.0) * 0.5 * (num_bins - 1)), 0, num_bins - 1).astype(int)


def _log_normal_mass(lo, hi, lo_is_inf, hi_is_inf):
    """log(Phi(hi) - Phi(lo)) for standardised edges, taking the tail with the least mass."""
    lo_in = jnp.where(lo_is_inf, 0.0, lo)
    hi_in = jnp.where(hi_is_inf, 0.0, hi)
    log_cdf_lo = jnp.where(lo_is_inf, -jnp.inf, jax.scipy.special.log_ndtr(lo_in))
    log_cdf_hi = jnp.where(hi_is_inf, 0.0, jax.scipy.special.log_ndtr(hi_in))
    log_sf_lo = jnp.where(lo_is_inf, 0.0, jax.scipy.special.log_ndtr(-lo_in))
    log_sf_hi = jnp.where(hi_is_inf, -jnp.inf, jax.scipy.special.log_ndtr(-hi_in))
    upper = lo > 0
    small = jnp.where(upper, log_sf_hi, log_cdf_lo)
    large = jnp.where(upper, log_sf_lo, log_cdf_hi)
    # The floor only acts when the two CDF values round to the same float32.
    return large + jnp.log(jnp.maximum(-jnp.expm1(small - large), 1e-30))


def _decoder_nll_from_residual(x, residual, gamma_0, decoder, num_bins):
    """-log p(x | z_0) given the standardised residual r = (z_0 / alpha_0 - x) e^{-gamma_0/2}.

    The decoder's mean is ``z_0 / alpha_0`` and its variance ``sigma_0^2 / alpha_0^2 =
    exp(gamma_0)``; working with ``r`` (which is ``eps_0`` when ``z_0`` was sampled) avoids
    the cancellation in ``x - z_0 / alpha_0`` at very negative ``gamma_0``.
    """
    gamma_0 = jnp.broadcast_to(gamma_0, x.shape)
    if decoder == "gaussian":
        nll = 0.5 * (_LOG_2PI + gamma_0 + residual**2)
        return jnp.sum(nll)
    inv_scale = jnp.exp(-0.5 * gamma_0)
    grid = _grid(num_bins)
    index = _bin_index(x, num_bins)
    if decoder == "discretized":
        # Per-dimension softmax over the grid values v_k with logits -0.5 (x_hat - v_k)^2 / var.
        scaled = (x[..., None] - grid) * inv_scale[..., None] + residual[..., None]
        log_probs = jax.nn.log_softmax(-0.5 * scaled**2, axis=-1)
        return -jnp.sum(jnp.take_along_axis(log_probs, index[..., None], axis=-1))
    half_width = 1.0 / (num_bins - 1)
    value = grid[index]
    lo = (value - half_width - x) * inv_scale - residual
    hi = (value + half_width - x) * inv_scale - residual
    return -jnp.sum(_log_normal_mass(lo, hi, index == 0, index == num_bins - 1))


def decoder_nll(
    x: ArrayLike,
    z_0: ArrayLike,
    gamma_0: ArrayLike,
    *,
    decoder: str = "gaussian",
    num_bins: int = 256,
) -> Array:
    """``-log p(x | z_0)`` for the Gaussian or a discretised decoder, summed over the event.

    The decoder is centred at ``x_hat = z_0 / alpha_0`` with variance ``exp(gamma_0)``:

    - ``"gaussian"``: density ``N(x; x_hat, exp(gamma_0))`` (continuous data, nats).
    - ``"discretized"``: VDM's per-dimension softmax over the ``num_bins`` grid values
      ``v_k`` in ``[-1, 1]`` with logits ``-0.5 (x_hat - v_k)^2 / exp(gamma_0)``.
    - ``"binned"``: DDPM's Gaussian mass of the bin ``[v - 1/(K-1), v + 1/(K-1)]``, with the
      outer bins extended to infinity.

    The discrete decoders expect ``x`` on the grid ``-1 + 2k / (num_bins - 1)`` (8-bit data
    scaled to ``[-1, 1]``) and return a probability, not a density.

    Args:
      x: data, any shape.
      z_0: the latent at ``t = 0``, shape of ``x``.
      gamma_0: ``gamma(0)``, scalar or per dimension.
      decoder: ``"gaussian"``, ``"discretized"`` or ``"binned"``.
      num_bins: grid size of the discrete decoders (256 for 8-bit data).

    Returns:
      A scalar (nats).

    References:
      Kingma et al., Variational Diffusion Models, 2021; Ho et al., Denoising Diffusion
      Probabilistic Models, 2020.

    Examples:
      >>> x, gamma_0 = jnp.array([0.5]), 0.0
      >>> z_0 = jnp.sqrt(jax.nn.sigmoid(-gamma_0)) * x  # z_0 = alpha_0 x: no noise
      >>> round(float(vd.decoder_nll(x, z_0, gamma_0)), 4)  # N(x; x, e^0): log(2 pi) / 2
      0.9189
      >>> grid = jnp.linspace(-1.0, 1.0, 4)  # data on a 4-level grid
      >>> probs = [jnp.exp(-vd.decoder_nll(v[None], jnp.zeros(1), 0.0, decoder="binned",
      ...                                   num_bins=4)) for v in grid]
      >>> round(float(sum(probs)), 4)  # the bins' masses sum to one
      1.0
    """
    x = float_data(x, "x")
    z_0 = float_data(z_0, "z_0")
    if z_0.shape != x.shape:
        raise ValueError(f"`z_0` must have the shape of `x` {x.shape}, got {z_0.shape}.")
    check_choice(decoder, DECODERS, "decoder")
    num_bins = check_int(num_bins, "num_bins")
    gamma_0 = jnp.asarray(gamma_0)
    alpha_0, _ = _alpha_sigma(gamma_0)
    residual = (z_0 / alpha_0 - x) * jnp.exp(-0.5 * gamma_0)
    return _decoder_nll_from_residual(x, residual, gamma_0, decoder, num_bins)


def diffusion_loss(
    x: ArrayLike,
    eps: ArrayLike,
    t: ArrayLike,
    eps_fn: Callable,
    gamma_fn: Callable,
    *,
    num_steps: int | None = None,
    t_max: float = 1.0,
    weighting: Callable = elbo_weighting,
) -> Array:
    """The diffusion loss at given ``t`` and ``eps`` (the deterministic core of the VLB).

    Continuous time (``num_steps=None``), with ``gamma'`` by forward-mode autodiff:

    .. math:: L = t_{max}\\, w(\\gamma_t, \\gamma'_t)\\, ||\\epsilon - \\hat\\epsilon(z_t, t)||^2,
       \\quad w = \\tfrac12 \\gamma' \\text{ for the ELBO},

    whose expectation over ``t ~ U(0, t_max)`` and ``eps`` is the diffusion term. Discrete
    time with ``T = num_steps`` steps on ``[0, t_max]``: ``t`` is moved to the grid point
    ``t_i = t_max ceil(t T / t_max) / T`` (so ``t ~ U(0, t_max)`` gives ``i ~ U{1..T}``; to
    select step ``i`` pass the midpoint ``t = t_max (i - 1/2) / T``, since a grid point itself
    may round to the next step in float32) and

    .. math:: L = \\tfrac12 T\\, \\mathrm{expm1}(\\gamma_{t_i} - \\gamma_{s})
       ||\\epsilon - \\hat\\epsilon(z_{t_i}, t_i)||^2, \\quad s = t_i - t_{max} / T.

    A per-dimension ``t`` (``t`` shaped like ``x``, Diffusion Forcing) or a per-dimension
    schedule (``gamma_fn(t)`` shaped like ``x``, MuLAN) weights each dimension by its own
    ``gamma'``; ``gamma_fn`` must then act elementwise on ``t``.

    A concrete ``t`` outside ``[0, t_max]``, or a schedule that decreases at ``t``
    (``gamma' < 0``, or ``gamma_{t_i} < gamma_s`` in discrete time), raises ``ValueError``:
    either would return a meaningless, possibly negative, "loss". Under ``jit`` these
    checks need :func:`vbounds.checking.checked`.

    Args:
      x: one example.
      eps: standard normal noise, shape of ``x``.
      t: a scalar time in ``[0, t_max]``, or one per dimension.
      eps_fn: ``eps_fn(z_t, t) -> eps_hat`` shaped like ``x``.
      gamma_fn: ``gamma_fn(t) -> gamma_t``, scalar or per dimension.
      num_steps: ``None`` for continuous time, else ``T``.
      t_max: the end of the diffused interval (1 for the full bound; ``< 1`` for shallow
        diffusion).
      weighting: continuous time only; ``weighting(gamma, dgamma)`` multiplies the squared
        error. Only ``elbo_weighting`` gives the bound.

    Returns:
      A scalar.

    References:
      Kingma et al., Variational Diffusion Models, 2021 (eqs. 17 and 43);
      Chen et al., Diffusion Forcing, 2024.

    Examples:
      >>> x, eps = jnp.zeros(1), jnp.ones(1)
      >>> zero = lambda z_t, t: jnp.zeros(1)  # a denoiser that predicts no noise
      >>> # continuous time: 0.5 gamma' ||eps||^2 = 0.5 * (5 + 13.3)
      >>> round(float(vd.diffusion_loss(x, eps, 0.5, zero, vd.linear_gamma)), 4)
      9.15
      >>> # T = 10 steps: 0.5 T expm1(gamma_t - gamma_s) ||eps||^2 = 5 expm1(1.83)
      >>> round(float(vd.diffusion_loss(x, eps, 0.5, zero, vd.linear_gamma, num_steps=10)), 4)
      26.1694
    """
    x = float_data(x, "x")
    eps = float_data(eps, "eps")
    if eps.shape != x.shape:
        raise ValueError(f"`eps` must have the shape of `x` {x.shape}, got {eps.shape}.")
    t = jnp.asarray(t, dtype=x.dtype)
    check_broadcasts_to(t, x.shape, "t", "an array")
    require(
        lambda u, hi: (u >= 0) & (u <= hi),
        t,
        t_max,
        message="`t` must lie in [0, t_max] (t_max = 1 for the full bound).",
    )
    check_callable(eps_fn, "eps_fn")
    check_callable(gamma_fn, "gamma_fn")
    num_steps = check_num_steps(num_steps)
    check_callable(weighting, "weighting")
    if num_steps is None:
        gamma_t, dgamma = jax.jvp(gamma_fn, (t,), (jnp.ones_like(t),))
        check_broadcasts_to(gamma_t, x.shape, "gamma_fn", "gamma")
        require(lambda d: d >= 0, dgamma, message=_DECREASING)
        weight = t_max * weighting(gamma_t, dgamma)
        t_eval = t
    else:
        if weighting is not elbo_weighting:
            raise ValueError("`weighting` applies to continuous time only (`num_steps=None`).")
        step = jnp.clip(jnp.ceil(t / t_max * num_steps), 1, num_steps)
        t_eval = t_max * step / num_steps
        gamma_t = gamma_fn(t_eval)
        gamma_s = gamma_fn(t_max * (step - 1) / num_steps)
        check_broadcasts_to(gamma_t, x.shape, "gamma_fn", "gamma")
        require(lambda g_t, g_s: g_t >= g_s, gamma_t, gamma_s, message=_DECREASING)
        weight = 0.5 * num_steps * jnp.expm1(gamma_t - gamma_s)
    alpha_t, sigma_t = _alpha_sigma(gamma_t)
    z_t = alpha_t * x + sigma_t * eps
    eps_hat = eps_fn(z_t, t_eval)
    if jnp.shape(eps_hat) != x.shape:
        raise ValueError(
            f"`eps_fn` must return an array of the data shape {x.shape}, got {jnp.shape(eps_hat)}."
        )
    return jnp.sum(jnp.broadcast_to(weight, x.shape) * (eps - eps_hat) ** 2)


def _check_t_max(t_max) -> float:
    try:
        value = float(t_max)
    except TypeError as err:
        raise TypeError(f"`t_max` must be a float in (0, 1], got {t_max!r}.") from err
    if not 0.0 < value <= 1.0:
        raise ValueError(f"`t_max` must be in (0, 1], got {value}.")
    return value


def _noise(value, x, name):
    """Injected noise: a float array of the shape of ``x``, in ``x``'s dtype."""
    arr = float_data(value, name)
    if arr.shape != x.shape:
        raise ValueError(f"`{name}` must have the shape of `x` {x.shape}, got {arr.shape}.")
    return arr.astype(x.dtype)


def _sample(key, x, t, independent_t, t_max, eps=None, eps_0=None):
    """Draws (t, eps, eps_0) the same way for every estimator in this module.

    Each of ``t``, ``eps`` and ``eps_0`` that is given replaces its draw; the others are
    drawn from the same split of ``key`` as when none is given.
    """
    k_t, k_eps, k_eps0 = jax.random.split(key, 3)
    if t is None:
        shape = x.shape if independent_t else ()
        t = t_max * jax.random.uniform(k_t, shape, dtype=x.dtype)
    if eps is None:
        eps = jax.random.normal(k_eps, x.shape, dtype=x.dtype)
    else:
        eps = _noise(eps, x, "eps")
    if eps_0 is None:
        eps_0 = jax.random.normal(k_eps0, x.shape, dtype=x.dtype)
    else:
        eps_0 = _noise(eps_0, x, "eps_0")
    return jnp.asarray(t, dtype=x.dtype), eps, eps_0


def _vlb(
    key,
    x,
    eps_fn,
    gamma_fn,
    *,
    num_steps,
    decoder,
    num_bins,
    t,
    independent_t,
    t_max,
    prior_mean,
    prior_log_variance,
    eps=None,
    eps_0=None,
):
    x = float_data(x, "x")
    check_callable(eps_fn, "eps_fn")
    check_callable(gamma_fn, "gamma_fn")
    num_steps = check_num_steps(num_steps)
    check_choice(decoder, DECODERS, "decoder")
    num_bins = check_int(num_bins, "num_bins")
    t, eps, eps_0 = _sample(key, x, t, independent_t, t_max, eps, eps_0)
    gamma_0 = jnp.asarray(gamma_fn(jnp.zeros((), x.dtype)))
    gamma_k = jnp.asarray(gamma_fn(jnp.full((), t_max, x.dtype)))
    check_broadcasts_to(gamma_0, x.shape, "gamma_fn", "gamma")
    if prior_mean is None:
        prior = prior_kl(x, gamma_k)
    else:
        prior = _gaussian_prior_kl(x, gamma_k, prior_mean, prior_log_variance)
    reconstruction = _decoder_nll_from_residual(x, eps_0, gamma_0, decoder, num_bins)
    diffusion = diffusion_loss(x, eps, t, eps_fn, gamma_fn, num_steps=num_steps, t_max=t_max)
    return VLBTerms(prior=prior, reconstruction=reconstruction, diffusion=diffusion)


def gaussian_vlb(
    key: jax.Array,
    x: ArrayLike,
    eps_fn: Callable,
    gamma_fn: Callable,
    *,
    num_steps: int | None = None,
    decoder: str = "gaussian",
    num_bins: int = 256,
    t: ArrayLike | None = None,
    independent_t: bool = False,
    eps: ArrayLike | None = None,
    eps_0: ArrayLike | None = None,
) -> VLBTerms:
    """One-draw estimate of the negative ELBO of a Gaussian diffusion model (VDM).

    .. math:: -\\mathrm{ELBO} = KL(q(z_1|x) || N(0, I)) + E_{z_0}[-\\log p(x|z_0)]
       + \\mathcal{L}_T(x)

    with the diffusion term ``L_T`` from ``diffusion_loss`` at one ``t ~ U(0, 1)`` and one
    ``eps`` (continuous time if ``num_steps`` is None, else the ``T``-step discrete-time
    bound on the grid ``t_i = i / T``), the exact prior KL, and the reconstruction term at one
    ``z_0 = alpha_0 x + sigma_0 eps_0`` under the decoder ``N(z_0/alpha_0,
    sigma_0^2/alpha_0^2)`` or a discretised decoder (see ``decoder_nll``).

    Args:
      key: PRNG key (one draw of ``t``, ``eps`` and ``eps_0``).
      x: one example, any event shape (continuous data; in ``[-1, 1]`` on the grid for the
        discretised decoders).
      eps_fn: ``eps_fn(z_t, t) -> eps_hat`` shaped like ``x``.
      gamma_fn: ``gamma_fn(t) -> gamma_t`` increasing, scalar or per dimension (a learned
        schedule closes over its parameters).
      num_steps: ``None`` (continuous time) or the number of steps ``T``.
      decoder: ``"gaussian"``, ``"discretized"`` (VDM) or ``"binned"`` (DDPM).
      num_bins: grid size of the discretised decoders.
      t: optional time(s) to use instead of drawing one, e.g. from ``stratified_times``.
      independent_t: draw one ``t`` per dimension (Diffusion Forcing); ``gamma_fn`` and
        ``eps_fn`` must accept a per-dimension ``t``.
      eps: optional noise of the diffusion term, ``z_t = alpha_t x + sigma_t eps``, shaped
        like ``x``, instead of a draw (to reproduce a draw, or for antithetic noise).
      eps_0: optional noise of the reconstruction term, ``z_0 = alpha_0 x + sigma_0 eps_0``,
        instead of a draw.

    Returns:
      ``VLBTerms(prior, reconstruction, diffusion)``, per-example scalars; ``.total`` is the
      negative-ELBO estimate, unbiased over the key.

    References:
      Kingma et al., Variational Diffusion Models, 2021; Ho et al., Denoising Diffusion
      Probabilistic Models, 2020; Chen et al., Diffusion Forcing, 2024.

    Examples:
      >>> x = jnp.array([0.5, -0.5])
      >>> zero = lambda z_t, t: jnp.zeros(2)
      >>> terms = vd.gaussian_vlb(jax.random.key(0), x, zero, vd.linear_gamma)
      >>> terms.total.shape  # a one-draw estimate of -ELBO, in nats
      ()
      >>> given = {"t": 0.5, "eps": jnp.ones(2), "eps_0": jnp.zeros(2)}  # the draws given
      >>> fixed = vd.gaussian_vlb(jax.random.key(1), x, zero, vd.linear_gamma, **given)
      >>> [round(float(v), 4) for v in fixed]  # prior, reconstruction, diffusion
      [0.0017, -11.4621, 18.3]
    """
    return _vlb(
        key,
        x,
        eps_fn,
        gamma_fn,
        num_steps=num_steps,
        decoder=decoder,
        num_bins=num_bins,
        t=t,
        independent_t=independent_t,
        t_max=1.0,
        prior_mean=None,
        prior_log_variance=None,
        eps=eps,
        eps_0=eps_0,
    )


def shallow_gaussian_vlb(
    key: jax.Array,
    x: ArrayLike,
    eps_fn: Callable,
    gamma_fn: Callable,
    *,
    t_max: float,
    prior_mean: ArrayLike,
    prior_log_variance: ArrayLike | None = None,
    num_steps: int | None = None,
    decoder: str = "gaussian",
    num_bins: int = 256,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
    eps_0: ArrayLike | None = None,
) -> VLBTerms:
    """Negative ELBO of shallow diffusion: diffuse to ``t_max = k`` only, with a given prior.

    .. math:: -\\mathrm{ELBO} = KL(q(z_k|x) || N(m, v)) + E[-\\log p(x|z_0)]
       + \\mathcal{L}_{[0, k]}(x)

    The diffusion term covers ``t in [0, k]`` (``t ~ U(0, k)``, or ``num_steps`` steps on
    that interval). DiffSinger's prior is ``q(z_k | x_tilde)`` for an auxiliary prediction
    ``x_tilde``: ``m = alpha_k x_tilde`` and ``v = sigma_k^2`` (the default when
    ``prior_log_variance`` is None). With ``t_max = 1``, ``m = 0`` and ``v = 1`` this is
    ``gaussian_vlb``.

    Args:
      key: PRNG key.
      x: one example.
      eps_fn: ``eps_fn(z_t, t) -> eps_hat``.
      gamma_fn: the schedule on ``[0, 1]``; only ``[0, t_max]`` is used.
      t_max: the shallow end point ``k`` in ``(0, 1]``.
      prior_mean: ``m``, broadcasting to ``x``.
      prior_log_variance: ``log v``; default ``log sigma_k^2``.
      num_steps: ``None`` for continuous time, else the number of steps in ``[0, k]``.
      decoder: as in ``gaussian_vlb``.
      num_bins: as in ``gaussian_vlb``.
      t: optional time in ``[0, t_max]``.
      eps: optional noise of the diffusion term, as in ``gaussian_vlb``.
      eps_0: optional noise of the reconstruction term, as in ``gaussian_vlb``.

    Returns:
      ``VLBTerms``.

    References:
      Liu et al., DiffSinger: Singing Voice Synthesis via Shallow Diffusion Mechanism, 2022.

    Examples:
      >>> x = jnp.array([0.5, -0.5])
      >>> zero = lambda z_t, t: jnp.zeros(2)
      >>> given = {"t": 0.5, "eps": jnp.ones(2), "eps_0": jnp.zeros(2)}
      >>> shallow = vd.shallow_gaussian_vlb(jax.random.key(0), x, zero, vd.linear_gamma, t_max=1.0,
      ...                                   prior_mean=0.0, prior_log_variance=0.0, **given)
      >>> full = vd.gaussian_vlb(jax.random.key(0), x, zero, vd.linear_gamma, **given)
      >>> bool(jnp.allclose(jnp.stack(shallow), jnp.stack(full)))  # t_max = 1, N(0, 1): VDM
      True
    """
    t_max = _check_t_max(t_max)
    prior_mean = jnp.asarray(prior_mean)
    if prior_log_variance is None:
        prior_log_variance = jax.nn.log_sigmoid(jnp.asarray(gamma_fn(jnp.asarray(t_max))))
    return _vlb(
        key,
        x,
        eps_fn,
        gamma_fn,
        num_steps=num_steps,
        decoder=decoder,
        num_bins=num_bins,
        t=t,
        independent_t=False,
        t_max=t_max,
        prior_mean=prior_mean,
        prior_log_variance=jnp.asarray(prior_log_variance),
        eps=eps,
        eps_0=eps_0,
    )


def denoising_loss(
    key: jax.Array,
    x: ArrayLike,
    eps_fn: Callable,
    gamma_fn: Callable,
    *,
    weighting: Callable,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
) -> Array:
    """One-draw weighted denoising loss ``E_t[w(t) ||eps - eps_hat||^2]``, ``t ~ U(0, 1)``.

    A bound only with ``weighting=elbo_weighting`` (then it is the diffusion term of
    ``gaussian_vlb`` on the same key); see ``vb.diffusion.weighting`` for the others.

    Args:
      key: PRNG key.
      x: one example.
      eps_fn: ``eps_fn(z_t, t) -> eps_hat``.
      gamma_fn: ``gamma_fn(t)``.
      weighting: ``weighting(gamma, dgamma) -> w``.
      t: optional time, instead of a draw.
      eps: optional noise, shaped like ``x``, instead of a draw.

    Returns:
      A scalar.

    References:
      Kingma & Gao, Understanding Diffusion Objectives as the ELBO with Simple Data
      Augmentation, 2023.

    Examples:
      >>> zero = lambda z_t, t: jnp.zeros(2)
      >>> loss = vd.denoising_loss(jax.random.key(0), jnp.zeros(2), zero, vd.linear_gamma,
      ...                          weighting=vd.simple_weighting, t=0.5, eps=jnp.array([1.0, 2.0]))
      >>> round(float(loss), 4)  # w = 1: ||eps - 0||^2
      5.0
    """
    x = float_data(x, "x")
    t, eps, _ = _sample(key, x, t, False, 1.0, eps)
    return diffusion_loss(x, eps, t, eps_fn, gamma_fn, weighting=weighting)


def gaussian_posterior(
    x: ArrayLike, z_t: ArrayLike, gamma_s: ArrayLike, gamma_t: ArrayLike
) -> tuple[Array, Array]:
    """Mean and log-variance of the forward posterior ``q(z_s | z_t, x)``, ``s < t``.

    .. math:: \\mu = \\frac{\\alpha_t \\sigma_s^2}{\\alpha_s \\sigma_t^2} z_t
       + \\alpha_s (1 - e^{\\gamma_s - \\gamma_t}) x, \\quad
       \\log \\tilde\\beta = \\log \\sigma_s^2 + \\log(-\\mathrm{expm1}(\\gamma_s - \\gamma_t)).

    In DDPM's notation ``alpha_bar = alpha^2`` and ``tilde beta_t = (1 - alpha_bar_{t-1})
    beta_t / (1 - alpha_bar_t)``.

    Args:
      x: data (or a prediction of it).
      z_t: the latent at ``t``.
      gamma_s: ``gamma(s)``.
      gamma_t: ``gamma(t)``, larger than ``gamma_s``.

    Returns:
      ``(mean, log_variance)``.

    References:
      Ho et al., Denoising Diffusion Probabilistic Models, 2020 (eq. 7);
      Kingma et al., Variational Diffusion Models, 2021 (appendix A).

    Examples:
      >>> mean, log_var = vd.gaussian_posterior(1.0, 0.5, gamma_s=-2.0, gamma_t=0.0)
      >>> round(float(mean), 4), round(float(log_var), 4)
      (0.9013, -2.2723)
    """
    x, z_t = jnp.asarray(x), jnp.asarray(z_t)
    gamma_s, gamma_t = jnp.asarray(gamma_s), jnp.asarray(gamma_t)
    log_sig = jax.nn.log_sigmoid
    log_one_minus_ratio = jnp.log(-jnp.expm1(gamma_s - gamma_t))
    coef_z = jnp.exp(
        0.5 * (log_sig(-gamma_t) - log_sig(-gamma_s)) + log_sig(gamma_s) - log_sig(gamma_t)
    )
    coef_x = jnp.exp(0.5 * log_sig(-gamma_s) + log_one_minus_ratio)
    return coef_z * z_t + coef_x * x, log_sig(gamma_s) + log_one_minus_ratio


def interpolated_log_variance(v: ArrayLike, gamma_s: ArrayLike, gamma_t: ArrayLike) -> Array:
    """Improved DDPM's learned reverse variance, between ``beta_t`` and ``tilde beta_t``.

    .. math:: \\log \\Sigma = v \\log \\beta_t + (1 - v) \\log \\tilde\\beta_t,
       \\quad \\beta_t = \\sigma_{t|s}^2 = -\\sigma_t^2 \\mathrm{expm1}(\\gamma_s - \\gamma_t).

    Args:
      v: the network's interpolation output (unconstrained, ~[0, 1]).
      gamma_s: ``gamma(s)``.
      gamma_t: ``gamma(t)``.

    Returns:
      ``log Sigma``.

    References:
      Nichol & Dhariwal, Improved Denoising Diffusion Probabilistic Models, 2021 (eq. 15).

    Examples:
      >>> _, log_tilde_beta = vd.gaussian_posterior(0.0, 0.0, gamma_s=-2.0, gamma_t=0.0)
      >>> v0 = vd.interpolated_log_variance(0.0, -2.0, 0.0)  # v = 0: the posterior variance
      >>> bool(jnp.isclose(v0, log_tilde_beta))
      True
      >>> round(float(vd.interpolated_log_variance(1.0, -2.0, 0.0)), 4)  # v = 1: log beta_t
      -0.8386
    """
    gamma_s, gamma_t = jnp.asarray(gamma_s), jnp.asarray(gamma_t)
    log_one_minus_ratio = jnp.log(-jnp.expm1(gamma_s - gamma_t))
    log_beta = jax.nn.log_sigmoid(gamma_t) + log_one_minus_ratio
    log_beta_tilde = jax.nn.log_sigmoid(gamma_s) + log_one_minus_ratio
    return v * log_beta + (1.0 - v) * log_beta_tilde


def gaussian_step_kl(
    x: ArrayLike,
    z_t: ArrayLike,
    eps_hat: ArrayLike,
    gamma_s: ArrayLike,
    gamma_t: ArrayLike,
    *,
    log_variance: ArrayLike | None = None,
) -> Array:
    """One step's ``KL(q(z_s | z_t, x) || p(z_s | z_t))``, summed over the event.

    The reverse model is ``N(mu(x_hat), Sigma)`` with ``x_hat = (z_t - sigma_t eps_hat) /
    alpha_t`` plugged into the posterior mean, and ``Sigma`` the posterior variance
    ``tilde beta`` by default (then the KL is ``0.5 expm1(gamma_t - gamma_s)
    ||eps - eps_hat||^2``) or a learned one, e.g. ``interpolated_log_variance``.

    Args:
      x: data.
      z_t: the latent at ``t``.
      eps_hat: the noise prediction at ``(z_t, t)``.
      gamma_s: ``gamma(s)``.
      gamma_t: ``gamma(t)``.
      log_variance: ``log Sigma`` of the reverse model, or None.

    Returns:
      A scalar (nats).

    References:
      Ho et al., Denoising Diffusion Probabilistic Models, 2020 (eq. 5).

    Examples:
      >>> x, eps, g_s, g_t = jnp.array([0.5]), jnp.array([1.0]), -2.0, 0.0
      >>> z_t = jnp.sqrt(jax.nn.sigmoid(-g_t)) * x + jnp.sqrt(jax.nn.sigmoid(g_t)) * eps
      >>> round(float(vd.gaussian_step_kl(x, z_t, eps, g_s, g_t)), 4)  # the true noise: 0
      0.0
      >>> # eps_hat = 0: 0.5 expm1(gamma_t - gamma_s) ||eps||^2 = 0.5 (e^2 - 1)
      >>> round(float(vd.gaussian_step_kl(x, z_t, jnp.zeros(1), g_s, g_t)), 4)
      3.1945
    """
    x, z_t, eps_hat = jnp.asarray(x), jnp.asarray(z_t), jnp.asarray(eps_hat)
    gamma_t = jnp.asarray(gamma_t)
    alpha_t, sigma_t = _alpha_sigma(gamma_t)
    x_hat = (z_t - sigma_t * eps_hat) / alpha_t
    mean_q, log_var_q = gaussian_posterior(x, z_t, gamma_s, gamma_t)
    mean_p, _ = gaussian_posterior(x_hat, z_t, gamma_s, gamma_t)
    log_var_p = log_var_q if log_variance is None else jnp.asarray(log_variance)
    q = distrax.Normal(mean_q, jnp.exp(0.5 * log_var_q))
    p = distrax.Normal(mean_p, jnp.exp(0.5 * log_var_p))
    return jnp.sum(jnp.broadcast_to(q.kl_divergence(p), x.shape))


def l_simple(eps: ArrayLike, eps_hat: ArrayLike) -> Array:
    """DDPM's simple loss: the mean squared noise-prediction error (not a bound).

    .. math:: L_{simple} = \\tfrac{1}{d} ||\\epsilon - \\hat\\epsilon||^2

    Args:
      eps: the noise.
      eps_hat: its prediction, same shape.

    Returns:
      A scalar.

    References:
      Ho et al., Denoising Diffusion Probabilistic Models, 2020 (eq. 14).

    Examples:
      >>> float(vd.l_simple(jnp.array([1.0, -1.0]), jnp.zeros(2)))
      1.0
    """
    eps, eps_hat = jnp.asarray(eps), jnp.asarray(eps_hat)
    if eps.shape != eps_hat.shape:
        raise ValueError(f"`eps_hat` must have shape {eps.shape}, got {eps_hat.shape}.")
    return jnp.mean((eps - eps_hat) ** 2)


def hybrid_loss(
    key: jax.Array,
    x: ArrayLike,
    model_fn: Callable,
    gamma_fn: Callable,
    *,
    num_steps: int,
    vlb_weight: float = 1e-3,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
) -> Array:
    """Improved DDPM's hybrid loss ``L_simple + lambda L_vlb`` with a learned variance.

    .. math:: L = \\tfrac1d ||\\epsilon - \\hat\\epsilon||^2 + \\lambda\\, T\\,
       KL(q(z_s|z_t,x) || N(\\mu(\\mathrm{sg}(\\hat\\epsilon)), \\Sigma_v))

    at one step ``i ~ U{1..T}``; ``Sigma_v`` from ``interpolated_log_variance`` and the mean
    under a stop-gradient, so that ``L_vlb`` trains only the variance. With the posterior
    variance (``v = 0``) the KL part equals ``gaussian_vlb``'s discrete-time diffusion term on
    the same key. Not itself a bound (``L_simple`` is not).

    Args:
      key: PRNG key.
      x: one example.
      model_fn: ``model_fn(z_t, t) -> (eps_hat, v)``, both shaped like ``x``.
      gamma_fn: ``gamma_fn(t)``.
      num_steps: ``T``.
      vlb_weight: ``lambda`` (0.001 in the paper).
      t: optional time in ``[0, 1]`` instead of a draw; the step is ``ceil(t T)``.
      eps: optional noise, shaped like ``x``, instead of a draw.

    Returns:
      A scalar.

    References:
      Nichol & Dhariwal, Improved Denoising Diffusion Probabilistic Models, 2021.

    Examples:
      >>> x, eps = jnp.array([0.5, -0.5]), jnp.array([1.0, 0.3])
      >>> def model_fn(z_t, t):  # the true noise, and v = 0 (the posterior variance)
      ...     return eps, jnp.zeros(2)
      >>> loss = vd.hybrid_loss(jax.random.key(0), x, model_fn, vd.linear_gamma, num_steps=10,
      ...                       t=0.5, eps=eps)
      >>> round(float(loss), 4)
      0.0
    """
    x = float_data(x, "x")
    check_callable(model_fn, "model_fn")
    check_callable(gamma_fn, "gamma_fn")
    num_steps = check_int(num_steps, "num_steps")
    t, eps, _ = _sample(key, x, t, False, 1.0, eps)
    if t.ndim:
        raise ValueError(f"`t` must be a scalar time, got shape {t.shape}.")
    require(lambda u: (u >= 0) & (u <= 1), t, message="`t` must lie in [0, 1].")
    step = jnp.clip(jnp.ceil(t * num_steps), 1, num_steps)
    gamma_t = gamma_fn(step / num_steps)
    gamma_s = gamma_fn((step - 1) / num_steps)
    alpha_t, sigma_t = _alpha_sigma(gamma_t)
    z_t = alpha_t * x + sigma_t * eps
    eps_hat, v = model_fn(z_t, step / num_steps)
    if jnp.shape(eps_hat) != x.shape:
        raise ValueError(f"`model_fn` must return eps_hat of shape {x.shape}.")
    log_var = interpolated_log_variance(v, gamma_s, gamma_t)
    kl = gaussian_step_kl(
        x, z_t, jax.lax.stop_gradient(eps_hat), gamma_s, gamma_t, log_variance=log_var
    )
    return l_simple(eps, eps_hat) + vlb_weight * num_steps * kl


def bits_per_dim(nll: ArrayLike, num_dims: int) -> Array:
    """Converts a negative log-likelihood (or bound) in nats to bits per dimension.

    .. math:: \\mathrm{bpd} = \\frac{\\mathrm{nll}}{d \\ln 2}

    With the discretised decoders the NLL is of the 8-bit data itself. With the Gaussian
    decoder on data scaled from ``{0..255}`` to ``[-1, 1]`` it is a density of the scaled
    data: add ``d log(127.5)`` to put it on the ``0..255`` scale, and it bounds the discrete
    likelihood only when the data were uniformly dequantised.

    Args:
      nll: nats, any shape.
      num_dims: ``d``, the number of dimensions of one example.

    Returns:
      Bits per dimension.

    References:
      Theis et al., A note on the evaluation of generative models, 2016.

    Examples:
      >>> round(float(vd.bits_per_dim(8 * jnp.log(2.0), 8)), 4)  # 8 bits over 8 dimensions
      1.0
    """
    num_dims = check_int(num_dims, "num_dims")
    return jnp.asarray(nll) / (num_dims * math.log(2.0))
