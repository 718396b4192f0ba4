"""A nonlinear latent state-space model with a filtering proposal, for sequences.

:class:`LatentSSM` has a Gaussian prior ``p(z_1) = N(0, I)``,
``p(z_t | z_{t-1}) = N(z_{t-1} + f(z_{t-1}), diag s_z^2)``, a Gaussian emission
``p(x_t | z_t) = N(g(z_t), diag s_x^2)`` (``f``, ``g`` MLPs, scales learned) and a
filtering proposal ``q(z_t | z_{t-1}, x_t)`` (an MLP to a diagonal Gaussian; at ``t = 1`` it
sees ``x_1`` and a zero state). Its :meth:`LatentSSM.callables` gives the ``prior``,
``proposal`` and ``emission`` callables of :func:`vbounds.sequential.elbo` and
:func:`vbounds.sequential.fivo` for one sequence.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.layers import MLP, GaussianHead
from vbounds.lab.registry import register_model


class LatentSSM(nnx.Module):
    """Nonlinear Gaussian transition and emission, and a filtering Gaussian proposal."""

    def __init__(self, obs_dim: int, *, z_dim: int, hidden: int, rngs: nnx.Rngs):
        """Builds the three networks and the two log-scales.

        Args:
          obs_dim: size of one observation ``x_t``.
          z_dim: size of the latent state.
          hidden: units of the one hidden layer of each network.
          rngs: the initialisation keys.
        """
        self.z_dim = z_dim
        self.transition = MLP(z_dim, (hidden,), z_dim, rngs=rngs)
        self.decoder = MLP(z_dim, (hidden,), obs_dim, rngs=rngs)
        self.proposal = GaussianHead(z_dim + obs_dim + 1, (hidden,), z_dim, rngs=rngs)
        self.log_scale_z = nnx.Param(jnp.full((z_dim,), -1.0))
        self.log_scale_x = nnx.Param(jnp.full((obs_dim,), -1.0))

    def callables(self, x: jax.Array):
        """``(prior, proposal, emission)`` for one sequence ``x [T, obs_dim]``."""
        scale_z = jnp.exp(self.log_scale_z[...])
        scale_x = jnp.exp(self.log_scale_x[...])

        def prior(state, t):
            first = t == 0
            loc = jnp.where(first, 0.0, state + self.transition(state))
            return distrax.MultivariateNormalDiag(loc, jnp.where(first, 1.0, scale_z))

        def proposal(state, t):
            first = (t == 0).astype(state.dtype)
            inputs = jnp.concatenate([state * (1 - first), x[t], first[None]])
            loc, scale = self.proposal(inputs)
            return distrax.MultivariateNormalDiag(loc, scale)

        def emission(state, z, t):
            return distrax.MultivariateNormalDiag(self.decoder(z), scale_x)

        return prior, proposal, emission

    def __call__(self, z: jax.Array) -> jax.Array:
        """The emission mean ``g(z)``."""
        return self.decoder(z)


def make_latent_ssm(config, *, rngs: nnx.Rngs, example_batch: dict) -> LatentSSM:
    """The latent SSM of a ``model`` section (``z_dim``, ``hidden``), sized from ``x``."""
    x = example_batch["x"]
    if x.ndim != 3:
        raise ValueError(f"model 'latent_ssm' takes sequences [batch, T, dim], got {x.shape}")
    for key in ("z_dim", "hidden"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    return LatentSSM(int(x.shape[2]), z_dim=config.z_dim, hidden=config.hidden, rngs=rngs)


#: Declared hyperparameters of ``latent_ssm``.
DEFAULTS = {"z_dim": 3, "hidden": 32}

register_model(
    "latent_ssm",
    make_latent_ssm,
    defaults=DEFAULTS,
    doc="nonlinear Gaussian state-space model with a filtering proposal q(z_t|z_{t-1},x_t)",
)
