"""Gaussian diffusion bounds with a learned forward process: NDM, DiffEnc and NFDM.

The forward process of VDM, ``z_t = alpha_t x + sigma_t eps``, is fixed. These models learn
it. NDM and DiffEnc transform the data first, ``z_t = alpha_t F(x, t) + sigma_t eps`` (NDM's
``F_phi(x, t)``, DiffEnc's depth-dependent encoder mean ``x_phi(x, t)``); NFDM allows any
simulation-free Gaussian ``z_t = mu(x, t) + s(x, t) eps`` with a diffusion coefficient
``g(t)``. In every case the reverse model predicts the data, ``x_hat = x_fn(z_t, t)``, and runs
the same forward process with ``x_hat`` in place of ``x``, so that generation needs no ``x``.
With ``F(x, t) = x`` each bound is ``gaussian_vlb``. Schedules follow VDM's conventions
(``sigma_t^2 = sigmoid(gamma_t)``, ``SNR_t = exp(-gamma_t)``); every function returns the
negative ELBO's terms (nats) for one example.
"""

from __future__ import annotations

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
from vbounds.diffusion.gaussian import (
    _DECREASING,
    DECODERS,
    _alpha_sigma,
    _decoder_nll_from_residual,
    _sample,
    prior_kl,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _shaped(value, x, name):
    value = jnp.asarray(value)
    if value.shape != x.shape:
        raise ValueError(
            f"`{name}` must return an array of the data shape {x.shape}, got {value.shape}."
        )
    return value


def _transformed_diffusion(x, eps, t, x_fn, transform_fn, gamma_fn, num_steps, variance_ratio):
    """The diffusion term of ``z_t = alpha_t F(x, t) + sigma_t eps`` at one ``(t, eps)``."""

    def transform(data, s):
        return _shaped(transform_fn(data, s), x, "transform_fn")

    if num_steps is None:
        require(
            lambda w: w == 1.0,
            variance_ratio,
            message="`variance_ratio` must be 1 in continuous time (num_steps=None): any "
            "other ratio makes the bound infinite.",
        )
        gamma_t, dgamma = jax.jvp(gamma_fn, (t,), (jnp.ones_like(t),))
        check_broadcasts_to(gamma_t, x.shape, "gamma_fn", "gamma")
        require(lambda d: d >= 0, dgamma, message=_DECREASING)
        alpha_t, sigma_t = _alpha_sigma(gamma_t)
        z_t = alpha_t * transform(x, t) + sigma_t * eps
        x_hat = _shaped(x_fn(z_t, t), x, "x_fn")
        # The reverse model runs the forward process of x_hat, held fixed along t.
        gap, dgap = jax.jvp(
            lambda s: transform(x, s) - transform(x_hat, s), (t,), (jnp.ones_like(t),)
        )
        snr = jnp.exp(-gamma_t)
        return jnp.sum(0.5 * snr * (dgamma * gap - dgap) ** 2 / dgamma)
    step = jnp.clip(jnp.ceil(t * num_steps), 1, num_steps)
    t_i, s_i = step / num_steps, (step - 1) / num_steps
    gamma_t, gamma_s = gamma_fn(t_i), gamma_fn(s_i)
    check_broadcasts_to(gamma_t, x.shape, "gamma_fn", "gamma")
    require(lambda g_t, g_s: g_t >= g_s, gamma_t, gamma_s, message=_DECREASING)
    alpha_t, sigma_t = _alpha_sigma(gamma_t)
    z_t = alpha_t * transform(x, t_i) + sigma_t * eps
    x_hat = _shaped(x_fn(z_t, t_i), x, "x_fn")
    # q(z_s | z_t, x) = N(alpha_s F_s + c (z_t - alpha_t F_t), sigma_s^2 (1 - r)), with
    # r = SNR_t / SNR_s and c = sqrt(r) sigma_s / sigma_t, so that it marginalises to
    # q(z_s | x); the reverse step is the same with x_hat. Means differ by
    # alpha_s (dF_s - r dF_t).
    ratio = jnp.exp(gamma_s - gamma_t)
    mean_gap = (
        transform(x, s_i)
        - transform(x_hat, s_i)
        - ratio * (transform(x, t_i) - transform(x_hat, t_i))
    )
    scaled = 0.5 * jnp.exp(-gamma_s) * mean_gap**2 / -jnp.expm1(gamma_s - gamma_t)
    w = jnp.asarray(variance_ratio)
    kl = 0.5 * (w - 1.0 - jnp.log(w)) + w * scaled
    return num_steps * jnp.sum(jnp.broadcast_to(kl, x.shape))


def _transformed_vlb(
    key,
    x,
    x_fn,
    transform_fn,
    gamma_fn,
    *,
    num_steps,
    decoder,
    num_bins,
    t,
    eps,
    eps_0,
    variance_ratio,
):
    x = float_data(x, "x")
    for fn, name in ((x_fn, "x_fn"), (transform_fn, "transform_fn"), (gamma_fn, "gamma_fn")):
        check_callable(fn, name)
    num_steps = check_num_steps(num_steps)
    check_choice(decoder, DECODERS, "decoder")
    num_bins = check_int(num_bins, "num_bins")
    t, eps, eps_0 = _sample(key, x, t, False, 1.0, eps, eps_0)
    if t.ndim:
        raise ValueError(f"`t` must be a scalar time, got shape {t.shape}.")
    require(lambda u: (u >= 0) & (u <= 1), t, message="`t` must lie in [0, 1].")
    zero, one = jnp.zeros((), x.dtype), jnp.ones((), x.dtype)
    gamma_0, gamma_1 = jnp.asarray(gamma_fn(zero)), jnp.asarray(gamma_fn(one))
    check_broadcasts_to(gamma_0, x.shape, "gamma_fn", "gamma")
    prior = prior_kl(_shaped(transform_fn(x, one), x, "transform_fn"), gamma_1)
    # The decoder N(z_0 / alpha_0, exp(gamma_0)) in terms of the standardised residual.
    offset = (_shaped(transform_fn(x, zero), x, "transform_fn") - x) * jnp.exp(-0.5 * gamma_0)
    reconstruction = _decoder_nll_from_residual(x, offset + eps_0, gamma_0, decoder, num_bins)
    diffusion = _transformed_diffusion(
        x, eps, t, x_fn, transform_fn, gamma_fn, num_steps, variance_ratio
    )
    return VLBTerms(prior=prior, reconstruction=reconstruction, diffusion=diffusion)


def ndm_vlb(
    key: jax.Array,
    x: ArrayLike,
    x_fn: Callable,
    transform_fn: Callable,
    gamma_fn: Callable,
    *,
    num_steps: int | None = None,
    decoder: str = "gaussian",
    num_bins: int = 256,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
    eps_0: ArrayLike | None = None,
) -> VLBTerms:
    """One-draw negative ELBO of a Neural Diffusion Model (learned data transform).

    Forward process ``q(z_t | x) = N(alpha_t F(x, t), sigma_t^2)``; the reverse step is the
    forward posterior with ``x_hat = x_fn(z_t, t)`` for ``x``. With ``dF(t) = F(x, t) -
    F(x_hat, t)`` (``x_hat`` held fixed in the time derivative) the continuous-time diffusion
    term is

    .. math:: \\mathcal L = \\frac{\\mathrm{SNR}_t}{2 \\gamma'_t}
       \\|\\gamma'_t\\, dF(t) - \\partial_t dF(t)\\|^2,

    and with ``T`` steps ``L = T KL(q(z_s|z_t,x) || q(z_s|z_t,x_hat))``,

    .. math:: KL = \\frac{\\mathrm{SNR}_s}{2 (1 - e^{\\gamma_s - \\gamma_t})}
       \\|dF(s) - e^{\\gamma_s - \\gamma_t} dF(t)\\|^2,

    ``z_t = alpha_t F(x, t) + sigma_t eps`` at one ``t ~ U(0, 1)`` (moved to the grid
    ``t_i = i/T`` as in ``diffusion_loss``). The prior term is ``prior_kl(F(x, 1), gamma_1)``;
    the decoder is ``gaussian_vlb``'s at ``z_0 = alpha_0 F(x, 0) + sigma_0 eps_0``. With
    ``F(x, t) = x`` and ``x_fn`` the data prediction of ``eps_fn`` this is
    ``gaussian_vlb`` with the same draws.

    Args:
      key: PRNG key (the same split as ``gaussian_vlb``).
      x: one example.
      x_fn: ``x_fn(z_t, t) -> x_hat`` shaped like ``x``.
      transform_fn: ``F(x, t)`` shaped like ``x``, differentiable in ``t``; typically
        ``F(x, 0) = x``.
      gamma_fn: the schedule ``gamma(t)``, increasing.
      num_steps: ``None`` (continuous time) or ``T``.
      decoder: ``"gaussian"``, ``"discretized"`` or ``"binned"``, as in ``gaussian_vlb``.
      num_bins: grid size of the discretised decoders.
      t: optional scalar time instead of a draw.
      eps: optional noise of the diffusion term.
      eps_0: optional noise of the reconstruction term.

    Returns:
      ``VLBTerms(prior, reconstruction, diffusion)``.

    References:
      Bartosh, Vetrov & Naesseth, Neural Diffusion Models, 2024.

    Examples:
      >>> x, given = jnp.array([0.5, -0.5]), {"t": 0.5, "eps": jnp.ones(2), "eps_0": jnp.zeros(2)}
      >>> identity = lambda x, t: x
      >>> def x_fn(z, t):  # the data prediction of eps_hat = 0
      ...     return z / jnp.sqrt(jax.nn.sigmoid(-vd.linear_gamma(t)))
      >>> terms = vd.ndm_vlb(jax.random.key(0), x, x_fn, identity, vd.linear_gamma, **given)
      >>> [round(float(v), 4) for v in terms]  # gaussian_vlb's values for F(x, t) = x
      [0.0017, -11.4621, 18.3]
    """
    return _transformed_vlb(
        key,
        x,
        x_fn,
        transform_fn,
        gamma_fn,
        num_steps=num_steps,
        decoder=decoder,
        num_bins=num_bins,
        t=t,
        eps=eps,
        eps_0=eps_0,
        variance_ratio=1.0,
    )


def diffenc_vlb(
    key: jax.Array,
    x: ArrayLike,
    x_fn: Callable,
    encoder_fn: Callable,
    gamma_fn: Callable,
    *,
    variance_ratio: ArrayLike = 1.0,
    num_steps: int | None = None,
    decoder: str = "gaussian",
    num_bins: int = 256,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
    eps_0: ArrayLike | None = None,
) -> VLBTerms:
    """One-draw negative ELBO of DiffEnc: a depth-dependent encoder mean and a variance ratio.

    The forward process is ``N(alpha_t x_phi(x, t), sigma_t^2)`` with the encoder mean
    ``x_phi = encoder_fn`` (as ``ndm_vlb``'s transform). The reverse step's variance is the
    forward posterior variance ``tilde sigma^2`` divided by ``w = variance_ratio``, so that
    each step's KL is

    .. math:: KL_w = \\tfrac{d}{2} (w - 1 - \\log w) + w\\, KL_1,

    a diffusion loss weighted by ``w`` plus a constant per step: a valid bound for any
    ``w > 0`` with ``T`` steps, infinite as ``T -> inf`` unless ``w = 1``, so continuous
    time requires ``w = 1`` (then this is ``ndm_vlb``).

    Args:
      key: PRNG key.
      x: one example.
      x_fn: ``x_fn(z_t, t) -> x_hat``.
      encoder_fn: ``x_phi(x, t)`` shaped like ``x``; DiffEnc keeps ``x_phi(x, 0) = x``.
      gamma_fn: the schedule.
      variance_ratio: ``w > 0``, the forward posterior variance over the reverse variance
        (scalar, or per dimension; may be learned).
      num_steps: ``T``, or ``None`` (continuous time, ``w = 1`` only).
      decoder: as in ``gaussian_vlb``.
      num_bins: as in ``gaussian_vlb``.
      t: optional scalar time.
      eps: optional noise of the diffusion term.
      eps_0: optional noise of the reconstruction term.

    Returns:
      ``VLBTerms``.

    References:
      Nielsen, Christensen, Dittadi & Winther, DiffEnc: Variational Diffusion with a Learned
      Encoder, 2024.

    Examples:
      >>> x, given = jnp.array([0.5, -0.5]), {"t": 0.5, "eps": jnp.ones(2), "eps_0": jnp.zeros(2)}
      >>> perfect = lambda z, t: x  # a reverse model that knows x: KL_1 = 0
      >>> terms = vd.diffenc_vlb(jax.random.key(0), x, perfect, lambda x, t: x, vd.linear_gamma,
      ...                        variance_ratio=2.0, num_steps=10, **given)
      >>> round(float(terms.diffusion), 4)  # T d (w - 1 - log w) / 2 = 10 (1 - log 2)
      3.0685
    """
    return _transformed_vlb(
        key,
        x,
        x_fn,
        encoder_fn,
        gamma_fn,
        num_steps=num_steps,
        decoder=decoder,
        num_bins=num_bins,
        t=t,
        eps=eps,
        eps_0=eps_0,
        variance_ratio=variance_ratio,
    )


def nfdm_vlb(
    key: jax.Array,
    x: ArrayLike,
    x_fn: Callable,
    forward_fn: Callable,
    g2_fn: Callable,
    *,
    decoder_nll_fn: Callable,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
    eps_0: ArrayLike | None = None,
) -> VLBTerms:
    """One-draw continuous-time negative ELBO of a Neural Flow Diffusion Model (Gaussian).

    The forward process is simulation-free, ``z_t = F(eps, t, x) = mu(x, t) + s(x, t) eps``
    with ``(mu, s) = forward_fn(x, t)`` learned, and the SDE with diffusion coefficient
    ``g(t)`` that has these marginals has the reverse-time drift
    ``f^B(z, t, x) = d_t mu + d_t s eps + g^2 eps / (2 s)`` (``eps = (z - mu) / s``). The
    reverse model uses ``x_hat = x_fn(z_t, t)`` in place of ``x``, and by Girsanov

    .. math:: \\mathcal L = \\frac{1}{2 g^2(t)} \\|f^B(z_t, t, x) - f^B(z_t, t, \\hat x)\\|^2,
       \\quad t \\sim U(0, 1).

    The prior term is the exact ``KL(N(mu(x, 1), s(x, 1)^2) || N(0, I))`` and the
    reconstruction ``decoder_nll_fn(x, z_0)`` at ``z_0 = mu(x, 0) + s(x, 0) eps_0``. With
    ``mu = alpha_t F(x, t)``, ``s = sigma_t`` and ``g^2 = sigma_t^2 gamma'_t`` this is
    ``ndm_vlb`` (and ``gaussian_vlb`` for ``F(x, t) = x``).

    Args:
      key: PRNG key (the same split as ``gaussian_vlb``).
      x: one example.
      x_fn: ``x_fn(z_t, t) -> x_hat``.
      forward_fn: ``forward_fn(x, t) -> (mu, s)``, ``mu`` shaped like ``x`` and ``s > 0``
        broadcasting to it, differentiable in ``t``.
      g2_fn: ``g(t)^2 > 0``, scalar or per dimension.
      decoder_nll_fn: ``decoder_nll_fn(x, z_0) -> -log p(x | z_0)``, a scalar.
      t: optional scalar time.
      eps: optional noise of the diffusion term.
      eps_0: optional noise of the reconstruction term.

    Returns:
      ``VLBTerms``.

    References:
      Bartosh, Vetrov & Naesseth, Neural Flow Diffusion Models: Learnable Forward Process
      for Improved Diffusion Modelling, 2024.

    Examples:
      >>> x = jnp.array([0.5, -0.5])
      >>> def forward_fn(x, t):  # a data-independent Brownian bridge-like path
      ...     return (1.0 - t) * x, jnp.sqrt(0.01 + t)
      >>> terms = vd.nfdm_vlb(jax.random.key(0), x, lambda z, t: x, forward_fn, lambda t: 1.0,
      ...                     decoder_nll_fn=lambda x, z0: jnp.sum((x - z0) ** 2))
      >>> round(float(terms.diffusion), 4)  # x_hat = x: the reverse drift is exact
      0.0
    """
    x = float_data(x, "x")
    for fn, name in ((x_fn, "x_fn"), (forward_fn, "forward_fn"), (g2_fn, "g2_fn")):
        check_callable(fn, name)
    check_callable(decoder_nll_fn, "decoder_nll_fn")
    t, eps, eps_0 = _sample(key, x, t, False, 1.0, eps, eps_0)
    if t.ndim:
        raise ValueError(f"`t` must be a scalar time, got shape {t.shape}.")
    require(lambda u: (u >= 0) & (u <= 1), t, message="`t` must lie in [0, 1].")

    def forward(data, s):
        mean, scale = forward_fn(data, s)
        scale = jnp.asarray(scale)
        check_broadcasts_to(scale, x.shape, "forward_fn", "a scale")
        return _shaped(mean, x, "forward_fn"), jnp.broadcast_to(scale, x.shape)

    def backward_drift(data, z):
        (mean, scale), (dmean, dscale) = jax.jvp(
            lambda s: forward(data, s), (t,), (jnp.ones_like(t),)
        )
        noise = (z - mean) / scale
        return dmean + dscale * noise + 0.5 * g2 * noise / scale

    g2 = jnp.asarray(g2_fn(t))
    check_broadcasts_to(g2, x.shape, "g2_fn", "g^2")
    mean_t, scale_t = forward(x, t)
    z_t = mean_t + scale_t * eps
    x_hat = _shaped(x_fn(z_t, t), x, "x_fn")
    gap = backward_drift(x, z_t) - backward_drift(x_hat, z_t)
    diffusion = jnp.sum(jnp.broadcast_to(0.5 * gap**2 / g2, x.shape))
    mean_1, scale_1 = forward(x, jnp.ones((), x.dtype))
    prior = jnp.sum(distrax.Normal(mean_1, scale_1).kl_divergence(distrax.Normal(0.0, 1.0)))
    mean_0, scale_0 = forward(x, jnp.zeros((), x.dtype))
    reconstruction = jnp.asarray(decoder_nll_fn(x, mean_0 + scale_0 * eps_0))
    return VLBTerms(prior=prior, reconstruction=reconstruction, diffusion=diffusion)
