"""Diffusion on the torus: the wrapped normal and multi-scale score matching of periodic data.

Periodic coordinates (angles, fractional atom coordinates of a crystal) live on
``[0, period)``. Adding Gaussian noise and wrapping gives the wrapped normal

.. math:: p_\\sigma(x \\mid \\mu) = \\sum_{k \\in \\mathbb Z}
   \\mathcal N(x + k\\,\\mathrm{period};\\ \\mu, \\sigma^2),

the heat kernel of the circle. Its score is a softmax-weighted average of the unwrapped
scores, which is the denoising target of CDVAE's multi-sigma score matching.

References:
  Jing et al., Torsional diffusion for molecular conformer generation, 2022.
  Xie et al., Crystal diffusion variational autoencoder for periodic material generation
  (CDVAE), 2022.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vbounds._validation import check_int, require

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _floats(x, name):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def _offsets(x, mean, sigma, period, num_wraps, name="x"):
    num_wraps = check_int(num_wraps, "num_wraps", minimum=0)
    x = _floats(x, name)
    mean = _floats(mean, "mean")
    sigma = _floats(sigma, "sigma")
    require(lambda s: s > 0, sigma, message="`sigma` must be positive")
    if not isinstance(period, int | float) or period <= 0:
        raise ValueError(f"`period` must be a positive number, got {period!r}")
    k = jnp.arange(-num_wraps, num_wraps + 1, dtype=x.dtype)
    # Wrapping the difference first keeps the nearest images in the window of k.
    diff = jnp.remainder(x - mean + period / 2, period) - period / 2
    return diff[..., None] + period * k, sigma[..., None]


def wrapped_normal_log_prob(
    x: ArrayLike,
    mean: ArrayLike,
    sigma: ArrayLike,
    *,
    period: float = 2 * math.pi,
    num_wraps: int = 3,
) -> Array:
    """Log-density of the wrapped normal on ``[0, period)``, elementwise.

    .. math:: \\log \\sum_{|k| \\le K} \\mathcal N(d + k\\,\\mathrm{period}; 0, \\sigma^2),
       \\quad d = x - \\mu \\text{ wrapped to } [-\\mathrm{period}/2, \\mathrm{period}/2)

    ``num_wraps = K`` images either side; for ``sigma`` up to about ``period / 2`` three
    suffice in float32 (the next image is ``exp(-(3.5 period)^2 / (2 sigma^2))`` smaller).

    Args:
      x: points (any shape).
      mean: the centre, broadcasting against ``x``.
      sigma: the scale (``> 0``), broadcasting against ``x``.
      period: the period of each coordinate (``2 pi`` for angles, 1 for fractional
        coordinates).
      num_wraps: images on each side (static).

    Returns:
      Elementwise log-densities; sum over the coordinates of a point yourself.

    Examples:
      >>> import jax.numpy as jnp
      >>> import vbounds as vb
      >>> x = jnp.linspace(0.0, 1.0, 1001)
      >>> p = jnp.exp(vb.diffusion.wrapped_normal_log_prob(x, 0.9, 0.3, period=1.0))
      >>> round(float(jnp.trapezoid(p, x)), 4)
      1.0
    """
    shifted, sigma = _offsets(x, mean, sigma, period, num_wraps)
    log_normal = -(shifted**2) / (2 * sigma**2) - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)
    return jax.nn.logsumexp(log_normal, axis=-1)


def wrapped_normal_score(
    x: ArrayLike,
    mean: ArrayLike,
    sigma: ArrayLike,
    *,
    period: float = 2 * math.pi,
    num_wraps: int = 3,
) -> Array:
    """The score ``d/dx log p_sigma(x | mean)`` of the wrapped normal, elementwise.

    .. math:: \\sum_k w_k \\left(-\\frac{d + k\\,\\mathrm{period}}{\\sigma^2}\\right), \\quad
       w_k \\propto \\mathcal N(d + k\\,\\mathrm{period}; 0, \\sigma^2)

    Args:
      x: points (any shape).
      mean: the centre, broadcasting against ``x``.
      sigma: the scale (``> 0``), broadcasting against ``x``.
      period: the period.
      num_wraps: images on each side (static).

    Returns:
      Elementwise scores.

    Examples:
      >>> import vbounds as vb
      >>> round(float(vb.diffusion.wrapped_normal_score(0.1, 0.0, 0.5)), 4)  # -x / sigma^2
      -0.4
    """
    shifted, sigma = _offsets(x, mean, sigma, period, num_wraps)
    weights = jax.nn.softmax(-(shifted**2) / (2 * sigma**2), axis=-1)
    return jnp.sum(weights * (-shifted / sigma**2), -1)


def multi_sigma_score_loss(
    score: ArrayLike,
    x_noisy: ArrayLike,
    x: ArrayLike,
    sigma: ArrayLike,
    *,
    period: float = 1.0,
    num_wraps: int = 3,
) -> Array:
    """CDVAE's denoising score-matching loss for periodic coordinates, per example.

    .. math:: \\tfrac12 \\sigma^2 \\left\\| s - \\nabla_{\\tilde x}
       \\log p_\\sigma(\\tilde x \\mid x) \\right\\|^2

    for ``x_noisy = wrap(x + sigma eps)`` at a noise level ``sigma`` drawn from a geometric
    ladder; the weight ``sigma^2`` makes every level's target of order one, so one network
    learns the scores of all levels (Song & Ermon 2019).

    Args:
      score: ``[..., d]`` predicted score at ``x_noisy``.
      x_noisy: ``[..., d]`` the noised coordinates (wrapped or not: the density is
        periodic).
      x: ``[..., d]`` the clean coordinates.
      sigma: the noise level of each example, broadcasting against ``x[..., 0]``.
      period: the period (1 for fractional coordinates).
      num_wraps: images on each side (static).

    Returns:
      ``[...]``: the loss of each example (summed over the last axis).

    References:
      Xie et al., CDVAE, 2022; Song & Ermon, Generative modeling by estimating gradients of
      the data distribution, 2019.

    Examples:
      >>> import jax.numpy as jnp
      >>> import vbounds as vb
      >>> x, noisy = jnp.array([[0.1, 0.5]]), jnp.array([[0.95, 0.52]])
      >>> target = vb.diffusion.wrapped_normal_score(noisy, x, 0.1, period=1.0)
      >>> float(vb.diffusion.multi_sigma_score_loss(target, noisy, x, 0.1)[0])
      0.0
    """
    score = _floats(score, "score")
    x_noisy = _floats(x_noisy, "x_noisy")
    x = _floats(x, "x")
    if not (score.shape == x_noisy.shape == x.shape) or score.ndim < 1:
        raise ValueError(
            "`score`, `x_noisy` and `x` must share one shape [..., d], got "
            f"{score.shape}, {x_noisy.shape} and {x.shape}"
        )
    sigma = _floats(sigma, "sigma")[..., None]
    target = wrapped_normal_score(x_noisy, x, sigma, period=period, num_wraps=num_wraps)
    return 0.5 * jnp.sum(sigma**2 * (score - target) ** 2, -1)
