"""Synthetic data with a known log-likelihood."""

import numpy as np
from scipy.stats import multivariate_normal

from vbounds.lab.data.dataset import Dataset


def linear_gaussian_parameters(
    *, seed: int = 0, data_dim: int = 8, latent_dim: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """The generating ``(W, b)`` of :func:`load_linear_gaussian` for the same arguments.

    Args:
      seed: the data set's seed.
      data_dim: dimension of ``x``.
      latent_dim: dimension of ``z``.

    Returns:
      ``W`` of shape ``[data_dim, latent_dim]`` and ``b`` of shape ``[data_dim]``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x16]))
    weights = rng.normal(size=(data_dim, latent_dim)) / np.sqrt(latent_dim)
    return weights, rng.normal(size=data_dim)


def load_linear_gaussian(
    *,
    seed: int = 0,
    data_dim: int = 8,
    latent_dim: int = 2,
    noise_scale: float = 0.5,
    num_train: int = 2000,
    num_test: int = 500,
) -> Dataset:
    """Samples a linear-Gaussian latent-variable data set with an exact test likelihood.

    .. math:: z \\sim N(0, I),\\quad x = W z + b + \\sigma \\epsilon,\\quad
       p(x) = N(x; b, W W^T + \\sigma^2 I).

    Args:
      seed: seed of the generating parameters ``W, b`` and of the samples.
      data_dim: dimension of ``x``.
      latent_dim: dimension of ``z``.
      noise_scale: observation noise ``sigma`` (positive).
      num_train: number of training examples.
      num_test: number of test examples.

    Returns:
      A :class:`Dataset` with ``likelihood="gaussian"`` and ``true_log_likelihood``
      holding the exact ``log p(x)`` of each test point.
    """
    if noise_scale <= 0:
        raise ValueError(f"noise_scale must be positive, got {noise_scale}")
    for name, value in (
        ("data_dim", data_dim),
        ("latent_dim", latent_dim),
        ("num_train", num_train),
        ("num_test", num_test),
    ):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    weights, offset = linear_gaussian_parameters(
        seed=seed, data_dim=data_dim, latent_dim=latent_dim
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x17]))
    n = num_train + num_test
    z = rng.normal(size=(n, latent_dim))
    x = (z @ weights.T + offset + noise_scale * rng.normal(size=(n, data_dim))).astype(np.float32)
    covariance = weights @ weights.T + noise_scale**2 * np.eye(data_dim)
    x_test = x[num_train:]
    exact = multivariate_normal(mean=offset, cov=covariance).logpdf(x_test.astype(np.float64))
    return Dataset(
        x_train=x[:num_train],
        y_train=None,
        x_test=x_test,
        y_test=None,
        likelihood="gaussian",
        binarize=False,
        true_log_likelihood=np.atleast_1d(exact).astype(np.float32),
    )
