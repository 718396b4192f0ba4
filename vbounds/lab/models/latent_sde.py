"""A latent SDE with an amortised posterior, for irregular-free time series.

:class:`LatentSDE` (Li et al. 2020 at a small scale): prior ``z_0 ~ N(0, I)``,
``dz = f_p(z, t) dt + g dW``; posterior ``z_0 ~ q(z_0 | x)``,
``dz = f_q(z, t, c(x)) dt + g dW`` with a context ``c(x)`` encoding the whole series;
emission ``x_m ~ N(W z(t_m) + b, diag s_x^2)``. ``f_p``, ``f_q`` and the encoders are MLPs;
the diagonal diffusion ``g`` and ``s_x`` are learned. :meth:`LatentSDE.elbo` is
:func:`vbounds.sde.elbo` on a grid with ``substeps`` Euler steps per observation interval.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

import vbounds as vb
from vbounds.lab.models.layers import MLP, GaussianHead
from vbounds.lab.registry import register_model


def time_grid(times: jax.Array, substeps: int) -> tuple[jax.Array, jax.Array]:
    """The integration grid through the observation ``times`` and their indices in it."""
    frac = jnp.arange(substeps, dtype=times.dtype) / substeps
    inner = times[:-1, None] + (times[1:] - times[:-1])[:, None] * frac
    ts = jnp.concatenate([inner.reshape(-1), times[-1:]])
    return ts, jnp.arange(times.shape[0]) * substeps


class LatentSDE(nnx.Module):
    """Prior and posterior drifts, a shared diagonal diffusion, a linear Gaussian emission."""

    def __init__(
        self, num_obs: int, obs_dim: int, *, z_dim: int, hidden: int, context: int, rngs: nnx.Rngs
    ):
        """Builds the networks.

        Args:
          num_obs: observations per series (the encoders read the whole series).
          obs_dim: size of one observation.
          z_dim: latent dimension.
          hidden: hidden units of every MLP (one hidden layer each).
          context: size of the context vector ``c(x)`` the posterior drift sees.
          rngs: the initialisation keys.
        """
        self.z_dim = z_dim
        self.initial = GaussianHead(num_obs * obs_dim, (hidden,), z_dim, rngs=rngs)
        self.context = MLP(num_obs * obs_dim, (hidden,), context, rngs=rngs)
        self.prior_drift = MLP(z_dim + 1, (hidden,), z_dim, rngs=rngs)
        self.posterior_drift = MLP(z_dim + 1 + context, (hidden,), z_dim, rngs=rngs)
        self.decoder = nnx.Linear(z_dim, obs_dim, rngs=rngs)
        self.log_diffusion = nnx.Param(jnp.full((z_dim,), jnp.log(0.5)))
        self.log_scale_x = nnx.Param(jnp.full((obs_dim,), jnp.log(0.2)))

    def parts(self, x: jax.Array) -> dict:
        """The keyword arguments of :func:`vbounds.sde.elbo` for one series ``x [M, D]``."""
        flat = x.reshape(-1)
        loc, scale = self.initial(flat)
        c = self.context(flat)
        g = jnp.exp(self.log_diffusion[...])
        scale_x = jnp.exp(self.log_scale_x[...])

        def with_time(z, t):
            return jnp.concatenate([z, jnp.atleast_1d(t).astype(z.dtype)])

        return dict(
            initial_posterior=distrax.MultivariateNormalDiag(loc, scale),
            initial_prior=distrax.MultivariateNormalDiag(jnp.zeros_like(loc)),
            posterior_drift=lambda z, t: self.posterior_drift(
                jnp.concatenate([with_time(z, t), c])
            ),
            prior_drift=lambda z, t: self.prior_drift(with_time(z, t)),
            diffusion=lambda z, t: g,
            emission=lambda z, t: distrax.MultivariateNormalDiag(self.decoder(z), scale_x),
        )

    def elbo(self, x: jax.Array, times: jax.Array, key: jax.Array, *, substeps: int):
        """One draw of the ELBO of one series (an :class:`vbounds.sde.SDEELBO`)."""
        ts, observed_at = time_grid(times, substeps)
        return vb.sde.elbo(key, x, ts=ts, observed_at=observed_at, **self.parts(x))

    def __call__(self, z: jax.Array) -> jax.Array:
        """The emission mean of a latent state."""
        return self.decoder(z)


def make_latent_sde(config, *, rngs: nnx.Rngs, example_batch: dict) -> LatentSDE:
    """The latent SDE of a ``model`` section (``z_dim``, ``hidden``, ``context``)."""
    x = example_batch["x"]
    if x.ndim != 3 or "t" not in example_batch:
        raise ValueError(
            "model 'latent_sde' takes series {'x': [batch, M, dim], 't': [batch, M]}, got "
            f"x of shape {x.shape} and keys {sorted(example_batch)}"
        )
    for key in ("z_dim", "hidden", "context"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    return LatentSDE(
        int(x.shape[1]),
        int(x.shape[2]),
        z_dim=config.z_dim,
        hidden=config.hidden,
        context=config.context,
        rngs=rngs,
    )


#: Declared hyperparameters of ``latent_sde``.
DEFAULTS = {"z_dim": 2, "hidden": 32, "context": 8}

register_model(
    "latent_sde",
    make_latent_sde,
    defaults=DEFAULTS,
    doc="latent SDE: learned prior/posterior drifts, shared diffusion, linear emission",
)
