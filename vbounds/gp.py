"""Gaussian-process regression: the exact marginal likelihood and its sparse bounds (``vb.gp``).

A kernel is a plain callable ``kernel(a, b) -> [n, m]`` Gram matrix of inputs ``a [n, d]`` and
``b [m, d]`` that closes over its hyperparameters (:func:`rbf`, :func:`matern52`, or your own).
The prior mean is zero, the likelihood ``y_n ~ N(f(x_n), noise_variance)``. Every function
works through Cholesky factors; ``jitter`` is added to the diagonal of the prior covariance
of the inducing values (and of ``K`` for the exact value) so that float32 factorisations stay
stable. Results are scalars in nats: bounds are to be maximised, a training loss is
``-bound``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import distrax
import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array, check_int, require

__all__ = [
    "InducingPosterior",
    "collapsed_elbo",
    "coreset_elbo",
    "coreset_posterior",
    "log_marginal_likelihood",
    "matern52",
    "optimal_inducing_posterior",
    "predict",
    "rbf",
    "svgp_elbo",
]

Kernel = Callable[[jax.Array, jax.Array], jax.Array]
_LOG_2PI = math.log(2.0 * math.pi)


class InducingPosterior(NamedTuple):
    """A Gaussian ``q(u) = N(mean, scale_tril scale_tril^T)`` over the inducing values."""

    mean: jax.Array
    scale_tril: jax.Array


# --------------------------------------------------------------------------- kernels


def _positive(value, name: str) -> jax.Array:
    arr = as_float_array(value, name)
    require(lambda v: v > 0, arr, message=f"`{name}` must be positive, got {value}.")
    return arr


def _scaled_sq_dist(a, b, lengthscale) -> jax.Array:
    a = as_float_array(a, "a")
    b = as_float_array(b, "b")
    for name, arr in (("a", a), ("b", b)):
        if arr.ndim != 2:
            raise ValueError(f"`{name}` must be [num_points, dims], got shape {arr.shape}.")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"`a` and `b` must have the same dims, got {a.shape} and {b.shape}.")
    a, b = a / lengthscale, b / lengthscale
    # Differences rather than |a|^2 + |b|^2 - 2ab: exact zeros on the diagonal in float32.
    return jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)


def rbf(*, lengthscale: jax.typing.ArrayLike = 1.0, variance: jax.typing.ArrayLike = 1.0):
    """Squared-exponential kernel: ``variance * exp(-|a - b|^2 / (2 lengthscale^2))``.

    Args:
      lengthscale: a positive scalar, or ``[dims]`` for one lengthscale per input dimension.
      variance: the positive prior variance ``k(a, a)``.

    Returns:
      ``kernel(a, b)`` mapping ``[n, dims]`` and ``[m, dims]`` inputs to the ``[n, m]`` Gram
      matrix.

    References:
      Rasmussen & Williams, Gaussian Processes for Machine Learning, 2006, eq. 4.9.

    Examples:
      >>> k = vb.gp.rbf(lengthscale=2.0, variance=3.0)
      >>> round(float(k(jnp.zeros((1, 1)), jnp.full((1, 1), 2.0))[0, 0]), 4)  # 3 exp(-1/2)
      1.8196
    """
    lengthscale = _positive(lengthscale, "lengthscale")
    variance = _positive(variance, "variance")

    def kernel(a, b):
        return variance * jnp.exp(-0.5 * _scaled_sq_dist(a, b, lengthscale))

    return kernel


def matern52(*, lengthscale: jax.typing.ArrayLike = 1.0, variance: jax.typing.ArrayLike = 1.0):
    """Matern 5/2 kernel: ``variance (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)``, ``r = |a - b| / l``.

    Twice differentiable sample paths, rougher than :func:`rbf`'s.

    Args:
      lengthscale: a positive scalar, or ``[dims]`` for one lengthscale per input dimension.
      variance: the positive prior variance ``k(a, a)``.

    Returns:
      ``kernel(a, b)`` mapping ``[n, dims]`` and ``[m, dims]`` inputs to the ``[n, m]`` Gram
      matrix; its gradients stay finite where ``a = b``.

    References:
      Rasmussen & Williams, Gaussian Processes for Machine Learning, 2006, eq. 4.17.

    Examples:
      >>> k = vb.gp.matern52(lengthscale=1.0, variance=1.0)
      >>> round(float(k(jnp.zeros((1, 1)), jnp.ones((1, 1)))[0, 0]), 4)
      0.524
    """
    lengthscale = _positive(lengthscale, "lengthscale")
    variance = _positive(variance, "variance")

    def kernel(a, b):
        sq = _scaled_sq_dist(a, b, lengthscale)
        # sqrt has an infinite derivative at 0: route the zeros around it.
        positive = sq > 0
        r = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
        s5r = math.sqrt(5.0) * r
        return variance * (1.0 + s5r + 5.0 / 3.0 * sq) * jnp.exp(-s5r)

    return kernel


# --------------------------------------------------------------------------- checks


def _inputs(kernel, x, y=None):
    if not callable(kernel):
        raise TypeError(f"`kernel` must be a callable kernel(a, b), got {type(kernel).__name__}.")
    x = as_float_array(x, "x")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"`x` must be [num_points, dims] with num_points >= 1, got {x.shape}.")
    if y is None:
        return x
    y = as_float_array(y, "y")
    if y.shape != x.shape[:1]:
        raise ValueError(f"`y` must be [num_points] = {x.shape[:1]} like `x`, got {y.shape}.")
    return x, y


def _inducing(z, x) -> jax.Array:
    z = as_float_array(z, "z")
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] != x.shape[1]:
        raise ValueError(
            f"`z` must be [num_inducing, {x.shape[1]}] (the dims of `x`), got {z.shape}."
        )
    return z


def _variance(value, name: str) -> jax.Array:
    arr = as_float_array(value, name)
    if arr.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar, got shape {arr.shape}.")
    require(lambda v: v > 0, arr, message=f"`{name}` must be positive, got {value}.")
    return arr


def _jitter(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"`jitter` must be a non-negative float, got {value!r}.")
    return float(value)


def _q_u(q_mean, q_scale_tril, num_inducing: int):
    q_mean = as_float_array(q_mean, "q_mean")
    if q_mean.shape != (num_inducing,):
        raise ValueError(f"`q_mean` must be [{num_inducing}] like `z`, got {q_mean.shape}.")
    q_scale_tril = as_float_array(q_scale_tril, "q_scale_tril")
    if q_scale_tril.shape != (num_inducing, num_inducing):
        raise ValueError(
            f"`q_scale_tril` must be [{num_inducing}, {num_inducing}], got {q_scale_tril.shape}."
        )
    return q_mean, jnp.tril(q_scale_tril)


# --------------------------------------------------------------------------- shared algebra


def _diag(kernel, x) -> jax.Array:
    """``k(x_n, x_n)`` for every row, without forming the ``[n, n]`` Gram matrix."""
    return jax.vmap(lambda row: kernel(row[None], row[None])[0, 0])(x)


def _chol(kernel, z, jitter: float) -> jax.Array:
    kzz = kernel(z, z)
    return jnp.linalg.cholesky(kzz + jitter * jnp.eye(z.shape[0], dtype=kzz.dtype))


def _solve_lower(lower, rhs) -> jax.Array:
    return jax.scipy.linalg.solve_triangular(lower, rhs, lower=True)


def _lower_factor(upper_t: jax.Array) -> jax.Array:
    """A lower-triangular ``L`` with ``L L^T = C^T C`` from ``C``, by QR (no squaring)."""
    r = jnp.linalg.qr(upper_t, mode="r")
    sign = jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(r.dtype)
    return (r * sign[:, None]).T


def _gaussian_posterior(chol_zz, features, targets) -> InducingPosterior:
    """Posterior of ``u ~ N(0, L L^T)`` given whitened observations.

    With ``v = L^-1 u ~ N(0, I)`` observed through ``targets ~ N(features^T v, I)``, the
    posterior of ``v`` has covariance ``B^-1``, ``B = I + F F^T``, and mean ``B^-1 F t``;
    ``u = L v``.
    """
    m = chol_zz.shape[0]
    chol_b = jnp.linalg.cholesky(jnp.eye(m, dtype=features.dtype) + features @ features.T)
    mean_v = jax.scipy.linalg.cho_solve((chol_b, True), features @ targets)
    # cov_u = L B^-1 L^T = C^T C with C = chol_b^-1 L^T.
    return InducingPosterior(chol_zz @ mean_v, _lower_factor(_solve_lower(chol_b, chol_zz.T)))


# --------------------------------------------------------------------------- bounds


def log_marginal_likelihood(
    kernel: Kernel,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
    *,
    jitter: float = 1e-6,
) -> jax.Array:
    """Exact log marginal likelihood of GP regression, ``O(n^3)``.

    .. math:: \\log p(y) = \\log \\mathcal{N}(y \\mid 0, K_{xx} + \\sigma^2 I)

    Args:
      kernel: ``kernel(a, b) -> [n, m]`` Gram matrix.
      x: inputs ``[n, dims]``.
      y: targets ``[n]``.
      noise_variance: the likelihood's variance ``sigma^2``, a positive scalar.
      jitter: added to the diagonal of ``K_xx`` (0 gives the formula exactly).

    Returns:
      The scalar ``log p(y)`` in nats (exact, not a bound).

    References:
      Rasmussen & Williams, Gaussian Processes for Machine Learning, 2006, eq. 2.30.

    Examples:
      >>> x, y = jnp.zeros((1, 1)), jnp.zeros(1)  # one point: y ~ N(0, 1 + 1)
      >>> lml = vb.gp.log_marginal_likelihood(vb.gp.rbf(), x, y, 1.0, jitter=0.0)
      >>> round(float(lml), 4), round(-0.5 * float(jnp.log(4 * jnp.pi)), 4)
      (-1.2655, -1.2655)
    """
    x, y = _inputs(kernel, x, y)
    noise = _variance(noise_variance, "noise_variance")
    jitter = _jitter(jitter)
    k = kernel(x, x)
    chol = jnp.linalg.cholesky(k + (noise + jitter) * jnp.eye(x.shape[0], dtype=k.dtype))
    alpha = _solve_lower(chol, y)
    n = x.shape[0]
    return -0.5 * (n * _LOG_2PI + jnp.sum(alpha**2)) - jnp.sum(jnp.log(jnp.diagonal(chol)))


def collapsed_elbo(
    kernel: Kernel,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    z: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
    *,
    jitter: float = 1e-6,
) -> jax.Array:
    """Titsias' collapsed bound of sparse GP regression (``q(u)`` optimised out), ``O(n m^2)``.

    .. math:: \\mathcal{L} = \\log \\mathcal{N}(y \\mid 0, Q + \\sigma^2 I)
        - \\frac{\\operatorname{tr}(K_{xx} - Q)}{2 \\sigma^2},
        \\quad Q = K_{xz} K_{zz}^{-1} K_{zx}

    Equal to :func:`log_marginal_likelihood` at ``z = x`` and never above it; equal to
    :func:`svgp_elbo` at :func:`optimal_inducing_posterior`.

    Args:
      kernel: ``kernel(a, b) -> [n, m]`` Gram matrix.
      x: inputs ``[n, dims]``.
      y: targets ``[n]``.
      z: inducing inputs ``[m, dims]``.
      noise_variance: the likelihood's variance ``sigma^2``, a positive scalar.
      jitter: added to the diagonal of ``K_zz``.

    Returns:
      The scalar lower bound on ``log p(y)``, in nats.

    References:
      Titsias, Variational Learning of Inducing Variables in Sparse Gaussian Processes, 2009.

    Examples:
      >>> x = jnp.linspace(-2.0, 2.0, 8)[:, None]
      >>> y, k = jnp.sin(2.0 * x[:, 0]), vb.gp.rbf()
      >>> exact = vb.gp.log_marginal_likelihood(k, x, y, 0.1)
      >>> bound = vb.gp.collapsed_elbo(k, x, y, x[::4], 0.1)  # 2 inducing points
      >>> bool(bound < exact)
      True
    """
    x, y = _inputs(kernel, x, y)
    z = _inducing(z, x)
    noise = _variance(noise_variance, "noise_variance")
    chol_zz = _chol(kernel, z, _jitter(jitter))
    a = _solve_lower(chol_zz, kernel(z, x)) / jnp.sqrt(noise)  # [m, n]
    m, n = a.shape
    chol_b = jnp.linalg.cholesky(jnp.eye(m, dtype=a.dtype) + a @ a.T)
    c = _solve_lower(chol_b, a @ y) / jnp.sqrt(noise)
    log_normal = (
        -0.5 * n * (_LOG_2PI + jnp.log(noise))
        - jnp.sum(jnp.log(jnp.diagonal(chol_b)))
        - 0.5 * (jnp.sum(y**2) / noise - jnp.sum(c**2))
    )
    # tr(K - Q) / noise, with tr(Q) / noise = |A|^2.
    trace = jnp.sum(_diag(kernel, x)) / noise - jnp.sum(a**2)
    return log_normal - 0.5 * trace


def optimal_inducing_posterior(
    kernel: Kernel,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    z: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
    *,
    jitter: float = 1e-6,
) -> InducingPosterior:
    """The ``q(u)`` that maximises :func:`svgp_elbo` (Titsias' optimum).

    .. math:: \\Sigma = K_{zz} (K_{zz} + \\sigma^{-2} K_{zx} K_{xz})^{-1} K_{zz},
        \\quad \\mu = \\sigma^{-2} \\Sigma K_{zz}^{-1} K_{zx} y

    At ``z = x`` it is the exact posterior of ``f(x)``.

    Args:
      kernel: ``kernel(a, b) -> [n, m]`` Gram matrix.
      x: inputs ``[n, dims]``.
      y: targets ``[n]``.
      z: inducing inputs ``[m, dims]``.
      noise_variance: the likelihood's variance ``sigma^2``, a positive scalar.
      jitter: added to the diagonal of ``K_zz``.

    Returns:
      ``InducingPosterior(mean [m], scale_tril [m, m])``, lower-triangular with a positive
      diagonal.

    References:
      Titsias, 2009; Hensman, Fusi & Lawrence, Gaussian Processes for Big Data, 2013.

    Examples:
      >>> x = jnp.linspace(-2.0, 2.0, 8)[:, None]
      >>> y, k, z = jnp.sin(2.0 * x[:, 0]), vb.gp.rbf(), x[::2]
      >>> q = vb.gp.optimal_inducing_posterior(k, x, y, z, 0.1)
      >>> svgp = vb.gp.svgp_elbo(k, x, y, z, q.mean, q.scale_tril, 0.1)
      >>> abs(float(svgp - vb.gp.collapsed_elbo(k, x, y, z, 0.1))) < 1e-3
      True
    """
    x, y = _inputs(kernel, x, y)
    z = _inducing(z, x)
    noise = _variance(noise_variance, "noise_variance")
    chol_zz = _chol(kernel, z, _jitter(jitter))
    scale = jnp.sqrt(noise)
    return _gaussian_posterior(chol_zz, _solve_lower(chol_zz, kernel(z, x)) / scale, y / scale)


def predict(
    kernel: Kernel,
    x: jax.typing.ArrayLike,
    z: jax.typing.ArrayLike,
    q_mean: jax.typing.ArrayLike,
    q_scale_tril: jax.typing.ArrayLike,
    *,
    jitter: float = 1e-6,
) -> tuple[jax.Array, jax.Array]:
    """Marginals of ``q(f(x)) = int p(f(x) | u) q(u) du`` for ``q(u) = N(q_mean, S S^T)``.

    .. math:: \\mu = K_{xz} K_{zz}^{-1} m, \\quad
        v = k_{xx} - \\operatorname{diag}(Q) + \\operatorname{diag}(K_{xz} K_{zz}^{-1} S S^T
        K_{zz}^{-1} K_{zx})

    Add ``noise_variance`` to the variance for the predictive distribution of ``y``.

    Args:
      kernel: ``kernel(a, b) -> [n, m]`` Gram matrix.
      x: inputs ``[n, dims]`` to predict at.
      z: inducing inputs ``[m, dims]``.
      q_mean: mean of ``q(u)``, ``[m]``.
      q_scale_tril: lower-triangular scale ``S`` of ``q(u)``, ``[m, m]`` (the part above the
        diagonal is ignored).
      jitter: added to the diagonal of ``K_zz``.

    Returns:
      ``(mean [n], variance [n])`` of the latent function values.

    References:
      Hensman, Fusi & Lawrence, Gaussian Processes for Big Data, 2013.

    Examples:
      >>> z = jnp.zeros((1, 1))  # q(u) = N(1, 0): f(0) is known to be 1
      >>> mean, var = vb.gp.predict(vb.gp.rbf(), z, z, jnp.ones(1), jnp.zeros((1, 1)))
      >>> round(float(mean[0]), 4), round(float(var[0]), 4)
      (1.0, 0.0)
    """
    x = _inputs(kernel, x)
    z = _inducing(z, x)
    q_mean, q_scale_tril = _q_u(q_mean, q_scale_tril, z.shape[0])
    chol_zz = _chol(kernel, z, _jitter(jitter))
    a = _solve_lower(chol_zz, kernel(z, x))  # [m, n]
    proj = jax.scipy.linalg.solve_triangular(chol_zz.T, a, lower=False)  # K_zz^-1 K_zx
    mean = proj.T @ q_mean
    variance = _diag(kernel, x) - jnp.sum(a**2, axis=0) + jnp.sum((q_scale_tril.T @ proj) ** 2, 0)
    return mean, variance


def svgp_elbo(
    kernel: Kernel,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    z: jax.typing.ArrayLike,
    q_mean: jax.typing.ArrayLike,
    q_scale_tril: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
    *,
    num_data: int | None = None,
    jitter: float = 1e-6,
) -> jax.Array:
    """The uncollapsed (stochastic variational) sparse GP bound, minibatch-ready.

    .. math:: \\mathcal{L} = \\frac{N}{n} \\sum_{i=1}^{n}
        \\mathbb{E}_{q(f_i)} \\log \\mathcal{N}(y_i \\mid f_i, \\sigma^2)
        - \\mathrm{KL}(\\mathcal{N}(m, S S^T) \\,\\|\\, \\mathcal{N}(0, K_{zz}))

    with ``E log N(y | f, s) = log N(y | mu, s) - v / (2 s)`` for ``q(f_i) = N(mu_i, v_i)``
    (:func:`predict`). On a uniformly drawn minibatch of ``n`` of the ``N = num_data`` points
    it is an unbiased estimate of the full-data bound. It equals :func:`collapsed_elbo` at
    :func:`optimal_inducing_posterior` and lies below it elsewhere.

    Args:
      kernel: ``kernel(a, b) -> [n, m]`` Gram matrix.
      x: inputs ``[n, dims]`` (the full data or a minibatch).
      y: targets ``[n]``.
      z: inducing inputs ``[m, dims]``.
      q_mean: mean of ``q(u)``, ``[m]``.
      q_scale_tril: lower-triangular scale of ``q(u)``, ``[m, m]`` (above the diagonal
        ignored).
      noise_variance: the likelihood's variance ``sigma^2``, a positive scalar.
      num_data: the dataset size ``N`` the minibatch stands for (a static int); ``None`` means
        ``x`` is the whole data set.
      jitter: added to the diagonal of ``K_zz``.

    Returns:
      The scalar lower bound on ``log p(y)`` (or its minibatch estimate), in nats.

    References:
      Hensman, Fusi & Lawrence, Gaussian Processes for Big Data, 2013.

    Examples:
      >>> x = jnp.linspace(-2.0, 2.0, 8)[:, None]
      >>> y, k, z = jnp.sin(2.0 * x[:, 0]), vb.gp.rbf(), x[::2]
      >>> prior = vb.gp.svgp_elbo(k, x, y, z, jnp.zeros(4), jnp.eye(4), 0.1)  # q(u) = N(0, I)
      >>> bool(prior < vb.gp.collapsed_elbo(k, x, y, z, 0.1))
      True
    """
    x, y = _inputs(kernel, x, y)
    z = _inducing(z, x)
    noise = _variance(noise_variance, "noise_variance")
    q_mean, q_scale_tril = _q_u(q_mean, q_scale_tril, z.shape[0])
    n = x.shape[0]
    num_data = n if num_data is None else check_int(num_data, "num_data")
    jitter = _jitter(jitter)
    mean, variance = predict(kernel, x, z, q_mean, q_scale_tril, jitter=jitter)
    expected = -0.5 * (_LOG_2PI + jnp.log(noise) + ((y - mean) ** 2 + variance) / noise)
    q_u = distrax.MultivariateNormalTri(q_mean, q_scale_tril)
    p_u = distrax.MultivariateNormalTri(jnp.zeros_like(q_mean), _chol(kernel, z, jitter))
    return num_data / n * jnp.sum(expected) - q_u.kl_divergence(p_u)


# --------------------------------------------------------------------------- coresets


def coreset_posterior(
    kernel: Kernel,
    z: jax.typing.ArrayLike,
    pseudo_y: jax.typing.ArrayLike,
    weights: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
    *,
    temperature: jax.typing.ArrayLike = 1.0,
    jitter: float = 1e-6,
) -> InducingPosterior:
    """``q(u)``: the GP posterior at ``z`` given a weighted, tempered coreset of pseudo-data.

    .. math:: q(u) \\propto \\mathcal{N}(u \\mid 0, K_{zz}) \\prod_j
        \\mathcal{N}(\\tilde y_j \\mid u_j, \\sigma^2)^{\\beta w_j}

    Each pseudo-point ``(z_j, pseudo_y_j)`` enters as an observation of noise variance
    ``sigma^2 / (beta w_j)``; weight 0 drops it. The family has ``O(m)`` parameters (the
    pseudo-outputs and the weights) instead of ``O(m^2)``, and every member is a valid
    ``q(u)`` for :func:`svgp_elbo` (:func:`coreset_elbo`). With ``z = x``, ``pseudo_y = y``,
    unit weights and ``beta = 1`` it is the exact posterior.

    Args:
      kernel: ``kernel(a, b) -> [n, m]`` Gram matrix.
      z: pseudo-inputs ``[m, dims]``, the inducing inputs.
      pseudo_y: pseudo-outputs ``[m]``.
      weights: non-negative coreset weights ``w`` ``[m]``.
      noise_variance: the likelihood's variance ``sigma^2``, a positive scalar.
      temperature: the positive tempering ``beta`` of the coreset likelihood.
      jitter: added to the diagonal of ``K_zz``.

    Returns:
      ``InducingPosterior(mean [m], scale_tril [m, m])``.

    References:
      Ketenci, Perotte, Elhadad & Urteaga, A Coreset-based, Tempered Variational Posterior
      for Accurate and Scalable Stochastic Gaussian Process Inference, 2023.

    Examples:
      >>> z = jnp.zeros((1, 1))  # prior N(0, 1), one observation 2 at weight 3, noise 1
      >>> q = vb.gp.coreset_posterior(vb.gp.rbf(), z, jnp.full(1, 2.0), jnp.full(1, 3.0), 1.0)
      >>> round(float(q.mean[0]), 4), round(float(q.scale_tril[0, 0] ** 2), 4)  # 6/4, 1/4
      (1.5, 0.25)
    """
    z = _inputs(kernel, z)
    noise = _variance(noise_variance, "noise_variance")
    beta = _variance(temperature, "temperature")
    m = z.shape[0]
    pseudo_y = as_float_array(pseudo_y, "pseudo_y")
    weights = as_float_array(weights, "weights")
    for name, arr in (("pseudo_y", pseudo_y), ("weights", weights)):
        if arr.shape != (m,):
            raise ValueError(f"`{name}` must be [{m}] like `z`, got {arr.shape}.")
    require(lambda w: w >= 0, weights, message="`weights` must be non-negative.")
    chol_zz = _chol(kernel, z, _jitter(jitter))
    root_precision = jnp.sqrt(beta * weights / noise)
    return _gaussian_posterior(
        chol_zz, chol_zz.T * root_precision[None, :], root_precision * pseudo_y
    )


def coreset_elbo(
    kernel: Kernel,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    z: jax.typing.ArrayLike,
    pseudo_y: jax.typing.ArrayLike,
    weights: jax.typing.ArrayLike,
    noise_variance: jax.typing.ArrayLike,
    *,
    temperature: jax.typing.ArrayLike = 1.0,
    num_data: int | None = None,
    jitter: float = 1e-6,
) -> jax.Array:
    """The CVTGP bound: :func:`svgp_elbo` with ``q(u)`` = :func:`coreset_posterior`.

    .. math:: \\mathcal{L} = \\frac{N}{n} \\sum_i \\mathbb{E}_{q(f_i)}
        \\log \\mathcal{N}(y_i \\mid f_i, \\sigma^2) - \\mathrm{KL}(q(u) \\,\\|\\, p(u)),
        \\quad q(u) \\propto p(u) \\prod_j \\mathcal{N}(\\tilde y_j \\mid u_j,
        \\sigma^2)^{\\beta w_j}

    A lower bound on ``log p(y)`` for any pseudo-outputs, weights and temperature, stochastic
    in minibatches like :func:`svgp_elbo`; equal to :func:`log_marginal_likelihood` at
    ``z = x``, ``pseudo_y = y``, unit weights and ``beta = 1``.

    Args:
      kernel: ``kernel(a, b) -> [n, m]`` Gram matrix.
      x: inputs ``[n, dims]`` (the full data or a minibatch).
      y: targets ``[n]``.
      z: pseudo-inputs ``[m, dims]``.
      pseudo_y: pseudo-outputs ``[m]``.
      weights: non-negative coreset weights ``[m]``.
      noise_variance: the likelihood's variance ``sigma^2``, a positive scalar.
      temperature: the positive tempering ``beta`` of the coreset likelihood.
      num_data: the dataset size the minibatch stands for (a static int); ``None`` means the
        whole data set.
      jitter: added to the diagonal of ``K_zz``.

    Returns:
      The scalar lower bound on ``log p(y)`` (or its minibatch estimate), in nats.

    References:
      Ketenci, Perotte, Elhadad & Urteaga, 2023 (CVTGP).

    Examples:
      >>> x = jnp.linspace(-2.0, 2.0, 6)[:, None]
      >>> y, k = jnp.sin(2.0 * x[:, 0]), vb.gp.rbf()
      >>> tight = vb.gp.coreset_elbo(k, x, y, x, y, jnp.ones(6), 0.1)
      >>> abs(float(tight - vb.gp.log_marginal_likelihood(k, x, y, 0.1))) < 1e-3
      True
    """
    z = as_float_array(z, "z")
    q = coreset_posterior(
        kernel, z, pseudo_y, weights, noise_variance, temperature=temperature, jitter=jitter
    )
    return svgp_elbo(kernel, x, y, z, *q, noise_variance, num_data=num_data, jitter=jitter)
