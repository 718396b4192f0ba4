"""CatFlow models: end-point logits ``logits(x_t, t)`` for ``vb.flow.catflow_loss``.

Registered name (``config.model.name``): ``catflow_mlp``, an MLP of the flattened noisy
simplex point ``x_t`` (``[data_dim, num_classes]``: one point of ``R^K`` per pixel) and a
sinusoidal embedding of ``t``, returning logits ``[data_dim, num_classes]`` of the
end-point posterior ``q(x_1 | x_t)``. The sampling velocity is
``vb.flow.endpoint_velocity(softmax(logits), x_t, t)`` (:meth:`CatFlowMLP.velocity`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import vbounds as vb
from vbounds.lab.models.layers import MLP, sinusoidal_embedding
from vbounds.lab.registry import register_model


class CatFlowMLP(nnx.Module):
    """``logits(x_t, t)``: an MLP of ``[flatten(x_t), embedding(t)]``, shaped ``[d, K]``."""

    def __init__(
        self,
        data_dim: int,
        *,
        num_classes: int = 2,
        hidden_sizes: Sequence[int] = (256, 256),
        time_features: int = 16,
        activation: str = "gelu",
        rngs: nnx.Rngs,
    ):
        """Builds the network.

        Args:
          data_dim: positions (pixels) of a flat example.
          num_classes: classes ``K`` per position (the simplex lives in ``R^K``).
          hidden_sizes: MLP hidden sizes.
          time_features: size of the time embedding (even).
          activation: an activation name of :mod:`vbounds.lab.models.layers`.
          rngs: initialisation keys.
        """
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"model.num_classes must be an int >= 2, got {num_classes!r}")
        if isinstance(time_features, bool) or not isinstance(time_features, int):
            raise ValueError(f"model.time_features must be an even int, got {time_features!r}")
        if time_features < 2 or time_features % 2:
            raise ValueError(f"model.time_features must be an even int >= 2, got {time_features}")
        self.data_dim, self.num_classes, self.time_features = data_dim, num_classes, time_features
        self.mlp = MLP(
            data_dim * num_classes + time_features,
            hidden_sizes,
            data_dim * num_classes,
            activation=activation,
            rngs=rngs,
        )

    def __call__(self, x_t: jax.Array, t: jax.typing.ArrayLike) -> jax.Array:
        """Logits ``[..., data_dim, K]`` at ``x_t`` (``[..., data_dim, K]``) and time ``t``."""
        x_t = jnp.asarray(x_t)
        shape = (self.data_dim, self.num_classes)
        if x_t.shape[-2:] != shape:
            raise ValueError(f"`x_t` must end in {shape}, got {x_t.shape}")
        batch = x_t.shape[:-2]
        t = jnp.broadcast_to(jnp.asarray(t, x_t.dtype), batch)
        h = jnp.concatenate(
            [x_t.reshape(*batch, -1), sinusoidal_embedding(t, self.time_features)], -1
        )
        return self.mlp(h).reshape(*batch, *shape)

    def velocity(self, x_t: jax.Array, t: jax.typing.ArrayLike) -> jax.Array:
        """The CatFlow velocity ``(softmax(logits) - x_t) / (1 - t)`` (singular at ``t = 1``)."""
        return vb.flow.endpoint_velocity(jax.nn.softmax(self(x_t, t), axis=-1), x_t, t)

    def sample(self, key: jax.Array, num_samples: int, num_steps: int = 100) -> jax.Array:
        """``[num_samples, data_dim]`` integer classes: Euler steps of the flow from
        ``x_0 ~ N(0, I)`` (Euler never evaluates the field at ``t = 1``), then the argmax
        of ``x_1`` per position."""
        x0 = jax.random.normal(key, (num_samples, self.data_dim, self.num_classes))
        x1 = jax.vmap(
            lambda y: vb.flow.ode_sample(y, self.velocity, num_steps=num_steps, method="euler")
        )(x0)
        return jnp.argmax(x1, axis=-1).astype(jnp.int32)


def make_catflow_mlp(config, *, rngs, example_batch):
    """A CatFlow end-point MLP for flat integer classes (``digits_binary``)."""
    x = np.asarray(example_batch["x"])
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(
            "model 'catflow_mlp' takes flat integer classes [batch, dim] (data "
            f"'digits_binary'), got x of shape {x.shape} and dtype {x.dtype}"
        )
    if int(x.max()) >= config.num_classes:
        raise ValueError(
            f"model.num_classes={config.num_classes}, but the data hold class {int(x.max())}"
        )
    return CatFlowMLP(
        int(x.shape[1]),
        num_classes=config.num_classes,
        hidden_sizes=tuple(config.hidden_sizes),
        time_features=config.time_features,
        rngs=rngs,
    )


register_model(
    "catflow_mlp",
    make_catflow_mlp,
    defaults={"num_classes": 2, "hidden_sizes": (256, 256), "time_features": 16},
    doc="CatFlow end-point logits(x_t, t): an MLP of the noisy simplex points and t",
)
