"""Diffusion on rotations: the isotropic Gaussian on SO(3) (IGSO(3)) and SE(3) score terms.

A rotation is given by its rotation vector ``v = omega * axis`` (``omega = |v|`` in
``[0, pi]``), with :func:`so3_exp` / :func:`so3_log` to and from 3x3 matrices. IGSO(3) with
scale ``sigma`` is the law at time ``sigma^2`` of Brownian motion on SO(3) started at the
identity (generator half the Laplace-Beltrami operator of the metric whose geodesic
distance is the rotation angle), so for small ``sigma`` its rotation vector is close to
``N(0, sigma^2 I_3)``. Its density with respect to the uniform (Haar) probability measure
depends on the angle only:

.. math:: f_\\sigma(\\omega) = \\sum_{l \\ge 0} (2l + 1)\\, e^{-l(l+1)\\sigma^2/2}
   \\frac{\\sin((l + 1/2)\\omega)}{\\sin(\\omega/2)}

(the character expansion of the heat kernel), and the angle itself has density
``(1 - cos omega) / pi * f(omega)`` on ``[0, pi]``. Poisson summation turns the series into
a sum over windings that converges fast where the series does not (small ``sigma``):

.. math:: f_\\sigma(\\omega) = \\frac{\\sqrt{2\\pi}\\, e^{\\sigma^2/8}}
   {\\sigma^3 \\sin(\\omega/2)} \\sum_{k \\in \\mathbb Z} (-1)^k (\\omega - 2\\pi k)\\,
   e^{-(\\omega - 2\\pi k)^2 / (2\\sigma^2)}.

:func:`igso3_log_prob` uses the winding sum for ``sigma < 1`` and the series above it; the
two agree to float64 precision where both converge (tested).

References:
  Nikolayev & Savyolova, Normal distribution on the rotation group SO(3), 1997.
  Leach et al., Denoising diffusion probabilistic models on SO(3) for rotational alignment,
  2022.
  Yim et al., SE(3) diffusion model with application to protein backbone generation, 2023.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vbounds._validation import check_int, require

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_SMALL = 1e-4  # below this angle, the Taylor forms replace sin(w)/w and friends
_SERIES_FROM = 1.0  # sigma at which log-density switches from winding sum to series
_NUM_WINDINGS = 4  # |k| <= 4: the next winding is below exp(-(7 pi)^2 / 2) for sigma < 1
_NUM_SERIES = 24  # l < 24: the next term is below exp(-24 * 25 / 2) for sigma >= 1


def _vectors(v: ArrayLike, name: str) -> Array:
    v = jnp.asarray(v)
    if not jnp.issubdtype(v.dtype, jnp.floating):
        v = v.astype(jnp.float32)
    if v.ndim < 1 or v.shape[-1] != 3:
        raise ValueError(f"`{name}` must have a trailing axis of size 3, got shape {v.shape}")
    return v


def _matrices(r: ArrayLike, name: str) -> Array:
    r = jnp.asarray(r)
    if not jnp.issubdtype(r.dtype, jnp.floating):
        r = r.astype(jnp.float32)
    if r.ndim < 2 or r.shape[-2:] != (3, 3):
        raise ValueError(f"`{name}` must end in a 3x3 matrix, got shape {r.shape}")
    return r


def _sigma(sigma: ArrayLike) -> Array:
    sigma = jnp.asarray(sigma)
    if not jnp.issubdtype(sigma.dtype, jnp.floating):
        sigma = sigma.astype(jnp.float32)
    require(lambda s: s > 0, sigma, message="`sigma` must be positive")
    return sigma


def _hat(v: Array) -> Array:
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = jnp.zeros_like(x)
    rows = [
        jnp.stack([zero, -z, y], -1),
        jnp.stack([z, zero, -x], -1),
        jnp.stack([-y, x, zero], -1),
    ]
    return jnp.stack(rows, -2)


def so3_exp(rotvec: ArrayLike) -> Array:
    """The rotation matrix of a rotation vector (Rodrigues' formula).

    .. math:: \\exp(\\hat v) = I + \\frac{\\sin\\omega}{\\omega}\\hat v
       + \\frac{1 - \\cos\\omega}{\\omega^2}\\hat v^2, \\quad \\omega = |v|

    Args:
      rotvec: ``[..., 3]`` rotation vectors.

    Returns:
      ``[..., 3, 3]`` rotation matrices.

    Examples:
      >>> import jax.numpy as jnp
      >>> import vbounds as vb
      >>> r = vb.diffusion.so3_exp(jnp.array([0.0, 0.0, jnp.pi / 2]))
      >>> [round(float(a), 4) for a in r[:, 0]]  # x-axis turned a quarter about z
      [0.0, 1.0, 0.0]
    """
    v = _vectors(rotvec, "rotvec")
    theta2 = jnp.sum(v**2, -1)
    small = theta2 < _SMALL**2
    theta2_safe = jnp.where(small, 1.0, theta2)
    theta = jnp.sqrt(theta2_safe)
    a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(theta) / theta)
    b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(theta)) / theta2_safe)
    k = _hat(v)
    eye = jnp.eye(3, dtype=v.dtype)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def so3_log(rotation: ArrayLike) -> Array:
    """The rotation vector (angle in ``[0, pi]`` times axis) of a rotation matrix.

    Stable at both ends: near the identity by the first-order form, near a half turn by
    reading the axis off the symmetric part ``(R + I) / 2 = a a^T`` (at exactly ``pi`` the
    sign of the axis is arbitrary: both vectors give the same rotation).

    Args:
      rotation: ``[..., 3, 3]`` rotation matrices.

    Returns:
      ``[..., 3]`` rotation vectors.

    Examples:
      >>> import jax.numpy as jnp
      >>> import vbounds as vb
      >>> v = jnp.array([0.3, -0.2, 0.5])
      >>> back = vb.diffusion.so3_log(vb.diffusion.so3_exp(v))
      >>> bool(jnp.allclose(back, v, atol=1e-6))
      True
    """
    r = _matrices(rotation, "rotation")
    cos = jnp.clip((jnp.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    skew = jnp.stack(
        [r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]],
        -1,
    )
    # atan2 of (sin, cos) is well conditioned at every angle; arccos(cos) loses half the
    # digits near 0 and pi.
    theta = jnp.arctan2(jnp.linalg.norm(skew, axis=-1) / 2.0, cos)
    # General and small angles: v = theta / (2 sin theta) * skew.
    small = theta < _SMALL
    sin = jnp.where(small, 1.0, jnp.sin(theta))
    factor = jnp.where(small, 0.5 + theta**2 / 12.0, theta / (2.0 * sin))
    general = factor[..., None] * skew
    # Near pi, sin(theta) -> 0 and the skew part vanishes: read the axis off the symmetric
    # part, (R + R^T) / 2 = cos(theta) I + (1 - cos(theta)) a a^T (exact at every angle), from
    # the column of a a^T with the largest diagonal entry; its sign from the skew part.
    eye = jnp.eye(3, dtype=r.dtype)
    outer = ((r + jnp.swapaxes(r, -1, -2)) / 2.0 - cos[..., None, None] * eye) / jnp.maximum(
        1.0 - cos, 1e-6
    )[..., None, None]
    diag = jnp.diagonal(outer, axis1=-2, axis2=-1)
    col = jnp.argmax(diag, -1)
    column = jnp.take_along_axis(outer, col[..., None, None], -1)[..., 0]
    axis = column / jnp.sqrt(jnp.maximum(jnp.take_along_axis(diag, col[..., None], -1), 1e-30))
    sign = jnp.where(jnp.sum(axis * skew, -1) < 0, -1.0, 1.0)
    near_pi = theta > math.pi - 0.1
    return jnp.where(near_pi[..., None], (sign * theta)[..., None] * axis, general)


@jax.jit
def _winding_sum_log_f(omega: Array, sigma: Array) -> Array:
    k = jnp.arange(-_NUM_WINDINGS, _NUM_WINDINGS + 1, dtype=omega.dtype)
    shifted = omega[..., None] - 2.0 * math.pi * k
    sign = jnp.where(k % 2 == 0, 1.0, -1.0).astype(omega.dtype)
    s = sigma[..., None]
    # Each term over sin(omega / 2); the k = 0 term's ratio omega / sin(omega / 2) -> 2.
    log_gauss = -(shifted**2) / (2.0 * s**2)
    small = omega < _SMALL
    half_sin = jnp.where(small, 1.0, jnp.sin(omega / 2.0))
    ratio0 = jnp.where(small, 2.0 - omega**2 / 12.0, omega / half_sin)
    ratios = jnp.where(k == 0, ratio0[..., None], sign * shifted / half_sin[..., None])
    # Windings |k| >= 1 pair up into an odd function of omega: at omega -> 0 their ratio
    # has a finite limit, but they are below exp(-(2 pi)^2 / 2) relative to k = 0 anyway.
    ratios = jnp.where(small[..., None] & (k != 0), 0.0, ratios)
    log_sum = jax.nn.logsumexp(log_gauss, axis=-1, b=ratios)
    return 0.5 * math.log(2.0 * math.pi) + sigma**2 / 8.0 - 3.0 * jnp.log(sigma) + log_sum


@functools.partial(jax.jit, static_argnums=2)
def _series_f(omega: Array, sigma: Array, num_terms: int) -> Array:
    l_ = jnp.arange(num_terms, dtype=omega.dtype)
    small = omega < _SMALL
    half_sin = jnp.where(small, 1.0, jnp.sin(omega / 2.0))
    character = jnp.where(
        small[..., None],
        2.0 * l_ + 1.0,
        jnp.sin((l_ + 0.5) * omega[..., None]) / half_sin[..., None],
    )
    weights = (2.0 * l_ + 1.0) * jnp.exp(-l_ * (l_ + 1.0) * sigma[..., None] ** 2 / 2.0)
    return jnp.sum(weights * character, -1)


def igso3_log_prob(rotvec: ArrayLike, sigma: ArrayLike, *, mean: ArrayLike | None = None) -> Array:
    """Log-density of IGSO(3) with respect to the uniform (Haar) probability measure.

    .. math:: \\log f_\\sigma(\\omega(\\mu^\\top R))

    with ``f`` the module's series (the winding sum for ``sigma < 1``). ``rotvec`` is the
    rotation vector of ``R``; with ``mean`` (a rotation vector), the density is centred at
    that rotation. The uniform distribution has log-density 0 under this convention.

    Args:
      rotvec: ``[..., 3]`` rotation vectors of the points.
      sigma: the scale (``> 0``), broadcasting against ``rotvec[..., 0]``.
      mean: optional ``[..., 3]`` rotation vector of the centre (default: the identity).

    Returns:
      ``[...]`` log-densities.

    References:
      Nikolayev & Savyolova, 1997; Leach et al., 2022.

    Examples:
      >>> import jax.numpy as jnp
      >>> import vbounds as vb
      >>> round(float(vb.diffusion.igso3_log_prob(jnp.zeros(3), 30.0)), 4)  # ~ uniform
      0.0
      >>> lp = vb.diffusion.igso3_log_prob(jnp.array([0.1, 0.0, 0.0]), 0.2)
      >>> round(float(lp), 2)  # about log(2 sqrt(2 pi) / sigma^3) - 1/8: a sharp peak
      6.32
    """
    v = _vectors(rotvec, "rotvec")
    if mean is not None:
        mu = _vectors(mean, "mean")
        v = so3_log(jnp.swapaxes(so3_exp(mu), -1, -2) @ so3_exp(v))
    omega = jnp.sqrt(jnp.maximum(jnp.sum(v**2, -1), 1e-30))
    return igso3_angle_log_density(omega, sigma)


def igso3_angle_log_density(omega: ArrayLike, sigma: ArrayLike) -> Array:
    """``log f_sigma(omega)``: IGSO(3)'s log-density (Haar) at rotations by angle ``omega``.

    The density of the angle itself is ``(1 - cos omega) / pi * f_sigma(omega)`` on
    ``[0, pi]``; see :func:`igso3_angle_pdf`.

    Args:
      omega: rotation angles in ``[0, pi]``.
      sigma: the scale (``> 0``), broadcasting against ``omega``.

    Returns:
      The log-densities, shaped like ``omega`` broadcast with ``sigma``.

    Examples:
      >>> import vbounds as vb
      >>> round(float(vb.diffusion.igso3_angle_log_density(3.0, 2.0)), 4)
      -0.0553
    """
    omega = jnp.asarray(omega)
    if not jnp.issubdtype(omega.dtype, jnp.floating):
        omega = omega.astype(jnp.float32)
    sigma = _sigma(sigma)
    omega, sigma = jnp.broadcast_arrays(omega, sigma.astype(omega.dtype))
    return _log_f(omega, sigma)


@jax.jit
def _log_f(omega: Array, sigma: Array) -> Array:
    windings = _winding_sum_log_f(omega, jnp.minimum(sigma, _SERIES_FROM))
    series = jnp.log(
        jnp.maximum(_series_f(omega, jnp.maximum(sigma, _SERIES_FROM), _NUM_SERIES), 1e-30)
    )
    return jnp.where(sigma < _SERIES_FROM, windings, series)


_dlog_f = jax.jit(jax.vmap(jax.grad(_log_f)))


def igso3_series(omega: ArrayLike, sigma: ArrayLike, *, num_terms: int = 1000) -> Array:
    """IGSO(3)'s density ``f_sigma(omega)`` by the character series, truncated at ``l < num_terms``.

    The textbook form used by the published SO(3) diffusion code; slow to converge for small
    ``sigma`` (the terms decay like ``exp(-l^2 sigma^2 / 2)``) and prone to cancellation in
    its tails, which is why :func:`igso3_angle_log_density` uses the winding sum there.

    Args:
      omega: rotation angles in ``[0, pi]``.
      sigma: the scale (``> 0``).
      num_terms: number of terms (static).

    Returns:
      The densities (not logs).

    Examples:
      >>> import vbounds as vb
      >>> round(float(vb.diffusion.igso3_series(3.0, 2.0, num_terms=50)), 4)
      0.9462
    """
    num_terms = check_int(num_terms, "num_terms")
    omega = jnp.asarray(omega)
    if not jnp.issubdtype(omega.dtype, jnp.floating):
        omega = omega.astype(jnp.float32)
    sigma = _sigma(sigma)
    omega, sigma = jnp.broadcast_arrays(omega, sigma.astype(omega.dtype))
    return _series_f(omega, sigma, num_terms)


def igso3_angle_pdf(omega: ArrayLike, sigma: ArrayLike) -> Array:
    """Density of IGSO(3)'s rotation angle on ``[0, pi]``: ``(1 - cos w) / pi * f_sigma(w)``.

    Args:
      omega: angles in ``[0, pi]``.
      sigma: the scale (``> 0``).

    Returns:
      The densities; they integrate to one over ``[0, pi]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import vbounds as vb
      >>> w = jnp.linspace(0.0, jnp.pi, 2001)
      >>> round(float(jnp.trapezoid(vb.diffusion.igso3_angle_pdf(w, 0.5), w)), 4)
      1.0
    """
    omega = jnp.asarray(omega)
    if not jnp.issubdtype(omega.dtype, jnp.floating):
        omega = omega.astype(jnp.float32)
    return (1.0 - jnp.cos(omega)) / math.pi * jnp.exp(igso3_angle_log_density(omega, sigma))


def _angle_grid(sigma: Array, num_grid: int):
    omega = jnp.linspace(0.0, math.pi, num_grid, dtype=sigma.dtype)
    pdf = igso3_angle_pdf(omega, sigma)
    cdf = jnp.concatenate([jnp.zeros(1, pdf.dtype), jnp.cumsum((pdf[1:] + pdf[:-1]) / 2.0)])
    return omega, cdf / cdf[-1]


def igso3_sample(
    key: jax.Array, sigma: ArrayLike, shape: tuple = (), *, num_grid: int = 2048
) -> Array:
    """Draws rotation vectors from IGSO(3) centred at the identity.

    The axis is uniform on the sphere; the angle is drawn by inverting its CDF,
    tabulated by the trapezoid rule on ``num_grid`` angles and interpolated linearly.

    Args:
      key: a PRNG key.
      sigma: a scalar scale (``> 0``).
      shape: the batch shape of the draws (static).
      num_grid: angles in the CDF table (static).

    Returns:
      ``[*shape, 3]`` rotation vectors (use :func:`so3_exp` for matrices).

    Examples:
      >>> import jax
      >>> import vbounds as vb
      >>> v = vb.diffusion.igso3_sample(jax.random.key(0), 0.3, (4,))
      >>> v.shape
      (4, 3)
    """
    num_grid = check_int(num_grid, "num_grid", minimum=2)
    sigma = _sigma(sigma)
    if sigma.ndim:
        raise ValueError(f"`sigma` must be a scalar, got shape {sigma.shape}")
    shape = tuple(shape)
    key_axis, key_angle = jax.random.split(key)
    axis = jax.random.normal(key_axis, (*shape, 3), sigma.dtype)
    axis = axis / jnp.linalg.norm(axis, axis=-1, keepdims=True)
    omega_grid, cdf = _angle_grid(sigma, num_grid)
    u = jax.random.uniform(key_angle, shape, sigma.dtype)
    omega = jnp.interp(u, cdf, omega_grid)
    return omega[..., None] * axis


def igso3_score(rotvec: ArrayLike, sigma: ArrayLike) -> Array:
    """The score of IGSO(3) (centred at the identity) at a rotation, as a rotation vector.

    .. math:: \\nabla \\log f_\\sigma = \\frac{d \\log f_\\sigma}{d\\omega}(\\omega)\\,
       \\frac{v}{\\omega}

    the Riemannian gradient in the left-invariant frame, written as a vector of the Lie
    algebra: the denoising target of SO(3) score matching. (For a density that depends on
    the angle only it equals the gradient with respect to the rotation vector.)

    Args:
      rotvec: ``[..., 3]`` rotation vectors.
      sigma: the scale (``> 0``), broadcasting against ``rotvec[..., 0]``.

    Returns:
      ``[..., 3]`` scores.

    Examples:
      >>> import jax.numpy as jnp
      >>> import vbounds as vb
      >>> s = vb.diffusion.igso3_score(jnp.array([0.01, 0.0, 0.0]), 0.1)
      >>> round(float(s[0]), 2)  # ~ -v / sigma^2 near the identity
      -1.0
    """
    v = _vectors(rotvec, "rotvec")
    sigma = _sigma(sigma)
    omega = jnp.sqrt(jnp.maximum(jnp.sum(v**2, -1), 1e-30))
    omega, sigma = jnp.broadcast_arrays(omega, sigma.astype(omega.dtype))
    dlogf = _dlog_f(omega.ravel(), sigma.ravel()).reshape(omega.shape)
    # v / omega is undefined at the identity, where the score vanishes.
    direction = jnp.where(omega[..., None] > _SMALL, v / omega[..., None], 0.0)
    return jnp.where(
        omega[..., None] > _SMALL, dlogf[..., None] * direction, -v / sigma[..., None] ** 2
    )


def igso3_score_norm(sigma: ArrayLike, *, num_grid: int = 4096) -> Array:
    """``sqrt(E ||score||^2)`` under IGSO(3), by quadrature in the angle.

    The per-scale normaliser of the rotation score-matching loss (Yim et al. 2023), so that
    every noise level weighs alike.

    Args:
      sigma: a scalar scale (``> 0``).
      num_grid: quadrature angles (static).

    Returns:
      A scalar, about ``sqrt(3) / sigma`` for small ``sigma``.

    Examples:
      >>> import vbounds as vb
      >>> round(float(vb.diffusion.igso3_score_norm(0.05) * 0.05), 2)
      1.73
    """
    num_grid = check_int(num_grid, "num_grid", minimum=3)
    sigma = _sigma(sigma)
    if sigma.ndim:
        raise ValueError(f"`sigma` must be a scalar, got shape {sigma.shape}")
    return _score_norm(sigma, num_grid)


@functools.partial(jax.jit, static_argnums=1)
def _score_norm(sigma: Array, num_grid: int) -> Array:
    omega = jnp.linspace(0.0, math.pi, num_grid, dtype=sigma.dtype)
    sigmas = jnp.full_like(omega, sigma)
    dlogf = _dlog_f(omega, sigmas)
    pdf = (1.0 - jnp.cos(omega)) / math.pi * jnp.exp(_log_f(omega, sigmas))
    return jnp.sqrt(jnp.trapezoid(dlogf**2 * pdf, omega))


class SE3ScoreTerms(NamedTuple):
    """The two per-example terms of SE(3) denoising score matching.

    Attributes:
      rotation: ``||s_rot - score||^2 / E||score||^2`` (the IGSO(3) target, normalised).
      translation: ``sigma_t^2 ||s_trans - score||^2``, i.e. the noise-prediction error.
    """

    rotation: Array
    translation: Array


def se3_dsm_loss(
    rotation_score: ArrayLike,
    translation_score: ArrayLike,
    *,
    rotation_noise: ArrayLike,
    rotation_sigma: ArrayLike,
    translation_eps: ArrayLike,
    translation_sigma: ArrayLike,
) -> SE3ScoreTerms:
    """Denoising score-matching terms of SE(3) diffusion (FrameDiff), for one frame.

    The rotation is noised as ``R_t = R_0 exp(rotation_noise)`` with
    ``rotation_noise ~ IGSO(3)(rotation_sigma)``; the translation as
    ``x_t = alpha_t x_0 + sigma_t eps``. The targets are the conditional scores
    ``igso3_score(rotation_noise)`` and ``-eps / sigma_t``:

    .. math:: L_{rot} = \\frac{\\|s_{rot} - \\nabla\\log f_{\\sigma}(\\mathrm{noise})\\|^2}
       {E\\|\\nabla \\log f_\\sigma\\|^2}, \\qquad
       L_{trans} = \\sigma_t^2 \\|s_{trans} + \\epsilon/\\sigma_t\\|^2
       = \\|\\sigma_t s_{trans} + \\epsilon\\|^2 .

    Each is zero at the exact conditional score; ``L_trans`` is the noise-prediction error
    of ``eps_hat = -sigma_t s_trans``. Sum over frames and weight them as you choose.

    Args:
      rotation_score: ``[..., 3]`` predicted rotation score (a Lie-algebra vector).
      translation_score: ``[..., 3]`` predicted translation score.
      rotation_noise: ``[..., 3]`` the rotation vector of ``R_0^T R_t``.
      rotation_sigma: the IGSO(3) scale at this time (a scalar).
      translation_eps: ``[..., 3]`` the translation noise.
      translation_sigma: ``sigma_t`` of the translation process (a scalar).

    Returns:
      :class:`SE3ScoreTerms` of per-frame losses ``[...]``.

    References:
      Yim et al., SE(3) diffusion model with application to protein backbone generation,
      2023.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import vbounds as vb
      >>> noise = vb.diffusion.igso3_sample(jax.random.key(0), 0.5, (2,))
      >>> eps = jnp.ones((2, 3))
      >>> terms = vb.diffusion.se3_dsm_loss(
      ...     vb.diffusion.igso3_score(noise, 0.5), -eps / 0.3, rotation_noise=noise,
      ...     rotation_sigma=0.5, translation_eps=eps, translation_sigma=0.3)
      >>> [round(float(a), 6) for a in terms.rotation + terms.translation]
      [0.0, 0.0]
    """
    s_rot = _vectors(rotation_score, "rotation_score")
    s_trans = _vectors(translation_score, "translation_score")
    noise = _vectors(rotation_noise, "rotation_noise")
    eps = _vectors(translation_eps, "translation_eps")
    sigma_t = _sigma(translation_sigma)
    if s_rot.shape != noise.shape:
        raise ValueError(
            f"`rotation_score` {s_rot.shape} and `rotation_noise` {noise.shape} must match"
        )
    if s_trans.shape != eps.shape:
        raise ValueError(
            f"`translation_score` {s_trans.shape} and `translation_eps` {eps.shape} must match"
        )
    target = igso3_score(noise, rotation_sigma)
    rotation = jnp.sum((s_rot - target) ** 2, -1) / igso3_score_norm(rotation_sigma) ** 2
    translation = jnp.sum((sigma_t * s_trans + eps) ** 2, -1)
    return SE3ScoreTerms(rotation, translation)
