"""Flow matching models: a velocity field ``v(x_t, t)`` for ``vb.flow``.

Registered name (``config.model.name``): ``velocity_mlp``, an MLP of the flat data and a
sinusoidal embedding of ``t``, for the ``cfm`` objective.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vbounds.lab.models.layers import MLP, sinusoidal_embedding
from vbounds.lab.registry import register_model


class VelocityMLP(nnx.Module):
    """``v(x_t, t)``: an MLP of ``[x_t, embedding(t)]`` with the data's shape."""

    def __init__(
        self,
        data_dim: int,
        *,
        num_levels: int = 17,
        hidden_sizes: Sequence[int] = (256, 256),
        time_features: int = 16,
        activation: str = "gelu",
        rngs: nnx.Rngs,
    ):
        """Builds the network.

        Args:
          data_dim: size of a flat example.
          num_levels: grey levels of the data (the grid the objective maps them to).
          hidden_sizes: MLP hidden sizes.
          time_features: size of the time embedding (even).
          activation: an activation name of :mod:`vbounds.lab.models.layers`.
          rngs: initialisation keys.
        """
        if isinstance(time_features, bool) or not isinstance(time_features, int):
            raise ValueError(f"model.time_features must be an even int, got {time_features!r}")
        if time_features < 2 or time_features % 2:
            raise ValueError(f"model.time_features must be an even int >= 2, got {time_features}")
        self.data_dim, self.num_levels, self.time_features = data_dim, num_levels, time_features
        self.mlp = MLP(
            data_dim + time_features, hidden_sizes, data_dim, activation=activation, rngs=rngs
        )

    def __call__(self, x_t: jax.Array, t: jax.typing.ArrayLike) -> jax.Array:
        """The velocity at ``x_t`` (``[..., data_dim]``) and time ``t`` (scalar or ``[...]``)."""
        if x_t.shape[-1] != self.data_dim:
            raise ValueError(f"`x_t` must end in {self.data_dim} features, got {x_t.shape}")
        t = jnp.broadcast_to(jnp.asarray(t, x_t.dtype), x_t.shape[:-1])
        return self.mlp(jnp.concatenate([x_t, sinusoidal_embedding(t, self.time_features)], -1))


def make_velocity_mlp(config, *, rngs, example_batch):
    """A velocity MLP for flat integer grey levels (``digits_levels``)."""
    x = np.asarray(example_batch["x"])
    if x.ndim != 2:
        raise ValueError(f"model 'velocity_mlp' takes flat data [batch, dim], got {x.shape}")
    return VelocityMLP(
        int(x.shape[1]),
        num_levels=config.num_levels,
        hidden_sizes=tuple(config.hidden_sizes),
        time_features=config.time_features,
        rngs=rngs,
    )


register_model(
    "velocity_mlp",
    make_velocity_mlp,
    defaults={"num_levels": 17, "hidden_sizes": (256, 256), "time_features": 16},
    doc="a velocity field v(x_t, t): an MLP of the data and a time embedding (flow matching)",
)
