"""Critics ``f(x, y)`` and baselines ``a(y)`` for the contrastive MI bounds (``vb.mi``).

Every critic maps a batch ``x [N, dx]`` and a batch ``y [M, dy]`` to the score matrix
``[N, M]`` with ``scores[i, j] = f(x_i, y_j)`` (rows are x, columns are y), so it plugs into
``vb.mi.infonce(critic(x, y))`` and, scoring a block of rows against all of ``y``, into
``vb.mi.from_critic(critic, x, y, chunk_size=...)``. Defaults follow Poole et al. (2019):
two hidden layers of 256 ReLU units, embeddings of 32; baseline hidden 512.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.layers import MLP


class SeparableCritic(nnx.Module):
    """``f(x, y) = g(x)^T h(y)`` with MLP embeddings: N + M network evaluations."""

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        *,
        hidden: int = 256,
        layers: int = 2,
        embed_dim: int = 32,
        activation: str = "relu",
        rngs: nnx.Rngs,
    ):
        self.g = MLP(x_dim, (hidden,) * layers, embed_dim, activation=activation, rngs=rngs)
        self.h = MLP(y_dim, (hidden,) * layers, embed_dim, activation=activation, rngs=rngs)

    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        return self.g(x) @ self.h(y).T


class ConcatCritic(nnx.Module):
    """``f(x, y) = MLP([x, y])`` on every pair: N * M network evaluations, most expressive."""

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        *,
        hidden: int = 256,
        layers: int = 2,
        activation: str = "relu",
        rngs: nnx.Rngs,
    ):
        self.mlp = MLP(x_dim + y_dim, (hidden,) * layers, 1, activation=activation, rngs=rngs)

    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        n, m = x.shape[0], y.shape[0]
        pairs = jnp.concatenate(
            [
                jnp.broadcast_to(x[:, None, :], (n, m, x.shape[-1])),
                jnp.broadcast_to(y[None, :, :], (n, m, y.shape[-1])),
            ],
            axis=-1,
        )
        return self.mlp(pairs)[..., 0]


class BilinearCritic(nnx.Module):
    """``f(x, y) = x^T W y + b``: the optimal critic's form for jointly Gaussian x, y."""

    def __init__(self, x_dim: int, y_dim: int, *, rngs: nnx.Rngs):
        init = nnx.initializers.lecun_normal()
        self.w = nnx.Param(init(rngs.params(), (x_dim, y_dim)))
        self.b = nnx.Param(jnp.zeros(()))

    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        return x @ self.w[...] @ y.T + self.b[...]


class BaselineMLP(nnx.Module):
    """``log a(y)`` for `vb.mi.tuba` and `vb.mi.interpolated`: ``[M, dy] -> [M]``."""

    def __init__(
        self,
        y_dim: int,
        *,
        hidden: int = 512,
        layers: int = 2,
        activation: str = "relu",
        rngs: nnx.Rngs,
    ):
        self.mlp = MLP(y_dim, (hidden,) * layers, 1, activation=activation, rngs=rngs)

    def __call__(self, y: jax.Array) -> jax.Array:
        return self.mlp(y)[..., 0]


CRITICS = {"separable": SeparableCritic, "concat": ConcatCritic, "bilinear": BilinearCritic}
