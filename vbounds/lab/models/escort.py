"""An invertible map of the plane for escorted free-energy estimation (``escort_map``).

:class:`EscortMap` is an elementwise affine map followed by ``num_layers`` affine
coupling layers (RealNVP, Dinh et al. 2017): each rescales and shifts one coordinate by
MLP functions of the other, alternating. Forward, inverse and both log-determinants are
exact. The coupling networks' output layers start at zero, so an untrained map is the
elementwise affine map at the identity: its works are the plain works.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.layers import MLP
from vbounds.lab.registry import register_model


class EscortMap(nnx.Module):
    """Elementwise affine, then alternating affine couplings, on 2-D points."""

    def __init__(self, *, hidden: int, num_layers: int, rngs: nnx.Rngs):
        """Builds the map from ``rngs``.

        Args:
          hidden: units of the two hidden layers of each coupling network.
          num_layers: number of coupling layers.
          rngs: the initialisation keys.
        """
        self.log_scale = nnx.Param(jnp.zeros(2))
        self.shift = nnx.Param(jnp.zeros(2))
        self.couplings = nnx.List(
            [MLP(1, (hidden, hidden), 2, activation="tanh", rngs=rngs) for _ in range(num_layers)]
        )
        for net in self.couplings:
            last = net.layers[-1]
            last.kernel[...] = jnp.zeros_like(last.kernel[...])

    def _coupling(self, i, fixed):
        out = self.couplings[i](fixed)
        return jnp.tanh(out[:, 0]), out[:, 1]  # a bounded log-scale keeps the map tame

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(M(x), log |det dM/dx|)`` for ``x [N, 2]``."""
        y = x * jnp.exp(self.log_scale[...]) + self.shift[...]
        log_det = jnp.full(x.shape[:1], jnp.sum(self.log_scale[...]))
        for i in range(len(self.couplings)):
            a, b = i % 2, 1 - i % 2
            log_s, t = self._coupling(i, y[:, a : a + 1])
            y = y.at[:, b].set(y[:, b] * jnp.exp(log_s) + t)
            log_det = log_det + log_s
        return y, log_det

    def inverse(self, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(M^{-1}(y), log |det dM^{-1}/dy|)`` for ``y [N, 2]``."""
        log_det = jnp.zeros(y.shape[:1], y.dtype)
        for i in reversed(range(len(self.couplings))):
            a, b = i % 2, 1 - i % 2
            log_s, t = self._coupling(i, y[:, a : a + 1])
            y = y.at[:, b].set((y[:, b] - t) * jnp.exp(-log_s))
            log_det = log_det - log_s
        x = (y - self.shift[...]) * jnp.exp(-self.log_scale[...])
        return x, log_det - jnp.sum(self.log_scale[...])

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.forward(x)[0]


def make_escort_map(config, *, rngs: nnx.Rngs, example_batch: dict) -> EscortMap:
    """The map of a ``model`` section: ``hidden`` units, ``num_layers`` couplings."""
    if example_batch["x"].ndim != 2 or example_batch["x"].shape[1] != 2:
        raise ValueError(f"model 'escort_map' maps 2-D points, got x {example_batch['x'].shape}")
    for key in ("hidden", "num_layers"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    return EscortMap(hidden=config.hidden, num_layers=config.num_layers, rngs=rngs)


#: Declared hyperparameters of ``escort_map``.
DEFAULTS = {"hidden": 32, "num_layers": 4}

register_model(
    "escort_map",
    make_escort_map,
    defaults=DEFAULTS,
    doc="invertible map of the plane (affine + RealNVP couplings) for escorted free energies",
)
