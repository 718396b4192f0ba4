"""A sparse Gaussian-process regressor (``sparse_gp``): kernel hyperparameters, inducing
inputs, noise and a Gaussian ``q(u)``, all as ``nnx`` variables.

Trainable (``nnx.Param``): the log lengthscales (one per input dimension), the log kernel
variance, the log noise variance, the inducing inputs ``z [M, D]`` (initialised at ``M``
distinct training inputs drawn from ``rngs``), and SVGP's ``q(u) = N(q_mean, L L^T)``
(``q_tril``: its lower triangle with a softplus diagonal). Not trained (``PosteriorCache``,
written by the ``sparse_gp`` objective's collapsed bound at every step): the optimal
``q(u)`` of the current hyperparameters and the last training bound and exact log marginal
likelihood, which the test evaluation reads.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import vbounds as vb
from vbounds.lab.registry import register_model

KERNELS = {"rbf": vb.gp.rbf, "matern52": vb.gp.matern52}


class PosteriorCache(nnx.Variable):
    """State the collapsed objective writes: the optimal ``q(u)`` and the last bound."""


class SparseGP(nnx.Module):
    """GP regression with ``M`` inducing points and a Gaussian ``q(u)``."""

    def __init__(
        self,
        z: jax.Array,
        *,
        kernel: str,
        lengthscale: float,
        variance: float,
        noise_variance: float,
    ):
        """Builds the variables around the initial inducing inputs ``z [M, D]``."""
        m, dims = z.shape
        self.kernel_name = kernel
        self.log_lengthscale = nnx.Param(jnp.full((dims,), np.log(lengthscale), jnp.float32))
        self.log_variance = nnx.Param(jnp.asarray(np.log(variance), jnp.float32))
        self.log_noise = nnx.Param(jnp.asarray(np.log(noise_variance), jnp.float32))
        self.z = nnx.Param(jnp.asarray(z, jnp.float32))
        self.q_mean = nnx.Param(jnp.zeros((m,), jnp.float32))
        # softplus^-1 of sqrt(variance): q(u) starts with the prior's marginal scale.
        start = np.log(np.expm1(np.sqrt(variance)))
        self.q_tril = nnx.Param(jnp.eye(m, dtype=jnp.float32) * start)
        self.cache_mean = PosteriorCache(jnp.zeros((m,), jnp.float32))
        self.cache_tril = PosteriorCache(jnp.eye(m, dtype=jnp.float32))
        self.cache_bound = PosteriorCache(jnp.zeros((), jnp.float32))
        self.cache_exact = PosteriorCache(jnp.zeros((), jnp.float32))

    def kernel(self):
        """The kernel callable of the current hyperparameters."""
        return KERNELS[self.kernel_name](
            lengthscale=jnp.exp(self.log_lengthscale[...]),
            variance=jnp.exp(self.log_variance[...]),
        )

    def noise_variance(self) -> jax.Array:
        return jnp.exp(self.log_noise[...])

    def q_u(self) -> vb.gp.InducingPosterior:
        """SVGP's ``q(u)`` from the trainable parameters."""
        raw = self.q_tril[...]
        diag = jax.nn.softplus(jnp.diagonal(raw)) + 1e-6
        tril = jnp.tril(raw, -1) + jnp.diag(diag)
        return vb.gp.InducingPosterior(self.q_mean[...], tril)

    def cached_q_u(self) -> vb.gp.InducingPosterior:
        """The optimal ``q(u)`` the collapsed objective wrote last."""
        return vb.gp.InducingPosterior(self.cache_mean[...], self.cache_tril[...])

    def __call__(self, x: jax.Array, *, cached: bool = True, jitter: float = 1e-4):
        """Predictive mean and variance of ``y`` at ``x [N, D]``."""
        q = self.cached_q_u() if cached else self.q_u()
        mean, var = vb.gp.predict(self.kernel(), x, self.z[...], *q, jitter=jitter)
        return mean, var + self.noise_variance()


def make_sparse_gp(config, *, rngs: nnx.Rngs, example_batch: dict) -> SparseGP:
    """The ``sparse_gp`` of a ``model`` section: ``num_inducing`` inducing inputs drawn
    without replacement from the example batch's inputs, ``kernel`` (``rbf`` or
    ``matern52``) with initial ``lengthscale`` and ``variance``, initial ``noise_variance``."""
    x = np.asarray(example_batch["x"])
    if x.ndim != 2 or "y" not in example_batch or np.ndim(example_batch["y"]) != 1:
        raise ValueError("model 'sparse_gp' needs regression batches: x [N, D] and y [N]")
    m = config.num_inducing
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= len(x):
        raise ValueError(
            f"model.num_inducing must be an int in [1, {len(x)}] (the batch size), got {m!r}"
        )
    if config.kernel not in KERNELS:
        raise ValueError(f"model.kernel must be one of {sorted(KERNELS)}, got {config.kernel!r}")
    for key in ("lengthscale", "variance", "noise_variance"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"model.{key} must be a positive number, got {value!r}")
    rows = jax.random.permutation(rngs.params(), len(x))[:m]
    return SparseGP(
        x[np.asarray(rows)],
        kernel=config.kernel,
        lengthscale=float(config.lengthscale),
        variance=float(config.variance),
        noise_variance=float(config.noise_variance),
    )


#: Declared hyperparameters of ``sparse_gp``.
DEFAULTS = {
    "num_inducing": 16,
    "kernel": "rbf",
    "lengthscale": 3.0,
    "variance": 1.0,
    "noise_variance": 0.5,
}

register_model(
    "sparse_gp",
    make_sparse_gp,
    defaults=DEFAULTS,
    doc="sparse GP regression: ARD kernel, inducing inputs, noise and q(u) as parameters",
)
