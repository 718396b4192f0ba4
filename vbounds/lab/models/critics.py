"""Critics ``f(x, y)`` and baselines ``a(y)`` for the contrastive MI bounds (``vb.mi``).

Every critic maps a batch ``x [N, dx]`` and a batch ``y [M, dy]`` to the score matrix
``[N, M]`` with ``scores[i, j] = f(x_i, y_j)`` (rows are x, columns are y), so it plugs into
``vb.mi.infonce(critic(x, y))`` and, scoring a block of rows against all of ``y``, into
``vb.mi.from_critic(critic, x, y, chunk_size=...)``. Defaults follow Poole et al. (2019):
two hidden layers of 256 ReLU units, embeddings of 32; baseline hidden 512.

The hidden layers of an MLP critic or baseline are given either as ``hidden`` units in each
of ``layers`` layers, or as a sequence of widths ``hidden=(512, 128)`` (one layer per
entry; ``layers`` is then not used); ``activation`` names any of
:data:`vbounds.lab.models.layers.ACTIVATIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.layers import MLP


def hidden_widths(hidden: int | Sequence[int], layers: int) -> tuple[int, ...]:
    """The hidden layer widths: ``(hidden,) * layers`` for an int, else ``tuple(hidden)``.

    Raises:
      ValueError: a width or ``layers`` that is not a positive int (``layers`` may be 0
        with an int ``hidden``: a linear map), or an empty sequence.
    """
    if (
        isinstance(hidden, bool)
        or not isinstance(hidden, int | Sequence)
        or isinstance(hidden, str)
    ):
        raise ValueError(f"hidden must be a positive int or a sequence of them, got {hidden!r}")
    if isinstance(hidden, int):
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
            raise ValueError(f"layers must be a non-negative int, got {layers!r}")
        widths = (hidden,) * layers
    else:
        widths = tuple(hidden)
        if not widths:
            raise ValueError("hidden must not be an empty sequence (use a bilinear critic)")
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"hidden widths must be positive ints, got {hidden!r}")
    return widths


class SeparableCritic(nnx.Module):
    """``f(x, y) = g(x)^T h(y)`` with MLP embeddings: N + M network evaluations."""

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        *,
        hidden: int | Sequence[int] = 256,
        layers: int = 2,
        embed_dim: int = 32,
        activation: str = "relu",
        rngs: nnx.Rngs,
    ):
        widths = hidden_widths(hidden, layers)
        self.g = MLP(x_dim, widths, embed_dim, activation=activation, rngs=rngs)
        self.h = MLP(y_dim, widths, embed_dim, activation=activation, rngs=rngs)

    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        return self.g(x) @ self.h(y).T


class ConcatCritic(nnx.Module):
    """``f(x, y) = MLP([x, y])`` on every pair: N * M network evaluations, most expressive."""

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        *,
        hidden: int | Sequence[int] = 256,
        layers: int = 2,
        activation: str = "relu",
        rngs: nnx.Rngs,
    ):
        widths = hidden_widths(hidden, layers)
        self.mlp = MLP(x_dim + y_dim, widths, 1, activation=activation, rngs=rngs)

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
        hidden: int | Sequence[int] = 512,
        layers: int = 2,
        activation: str = "relu",
        rngs: nnx.Rngs,
    ):
        self.mlp = MLP(y_dim, hidden_widths(hidden, layers), 1, activation=activation, rngs=rngs)

    def __call__(self, y: jax.Array) -> jax.Array:
        return self.mlp(y)[..., 0]


CRITICS = {"separable": SeparableCritic, "concat": ConcatCritic, "bilinear": BilinearCritic}
