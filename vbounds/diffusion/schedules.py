"""Noise schedules ``gamma(t)`` (VDM's negative log-SNR) as pure functions.

Conventions (Kingma et al. 2021): ``gamma`` increases on ``t in [0, 1]``,
``sigma_t^2 = sigmoid(gamma_t)``, ``alpha_t^2 = sigmoid(-gamma_t)``, ``SNR_t = exp(-gamma_t)``.

A learnable schedule is a pure function of a parameter pytree: close over the parameters to
get the ``gamma_fn(t)`` that ``gaussian_vlb`` takes, e.g.
``gamma_fn = lambda t: linear_gamma(t, gamma_min=params["lo"], gamma_max=params["hi"])``.
End points are ordinary arguments everywhere, so they are fixed when passed as constants and
learnable when passed as (traced) parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vbounds._validation import check_int

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def linear_gamma(t: ArrayLike, *, gamma_min: ArrayLike = -13.3, gamma_max: ArrayLike = 5.0):
    """Linear negative log-SNR schedule (VDM's fixed or learnable scalar schedule).

    .. math:: \\gamma(t) = \\gamma_{min} + (\\gamma_{max} - \\gamma_{min}) t

    Args:
      t: times in ``[0, 1]``, any shape.
      gamma_min: ``gamma(0)``; a parameter when learned.
      gamma_max: ``gamma(1)``; a parameter when learned.

    Returns:
      ``gamma(t)``, broadcast over ``t`` and the end points.

    References:
      Kingma et al., Variational Diffusion Models, 2021.

    Examples:
      >>> [round(g, 4) for g in vd.linear_gamma(jnp.array([0.0, 0.5, 1.0])).tolist()]
      [-13.3, -4.15, 5.0]
    """
    t = jnp.asarray(t)
    return gamma_min + (gamma_max - gamma_min) * t


def cosine_gamma(t: ArrayLike, *, gamma_min: ArrayLike = -13.3, gamma_max: ArrayLike = 5.0):
    """The cosine schedule in log-SNR form, truncated to the given end points.

    With ``alpha_bar = cos^2(theta)`` (Nichol & Dhariwal's cosine schedule) the negative
    log-SNR is ``2 log tan(theta)``; ``theta`` moves linearly between the angles of the end
    points:

    .. math:: \\gamma(t) = 2 \\log \\tan(\\theta_0 + (\\theta_1 - \\theta_0) t),
       \\quad \\theta_i = \\arctan(e^{\\gamma_i / 2}).

    Args:
      t: times in ``[0, 1]``.
      gamma_min: ``gamma(0)``.
      gamma_max: ``gamma(1)``.

    Returns:
      ``gamma(t)``.

    References:
      Nichol & Dhariwal, Improved Denoising Diffusion Probabilistic Models, 2021;
      Kingma & Gao, Understanding Diffusion Objectives as the ELBO with Simple Data
      Augmentation, 2023.

    Examples:
      >>> [round(g, 4) for g in vd.cosine_gamma(jnp.array([0.0, 0.5, 1.0])).tolist()]
      [-13.3, -0.1614, 5.0]
    """
    t = jnp.asarray(t)
    theta_0 = jnp.arctan(jnp.exp(0.5 * jnp.asarray(gamma_min)))
    theta_1 = jnp.arctan(jnp.exp(0.5 * jnp.asarray(gamma_max)))
    theta = theta_0 + (theta_1 - theta_0) * t
    return 2.0 * jnp.log(jnp.tan(theta))


def init_monotone_gamma(key: jax.Array, *, hidden: int = 64) -> dict:
    """Initial parameters of ``monotone_gamma`` (raw, unconstrained values).

    Args:
      key: PRNG key.
      hidden: width of the sigmoid layer (VDM used 1024).

    Returns:
      A dict of arrays ``w1, b1`` (scalars), ``w2, b2, w3`` (``[hidden]``).

    Examples:
      >>> params = vd.init_monotone_gamma(jax.random.key(0), hidden=8)
      >>> sorted(params), params["w2"].shape
      (['b1', 'b2', 'w1', 'w2', 'w3'], (8,))
    """
    hidden = check_int(hidden, "hidden")
    k2, k3 = jax.random.split(key)
    return {
        # Strongly typed scalars: weakly typed ones change type after the first optimiser
        # update and make a jitted training step compile twice.
        "w1": jnp.ones(()),
        "b1": jnp.zeros(()),
        "w2": jax.random.normal(k2, (hidden,)),
        "b2": jnp.zeros((hidden,)),
        "w3": 0.1 * jax.random.normal(k3, (hidden,)),
    }


def monotone_gamma(
    params: dict, t: ArrayLike, *, gamma_min: ArrayLike = -13.3, gamma_max: ArrayLike = 5.0
):
    """VDM's learnable monotone schedule, rescaled to exact end points.

    A network increasing in ``t`` (positive weights through softplus, a sigmoid layer):

    .. math:: h(t) = w_1^+ t + b_1, \\quad \\tilde\\gamma(t) = h + \\tfrac{1}{H}
       \\textstyle\\sum_j w_{3j}^+ \\,\\mathrm{sigmoid}(w_{2j}^+ h + b_{2j}),

    .. math:: \\gamma(t) = \\gamma_{min} + (\\gamma_{max} - \\gamma_{min})
       \\frac{\\tilde\\gamma(t) - \\tilde\\gamma(0)}{\\tilde\\gamma(1) - \\tilde\\gamma(0)}.

    Args:
      params: from ``init_monotone_gamma``.
      t: times in ``[0, 1]``, any shape (applied elementwise).
      gamma_min: ``gamma(0)``, fixed or learnable.
      gamma_max: ``gamma(1)``, fixed or learnable.

    Returns:
      ``gamma(t)`` with the shape of ``t``.

    References:
      Kingma et al., Variational Diffusion Models, 2021 (appendix on the learned schedule).

    Examples:
      >>> params = vd.init_monotone_gamma(jax.random.key(0), hidden=8)
      >>> gamma = vd.monotone_gamma(params, jnp.linspace(0.0, 1.0, 11))
      >>> round(float(gamma[0]), 4), round(float(gamma[-1]), 4)  # exact end points
      (-13.3, 5.0)
      >>> bool(jnp.all(jnp.diff(gamma) > 0))  # increasing for any parameters
      True
    """
    t = jnp.asarray(t)
    softplus = jax.nn.softplus
    w2 = softplus(params["w2"])
    w3 = softplus(params["w3"])
    hidden = w2.shape[-1]

    def unnormalised(s):
        h = softplus(params["w1"]) * s + params["b1"]
        g = jax.nn.sigmoid(h[..., None] * w2 + params["b2"])
        return h + jnp.sum(w3 * g, axis=-1) / hidden

    g0 = unnormalised(jnp.zeros(()))
    g1 = unnormalised(jnp.ones(()))
    return gamma_min + (gamma_max - gamma_min) * (unnormalised(t) - g0) / (g1 - g0)


def polynomial_gamma(
    t: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    *,
    gamma_min: ArrayLike = -13.3,
    gamma_max: ArrayLike = 5.0,
):
    """MuLAN-style per-dimension monotone polynomial schedule.

    The derivative is a square, so the schedule is monotone for any coefficients:

    .. math:: f(t) = \\int_0^t (a u^2 + b u + c)^2 du = \\tfrac{a^2}{5} t^5
       + \\tfrac{ab}{2} t^4 + \\tfrac{b^2 + 2ac}{3} t^3 + bc\\, t^2 + c^2 t,

    .. math:: \\gamma(t) = \\gamma_{min} + (\\gamma_{max} - \\gamma_{min}) f(t) / f(1).

    ``a, b, c`` have the event shape (one schedule per dimension) and may be the output of a
    network of a conditioning signal or of an auxiliary latent. They must not be a function
    of ``x`` itself: the reverse model has to know the schedule without ``x`` (MuLAN infers
    an auxiliary latent and adds its KL to the bound).

    Args:
      t: a scalar time in ``[0, 1]`` (or any shape broadcasting with the coefficients).
      a: coefficients, e.g. ``[*event]``.
      b: coefficients, same shape.
      c: coefficients, same shape.
      gamma_min: ``gamma(0)``, scalar or per dimension.
      gamma_max: ``gamma(1)``, scalar or per dimension.

    Returns:
      ``gamma(t)`` per dimension.

    References:
      Sahoo et al., Diffusion Models With Learned Adaptive Noise (MuLAN), 2024.

    Examples:
      >>> a, b, c = jnp.array([1.0, -2.0]), jnp.array([0.0, 3.0]), jnp.array([0.5, 0.1])
      >>> ends = vd.polynomial_gamma(jnp.array([[0.0], [1.0]]), a, b, c)  # t = 0 and 1, 2 dims
      >>> np.asarray(ends, float).round(4).tolist()
      [[-13.3, -13.3], [5.0, 5.0]]
    """
    t = jnp.asarray(t)
    a, b, c = jnp.asarray(a), jnp.asarray(b), jnp.asarray(c)

    def f(s):
        # The tiny linear term keeps f(1) > 0 when all coefficients vanish.
        return (
            a**2 * s**5 / 5
            + a * b * s**4 / 2
            + (b**2 + 2 * a * c) * s**3 / 3
            + b * c * s**2
            + (c**2 + 1e-6) * s
        )

    return gamma_min + (gamma_max - gamma_min) * f(t) / f(jnp.ones(()))


def gamma_from_alpha_bar(alpha_bar: ArrayLike) -> Array:
    """DDPM's cumulative ``alpha_bar_t`` as VDM's ``gamma_t``.

    .. math:: \\gamma = \\log(1 - \\bar\\alpha) - \\log \\bar\\alpha

    Args:
      alpha_bar: values in ``(0, 1)``, e.g. ``cumprod(1 - betas)``.

    Returns:
      ``gamma`` of the same shape.

    References:
      Ho et al., Denoising Diffusion Probabilistic Models, 2020.

    Examples:
      >>> [round(g, 4) for g in vd.gamma_from_alpha_bar(jnp.array([0.5, 0.9])).tolist()]
      [0.0, -2.1972]
    """
    alpha_bar = jnp.asarray(alpha_bar)
    return jnp.log1p(-alpha_bar) - jnp.log(alpha_bar)
