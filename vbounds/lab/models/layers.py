"""Building blocks: a multi-layer perceptron and a diagonal-Gaussian head."""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu, "elu": jax.nn.elu}

# Keeps the Gaussian scales away from zero so log-densities stay finite in float32.
_MIN_SCALE = 1e-4


class MLP(nnx.Module):
    """Dense layers with a nonlinearity between them and a linear output layer."""

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        *,
        activation: str = "tanh",
        rngs: nnx.Rngs,
    ):
        """Builds the layers.

        Args:
          in_features: input size.
          hidden_sizes: sizes of the hidden layers (possibly empty: one linear map).
          out_features: output size.
          activation: one of :data:`ACTIVATIONS`.
          rngs: the initialisation keys.
        """
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        sizes = [in_features, *hidden_sizes, out_features]
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return self.layers[-1](x)


class GaussianHead(nnx.Module):
    """An MLP whose output is the location and scale of a diagonal Gaussian."""

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        *,
        activation: str = "tanh",
        rngs: nnx.Rngs,
    ):
        """Builds the network (its last layer has ``2 * out_features`` units).

        Args:
          in_features: input size.
          hidden_sizes: hidden layer sizes.
          out_features: dimension of the Gaussian.
          activation: one of :data:`ACTIVATIONS`.
          rngs: the initialisation keys.
        """
        self.net = MLP(
            in_features, hidden_sizes, 2 * out_features, activation=activation, rngs=rngs
        )

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Returns ``(loc, scale)``, each of shape ``[..., out_features]``, scale positive."""
        loc, raw_scale = jnp.split(self.net(x), 2, axis=-1)
        return loc, jax.nn.softplus(raw_scale) + _MIN_SCALE


def sinusoidal_embedding(s: jax.Array, features: int) -> jax.Array:
    """``[sin, cos](1000 s f_k)`` with ``f_k`` log-spaced from 1 to 1e-4, for ``s`` in [0, 1].

    The time (or ``gamma``) embedding of the diffusion denoisers; ``features`` is even.
    """
    half = features // 2
    freqs = jnp.exp(-math.log(1e4) * jnp.arange(half) / max(half - 1, 1))
    angles = 1e3 * s[..., None] * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
