"""Diffusion-model networks: a Fourier-feature noise-prediction MLP and a learned schedule.

Both plug into ``vb.diffusion.gaussian_vlb``: ``eps_fn = lambda z, t: net(z, gamma(t))`` and
``gamma_fn = gamma`` (a ``LearnedGamma``) or any pure schedule of ``vb.diffusion``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.diffusion import init_monotone_gamma, monotone_gamma
from vbounds.models.layers import MLP


class FourierDenoiser(nnx.Module):
    """Noise prediction ``eps_hat(z_t, gamma_t)`` from an MLP on Fourier features.

    Inputs are ``z``, the features ``sin(2^n pi z), cos(2^n pi z)`` for each exponent ``n``
    (VDM adds these so that the network resolves the fine scale that matters for the
    likelihood near ``t = 0``), and a sinusoidal embedding of ``gamma`` rescaled to ``[0, 1]``.

    References:
      Kingma et al., Variational Diffusion Models, 2021 (appendix B: Fourier features).
    """

    def __init__(
        self,
        data_dim: int,
        *,
        hidden_sizes: Sequence[int] = (128, 128),
        fourier_exponents: Sequence[int] = (4, 5, 6),
        time_features: int = 16,
        gamma_min: float = -13.3,
        gamma_max: float = 5.0,
        activation: str = "gelu",
        rngs: nnx.Rngs,
    ):
        """Builds the network.

        Args:
          data_dim: size of a flat example.
          hidden_sizes: MLP hidden sizes.
          fourier_exponents: the ``n`` of the features ``sin(2^n pi z)``; empty for none.
          time_features: size of the embedding of ``gamma`` (even).
          gamma_min: the ``gamma`` mapped to 0 in the embedding.
          gamma_max: the ``gamma`` mapped to 1.
          activation: an activation name of ``vbounds.models.layers``.
          rngs: the initialisation keys.
        """
        if data_dim < 1:
            raise ValueError(f"`data_dim` must be positive, got {data_dim}.")
        if time_features < 2 or time_features % 2:
            raise ValueError(f"`time_features` must be even and >= 2, got {time_features}.")
        self.data_dim = data_dim
        self.frequencies = tuple(2.0**n * math.pi for n in fourier_exponents)
        self.time_features = time_features
        self.gamma_range = (float(gamma_min), float(gamma_max))
        in_features = data_dim * (1 + 2 * len(self.frequencies)) + time_features
        self.mlp = MLP(in_features, hidden_sizes, data_dim, activation=activation, rngs=rngs)

    def _embed_gamma(self, gamma: jax.Array) -> jax.Array:
        lo, hi = self.gamma_range
        s = (gamma - lo) / (hi - lo)
        half = self.time_features // 2
        freqs = jnp.exp(-math.log(1e4) * jnp.arange(half) / max(half - 1, 1))
        angles = 1e3 * s[..., None] * freqs
        return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)

    def __call__(self, z: jax.Array, gamma: jax.typing.ArrayLike) -> jax.Array:
        """Predicts the noise.

        Args:
          z: ``[..., data_dim]`` noisy data.
          gamma: ``gamma_t``, scalar or ``[...]``.

        Returns:
          ``eps_hat`` shaped like ``z``.
        """
        if z.shape[-1] != self.data_dim:
            raise ValueError(f"`z` must end in {self.data_dim} features, got {z.shape}.")
        gamma = jnp.broadcast_to(jnp.asarray(gamma, z.dtype), z.shape[:-1])
        parts = [z]
        for f in self.frequencies:
            parts += [jnp.sin(f * z), jnp.cos(f * z)]
        parts.append(self._embed_gamma(gamma))
        return self.mlp(jnp.concatenate(parts, axis=-1))


class LearnedGamma(nnx.Module):
    """VDM's learnable monotone schedule as an nnx module (``vb.diffusion.monotone_gamma``).

    The end points are parameters too when ``learn_end_points`` is set (VDM learns them to
    trade the prior and reconstruction terms); otherwise they are fixed numbers.

    References:
      Kingma et al., Variational Diffusion Models, 2021.
    """

    def __init__(
        self,
        *,
        hidden: int = 64,
        gamma_min: float = -13.3,
        gamma_max: float = 5.0,
        learn_end_points: bool = True,
        rngs: nnx.Rngs,
    ):
        """Builds the schedule.

        Args:
          hidden: width of the monotone network's sigmoid layer.
          gamma_min: initial (or fixed) ``gamma(0)``.
          gamma_max: initial (or fixed) ``gamma(1)``.
          learn_end_points: whether the end points are parameters.
          rngs: the initialisation keys.
        """
        params = init_monotone_gamma(rngs.params(), hidden=hidden)
        self.net = nnx.Dict({name: nnx.Param(value) for name, value in params.items()})
        if learn_end_points:
            self.ends = nnx.Param(jnp.array([gamma_min, gamma_max]))
        else:
            self.ends = nnx.Variable(jnp.array([gamma_min, gamma_max]))

    def __call__(self, t: jax.typing.ArrayLike) -> jax.Array:
        """``gamma(t)``, elementwise in ``t``."""
        params = {name: param[...] for name, param in self.net.items()}
        ends = self.ends[...]
        return monotone_gamma(params, t, gamma_min=ends[0], gamma_max=ends[1])
