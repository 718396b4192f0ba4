"""A Gaussian diffusion model of continuous data: a time-conditioned eps-MLP and a schedule.

Registered name (``config.model.name``): ``vdm_continuous``, :class:`ContinuousVDM`, for the
``vdm_toy2d`` objective (``vb.diffusion.gaussian_vlb`` with the Gaussian decoder). Unlike
``vdm`` (a denoiser over a grid of grey levels) the data are real vectors, so the network
predicts the noise directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import vbounds as vb
from vbounds.lab.models.denoisers import FourierDenoiser, LearnedGamma
from vbounds.lab.models.diffusion import SCHEDULES, LinearGamma
from vbounds.lab.registry import register_model


class ContinuousVDM(nnx.Module):
    """``eps_hat(z_t, gamma(t))``: an MLP of ``z_t`` and an embedding of ``gamma(t)``.

    ``eps`` and ``gamma`` are the ``eps_fn`` and ``gamma_fn`` of ``vb.diffusion.gaussian_vlb``.

    References:
      Kingma et al., Variational Diffusion Models, 2021.
    """

    def __init__(
        self,
        data_dim: int,
        *,
        hidden_sizes: Sequence[int] = (128, 128, 128),
        time_features: int = 16,
        schedule: str = "fixed",
        gamma_min: float = -10.0,
        gamma_max: float = 6.0,
        schedule_hidden: int = 64,
        rngs: nnx.Rngs,
    ):
        """Builds the network and the schedule.

        Args:
          data_dim: size of a flat example.
          hidden_sizes: the eps-MLP's hidden sizes.
          time_features: size of the embedding of ``gamma`` (even).
          schedule: ``"fixed"`` (linear) or ``"learned"`` (monotone network, learned ends).
          gamma_min: ``gamma(0)`` (the initial one when learned).
          gamma_max: ``gamma(1)``.
          schedule_hidden: width of the learned schedule's sigmoid layer.
          rngs: initialisation keys.
        """
        if schedule not in SCHEDULES:
            raise ValueError(f"model.schedule must be one of {SCHEDULES}, got {schedule!r}")
        if not gamma_min < gamma_max:
            raise ValueError(
                f"model.gamma_min must be below model.gamma_max, got {gamma_min}, {gamma_max}"
            )
        if isinstance(time_features, bool) or not isinstance(time_features, int):
            raise ValueError(f"model.time_features must be an even int, got {time_features!r}")
        if time_features < 2 or time_features % 2:
            raise ValueError(f"model.time_features must be an even int >= 2, got {time_features}")
        self.data_dim = data_dim
        self.denoiser = FourierDenoiser(
            data_dim,
            hidden_sizes=hidden_sizes,
            fourier_exponents=(),
            time_features=time_features,
            gamma_min=gamma_min,
            gamma_max=gamma_max,
            rngs=rngs,
        )
        if schedule == "learned":
            self.gamma = LearnedGamma(
                hidden=schedule_hidden, gamma_min=gamma_min, gamma_max=gamma_max, rngs=rngs
            )
        else:
            self.gamma = LinearGamma(gamma_min=gamma_min, gamma_max=gamma_max)

    def eps(self, z_t: jax.Array, t: jax.typing.ArrayLike) -> jax.Array:
        """``eps_hat(z_t, gamma(t))``."""
        return self.denoiser(z_t, self.gamma(t))

    def sample(self, key: jax.Array, num_samples: int, num_steps: int = 200) -> jax.Array:
        """``[num_samples, data_dim]`` ancestral samples ``z_0 / alpha_0`` (no clipping).

        From ``z_1 ~ N(0, I)``, ``num_steps`` steps of ``q(z_s | z_t, x = x_hat)`` with
        ``x_hat = (z_t - sigma_t eps_hat) / alpha_t``, then the decoder's mean.
        """

        def one(k):
            k_z, k_steps = jax.random.split(k)

            def step(i, z):
                t = (num_steps - i) / num_steps
                s = (num_steps - i - 1) / num_steps
                g_t, g_s = self.gamma(jnp.asarray(t)), self.gamma(jnp.asarray(s))
                alpha_t, sigma_t = jnp.sqrt(jax.nn.sigmoid(-g_t)), jnp.sqrt(jax.nn.sigmoid(g_t))
                x_hat = (z - sigma_t * self.eps(z, jnp.asarray(t))) / alpha_t
                mean, log_var = vb.diffusion.gaussian_posterior(x_hat, z, g_s, g_t)
                noise = jax.random.normal(jax.random.fold_in(k_steps, i), z.shape)
                return mean + jnp.exp(0.5 * log_var) * noise

            z = jax.lax.fori_loop(0, num_steps, step, jax.random.normal(k_z, (self.data_dim,)))
            return z / jnp.sqrt(jax.nn.sigmoid(-self.gamma(jnp.zeros(()))))

        return jax.vmap(one)(jax.random.split(key, num_samples))


def make_continuous_vdm(config, *, rngs, example_batch):
    """A :class:`ContinuousVDM` for flat real data ``[batch, dim]``."""
    x = np.asarray(example_batch["x"])
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"model 'vdm_continuous' takes flat real data [batch, dim], got {x.shape} {x.dtype}"
        )
    return ContinuousVDM(
        int(x.shape[1]),
        hidden_sizes=tuple(config.hidden_sizes),
        time_features=config.time_features,
        schedule=config.schedule,
        gamma_min=config.gamma_min,
        gamma_max=config.gamma_max,
        schedule_hidden=config.schedule_hidden,
        rngs=rngs,
    )


register_model(
    "vdm_continuous",
    make_continuous_vdm,
    defaults={
        "hidden_sizes": (128, 128, 128),
        "time_features": 16,
        "schedule": "fixed",
        "gamma_min": -10.0,
        "gamma_max": 6.0,
        "schedule_hidden": 64,
    },
    doc="a Gaussian diffusion model of real vectors: time-conditioned eps-MLP and a schedule",
)
