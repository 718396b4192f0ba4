"""Probabilistic PCA with a mean-field Gaussian posterior over its loading matrix (``ppca``).

The generative model is ``z ~ N(0, I_rank)``, ``x = W z + mean + N(0, noise_variance I)``
with a prior ``N(0, prior_scale^2)`` on every entry of ``W`` (the ``ppca_elbo``
objective's). The latent ``z`` is integrated out exactly (``vb.linear_gaussian``); the
weights get ``q(W) = N(w_loc, w_scale^2)``, entry by entry, so the trained ELBO
``E_q log p(X | W) - KL(q(W) || p(W))`` scores the rank, not just the fit. ``mean`` and the
noise variance are point estimates (maximised, as hyperparameters).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vbounds.lab.registry import register_model


def _inverse_softplus(y: float) -> float:
    return float(np.log(np.expm1(y)))


class PPCA(nnx.Module):
    """``q(W)`` (loc, softplus-parameterised scale), the data mean and the noise variance."""

    def __init__(self, data_dim: int, *, rank: int, init_scale: float, mean, rngs: nnx.Rngs):
        """Initialises ``w_loc ~ N(0, init_scale^2)``, ``w_scale = init_scale``, the noise
        variance 1 and ``mean`` (``[data_dim]``, e.g. the mean of a first batch)."""
        shape = (data_dim, rank)
        self.w_loc = nnx.Param(init_scale * jax.random.normal(rngs.params(), shape))
        self.w_raw_scale = nnx.Param(jnp.full(shape, _inverse_softplus(init_scale)))
        self.mean = nnx.Param(jnp.asarray(mean, jnp.float32))
        self.log_noise_variance = nnx.Param(jnp.zeros(()))

    @property
    def w_scale(self) -> jax.Array:
        """The standard deviations of ``q(W)``, ``[data_dim, rank]``."""
        return jax.nn.softplus(self.w_raw_scale[...]) + 1e-6

    @property
    def noise_variance(self) -> jax.Array:
        """The observation noise variance (a scalar)."""
        return jnp.exp(self.log_noise_variance[...])


def make_ppca(config, *, rngs: nnx.Rngs, example_batch: dict) -> PPCA:
    """The ``ppca`` of a ``model`` section (``rank``, ``init_scale``), sized from ``x``."""
    x = np.asarray(example_batch["x"])
    if x.ndim != 2:
        raise ValueError(f"model 'ppca' takes flat inputs [batch, dim], got x of shape {x.shape}")
    rank = config.rank
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank < x.shape[1]:
        raise ValueError(f"model.rank must be an int in [1, {x.shape[1] - 1}], got {rank!r}")
    if not config.init_scale > 0:
        raise ValueError(f"model.init_scale must be positive, got {config.init_scale!r}")
    return PPCA(
        x.shape[1], rank=rank, init_scale=float(config.init_scale), mean=x.mean(0), rngs=rngs
    )


register_model(
    "ppca",
    make_ppca,
    defaults={"rank": 2, "init_scale": 0.1},
    doc="PPCA with a mean-field Gaussian q(W) over the loadings; z integrated out exactly",
)
