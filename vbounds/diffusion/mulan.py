"""MuLAN: a Gaussian diffusion bound with a learned, input-adaptive noise schedule.

MuLAN (Sahoo et al. 2024) lets the noise schedule differ per dimension and per example. The
schedule may not read ``x`` itself: the reverse model has to run the same schedule when it
generates, without ``x``. MuLAN therefore introduces an auxiliary latent ``u`` (the paper's
``z``; ``u`` here because ``z_t`` is the diffusion latent) with prior ``p(u) = N(0, I)`` and
encoder ``q(u | x)``, and a generative model ``p(u) p(x | u)`` whose diffusion part uses the
schedule ``gamma(t; u)`` and a denoiser ``eps_hat(z_t, t, u)``. Then

.. math:: -\\log p(x) \\le E_{q(u|x)}\\big[\\mathcal{L}_{VDM}(x; \\gamma(\\cdot; u),
   \\hat\\epsilon(\\cdot, \\cdot, u))\\big] + KL(q(u | x) || N(0, I)),

where ``L_VDM`` is ``gaussian_vlb``'s negative ELBO of ``p(x | u)``, because each ``L_VDM``
bounds ``-log p(x | u)`` for its fixed ``u`` and the rest is the ordinary ELBO over ``u``.

Not a bound: a schedule computed from ``x`` directly (``gamma(t; x)``) plugged into
``gaussian_vlb`` with no latent and no KL. The forward process then differs per example and no
single reverse model matches it; worse, a denoiser that sees ``gamma_t`` (as the usual
``net(z_t, gamma(t))`` does) can read ``x`` off the schedule and drive the diffusion term to
zero, so the "loss" falls below the data entropy (``tests/test_diffusion_mulan.py`` shows it).
Information about ``x`` that reaches the schedule through ``u`` is paid for by the KL term.

Pure functions; ``vbounds.lab.models.denoisers`` has the encoder, schedule and denoiser networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import distrax
import jax
import jax.numpy as jnp

from vbounds.diffusion._common import check_callable, float_data
from vbounds.diffusion.gaussian import gaussian_vlb

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class AuxiliaryVLBTerms(NamedTuple):
    """Terms of the negative ELBO with an auxiliary latent, each a per-example scalar (nats).

    Attributes:
      prior: ``KL(q(z_1 | x, u) || N(0, I))``, exact, at the drawn ``u``.
      reconstruction: ``-log p(x | z_0, u)`` at one draw of ``z_0``.
      diffusion: one-draw estimate of the diffusion loss under the schedule ``gamma(t; u)``.
      latent: ``KL(q(u | x) || N(0, I))``, exact.
    """

    prior: jax.Array
    reconstruction: jax.Array
    diffusion: jax.Array
    latent: jax.Array

    @property
    def total(self) -> jax.Array:
        """The negative ELBO estimate, the sum of the four terms."""
        return self.prior + self.reconstruction + self.diffusion + self.latent


def auxiliary_kl(aux_mean: ArrayLike, aux_log_variance: ArrayLike) -> Array:
    """``KL(N(aux_mean, exp(aux_log_variance)) || N(0, I))``, summed over all axes.

    .. math:: \\tfrac12 \\sum_j (m_j^2 + v_j - 1 - \\log v_j)

    Args:
      aux_mean: the encoder's mean ``m``, any shape.
      aux_log_variance: its log-variance ``log v``, same shape.

    Returns:
      A scalar (nats).

    References:
      Kingma & Welling, Auto-Encoding Variational Bayes, 2014 (appendix B).

    Examples:
      >>> round(float(vd.auxiliary_kl(jnp.array([1.0, 0.0]), jnp.zeros(2))), 4)  # 0.5 * 1^2
      0.5
    """
    mean = float_data(aux_mean, "aux_mean")
    log_variance = float_data(aux_log_variance, "aux_log_variance")
    if log_variance.shape != mean.shape:
        raise ValueError(
            f"`aux_log_variance` must have the shape of `aux_mean` {mean.shape}, "
            f"got {log_variance.shape}."
        )
    q = distrax.Normal(mean, jnp.exp(0.5 * log_variance))
    p = distrax.Normal(jnp.zeros_like(mean), jnp.ones_like(mean))
    return jnp.sum(q.kl_divergence(p))


def mulan_vlb(
    key: jax.Array,
    x: ArrayLike,
    eps_fn: Callable,
    gamma_fn: Callable,
    aux_mean: ArrayLike,
    aux_log_variance: ArrayLike,
    *,
    num_steps: int | None = None,
    decoder: str = "gaussian",
    num_bins: int = 256,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
    eps_0: ArrayLike | None = None,
    aux_noise: ArrayLike | None = None,
) -> AuxiliaryVLBTerms:
    """One-draw negative ELBO of a diffusion model with an auxiliary-latent schedule (MuLAN).

    Draws ``u = aux_mean + exp(aux_log_variance / 2) * n``, ``n ~ N(0, I)`` (reparameterised,
    so gradients reach the encoder that produced ``aux_mean`` and ``aux_log_variance``), then

    .. math:: -\\mathrm{ELBO} = \\mathcal{L}_{VDM}(x; \\gamma(\\cdot; u),
       \\hat\\epsilon(\\cdot, \\cdot, u)) + KL(q(u|x) || N(0, I)),

    with ``L_VDM`` from ``gaussian_vlb`` (its prior, reconstruction and diffusion terms under
    the per-dimension schedule ``gamma(t; u)``) and the latent KL exact. Its expectation over
    the key bounds ``-log p(x)`` of the model ``p(u) p(x | u)``; see the module docstring for
    why the schedule must depend on ``x`` only through ``u``.

    Args:
      key: PRNG key (one draw of ``u``, ``t``, ``eps`` and ``eps_0``).
      x: one example, any event shape.
      eps_fn: ``eps_fn(z_t, t, u) -> eps_hat`` shaped like ``x``: the denoiser, conditioned
        on the auxiliary latent.
      gamma_fn: ``gamma_fn(t, u) -> gamma_t``, increasing in ``t``, scalar or shaped like ``x``
        (e.g. ``polynomial_gamma`` with coefficients computed from ``u``); elementwise in
        ``t``.
      aux_mean: mean of ``q(u | x)``, any shape (usually ``[latent_dim]``).
      aux_log_variance: log-variance of ``q(u | x)``, shape of ``aux_mean``.
      num_steps: ``None`` (continuous time) or the number of steps ``T``.
      decoder: as in ``gaussian_vlb``.
      num_bins: as in ``gaussian_vlb``.
      t: optional time to use instead of drawing one.
      eps: optional noise of the diffusion term, as in ``gaussian_vlb``.
      eps_0: optional noise of the reconstruction term, as in ``gaussian_vlb``.
      aux_noise: optional ``n`` of ``u = aux_mean + exp(aux_log_variance / 2) * n``, shaped
        like ``aux_mean``, instead of a draw.

    Returns:
      ``AuxiliaryVLBTerms(prior, reconstruction, diffusion, latent)``; ``.total`` is the
      negative-ELBO estimate, unbiased over the key.

    References:
      Sahoo et al., Diffusion Models With Learned Adaptive Noise (MuLAN), 2024;
      Kingma et al., Variational Diffusion Models, 2021.

    Examples:
      >>> x = jnp.array([0.5, -0.5])
      >>> def eps_fn(z_t, t, u):
      ...     return jnp.zeros(2)
      >>> def gamma_fn(t, u):  # the schedule may read u, never x
      ...     return vd.linear_gamma(t) * jnp.ones(2)
      >>> given = {"t": 0.5, "eps": jnp.ones(2), "eps_0": jnp.zeros(2), "aux_noise": jnp.zeros(1)}
      >>> terms = vd.mulan_vlb(jax.random.key(0), x, eps_fn, gamma_fn, jnp.ones(1), jnp.zeros(1),
      ...                      **given)
      >>> round(float(terms.latent), 4)  # KL(N(1, 1) || N(0, 1))
      0.5
      >>> vdm = vd.gaussian_vlb(jax.random.key(0), x, lambda z, t: eps_fn(z, t, None),
      ...                       lambda t: gamma_fn(t, None), t=0.5, eps=jnp.ones(2),
      ...                       eps_0=jnp.zeros(2))
      >>> bool(jnp.isclose(terms.total, vdm.total + 0.5))
      True
    """
    check_callable(eps_fn, "eps_fn")
    check_callable(gamma_fn, "gamma_fn")
    latent = auxiliary_kl(aux_mean, aux_log_variance)
    aux_mean = jnp.asarray(aux_mean, latent.dtype)
    k_u, k_vlb = jax.random.split(key)
    if aux_noise is None:
        noise = jax.random.normal(k_u, aux_mean.shape, aux_mean.dtype)
    else:
        noise = float_data(aux_noise, "aux_noise").astype(aux_mean.dtype)
        if noise.shape != aux_mean.shape:
            raise ValueError(
                f"`aux_noise` must have the shape of `aux_mean` {aux_mean.shape}, "
                f"got {noise.shape}."
            )
    u = aux_mean + jnp.exp(0.5 * jnp.asarray(aux_log_variance, aux_mean.dtype)) * noise
    terms = gaussian_vlb(
        k_vlb,
        x,
        lambda z_t, s: eps_fn(z_t, s, u),
        lambda s: gamma_fn(s, u),
        num_steps=num_steps,
        decoder=decoder,
        num_bins=num_bins,
        t=t,
        eps=eps,
        eps_0=eps_0,
    )
    return AuxiliaryVLBTerms(*terms, latent=latent)
