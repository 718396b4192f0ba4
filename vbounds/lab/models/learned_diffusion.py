"""Diffusion models of grey levels with a learned forward process (NDM, DiffEnc).

Registered name (``config.model.name``): ``ndm``, a :class:`~vbounds.lab.models.diffusion.VDM`
(the per-pixel posterior denoiser and its schedule) plus a learned data transform used by
the forward process ``z_t = alpha_t F(x, t) + sigma_t eps`` of ``vb.diffusion.ndm_vlb``:

- ``transform="ndm"``: ``F(x, t) = x + t g(x, t)`` (Neural Diffusion Models);
- ``transform="diffenc"``: ``F(x, t) = x + sigma_t^2 g(x, t)``, an encoder mean that moves
  away from the data as the noise grows (DiffEnc's depth-dependent encoder).

``g`` is an MLP of ``x`` and a time embedding whose output layer starts at zero, so the
model starts as the plain VDM. Both keep ``F(x, 0) = x`` (exactly for ``ndm``, up to
``sigma_0^2`` for ``diffenc``) so that the discretised decoder at ``t = 0`` still applies.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.diffusion import VDM, _check_classes, _data_dim, _tuple, to_levels
from vbounds.lab.models.layers import MLP, sinusoidal_embedding
from vbounds.lab.registry import register_model

TRANSFORMS = ("ndm", "diffenc")


class NDM(VDM):
    """A VDM whose forward process transforms the data first: ``alpha_t F(x, t)``.

    ``x_hat(z_t, t)``, ``transform(x, t)`` and ``gamma(t)`` are the ``x_fn``,
    ``transform_fn`` and ``gamma_fn`` of ``vb.diffusion.ndm_vlb``.

    References:
      Bartosh, Vetrov & Naesseth, Neural Diffusion Models, 2024; Nielsen et al., DiffEnc:
      Variational Diffusion with a Learned Encoder, 2024.
    """

    def __init__(
        self,
        data_dim: int,
        *,
        transform: str = "ndm",
        transform_hidden_sizes: Sequence[int] = (64,),
        time_features: int = 16,
        rngs: nnx.Rngs,
        **vdm_options,
    ):
        """Builds the VDM and the transform network.

        Args:
          data_dim: pixels of a flat example.
          transform: ``"ndm"`` or ``"diffenc"`` (see the module docstring).
          transform_hidden_sizes: hidden sizes of ``g``.
          time_features: size of ``g``'s time embedding (even).
          rngs: initialisation keys.
          **vdm_options: the options of :class:`~vbounds.lab.models.diffusion.VDM`.
        """
        if transform not in TRANSFORMS:
            raise ValueError(f"model.transform must be one of {TRANSFORMS}, got {transform!r}")
        if isinstance(time_features, bool) or not isinstance(time_features, int):
            raise ValueError(f"model.time_features must be an even int, got {time_features!r}")
        if time_features < 2 or time_features % 2:
            raise ValueError(f"model.time_features must be an even int >= 2, got {time_features}")
        super().__init__(data_dim, rngs=rngs, **vdm_options)
        self.transform_kind, self.time_features = transform, time_features
        self.transform_net = MLP(
            data_dim + time_features,
            transform_hidden_sizes,
            data_dim,
            activation="gelu",
            rngs=rngs,
        )
        last = self.transform_net.layers[-1]
        last.kernel[...] = jnp.zeros_like(last.kernel[...])

    def transform(self, x: jax.Array, t: jax.typing.ArrayLike) -> jax.Array:
        """``F(x, t)`` for one flat example ``x`` and a scalar ``t``."""
        t = jnp.asarray(t, x.dtype)
        g = self.transform_net(jnp.concatenate([x, sinusoidal_embedding(t, self.time_features)]))
        weight = t if self.transform_kind == "ndm" else jax.nn.sigmoid(self.gamma(t))
        return x + weight * g

    def x_hat(self, z_t: jax.Array, t: jax.typing.ArrayLike) -> jax.Array:
        """The data prediction ``(z_t - sigma_t eps_hat) / alpha_t``."""
        gamma = self.gamma(t)
        alpha, sigma = jnp.sqrt(jax.nn.sigmoid(-gamma)), jnp.sqrt(jax.nn.sigmoid(gamma))
        return (z_t - sigma * self.eps(z_t, t)) / alpha

    def sample(self, key: jax.Array, num_samples: int, num_steps: int = 100) -> jax.Array:
        """Ancestral samples as grey levels: ``q(z_s | z_t, x_hat)`` of the NDM process."""

        def one(k):
            k_z, k_steps = jax.random.split(k)

            def step(i, z):
                t = jnp.asarray((num_steps - i) / num_steps)
                s = jnp.asarray((num_steps - i - 1) / num_steps)
                g_t, g_s = self.gamma(t), self.gamma(s)
                x_hat = jnp.clip(self.x_hat(z, t), -1.0, 1.0)
                ratio = jnp.exp(g_s - g_t)  # SNR_t / SNR_s
                alpha_t, alpha_s = jnp.sqrt(jax.nn.sigmoid(-g_t)), jnp.sqrt(jax.nn.sigmoid(-g_s))
                var_s, var_t = jax.nn.sigmoid(g_s), jax.nn.sigmoid(g_t)
                coef = jnp.sqrt(ratio * var_s / var_t)
                mean = alpha_s * self.transform(x_hat, s) + coef * (
                    z - alpha_t * self.transform(x_hat, t)
                )
                noise = jax.random.normal(jax.random.fold_in(k_steps, i), z.shape)
                return mean + jnp.sqrt(var_s * -jnp.expm1(g_s - g_t)) * noise

            z = jax.lax.fori_loop(0, num_steps, step, jax.random.normal(k_z, (self.data_dim,)))
            return self.x_hat(z, jnp.zeros(()))

        return to_levels(jax.vmap(one)(jax.random.split(key, num_samples)), self.num_levels)


def make_ndm(config, *, rngs, example_batch):
    """NDM / DiffEnc: a VDM and a learned forward transform of the data."""
    data_dim = _data_dim(example_batch, "ndm")
    _check_classes(example_batch, config.num_levels, "num_levels")
    return NDM(
        data_dim,
        transform=config.transform,
        transform_hidden_sizes=_tuple(config.transform_hidden_sizes),
        time_features=config.time_features,
        num_levels=config.num_levels,
        hidden_sizes=_tuple(config.hidden_sizes),
        schedule=config.schedule,
        gamma_min=config.gamma_min,
        gamma_max=config.gamma_max,
        schedule_hidden=config.schedule_hidden,
        rngs=rngs,
    )


register_model(
    "ndm",
    make_ndm,
    defaults={
        "transform": "ndm",
        "transform_hidden_sizes": (64,),
        "time_features": 16,
        "num_levels": 17,
        "hidden_sizes": (128,),
        "schedule": "fixed",
        "gamma_min": -13.3,
        "gamma_max": 5.0,
        "schedule_hidden": 64,
    },
    doc="NDM / DiffEnc on grey levels: VDM's denoiser plus a learned forward transform",
)
