"""Diffusion-model networks: a Fourier-feature noise-prediction MLP and learned schedules.

``FourierDenoiser`` and ``LearnedGamma`` plug into ``vb.diffusion.gaussian_vlb``:
``eps_fn = lambda z, t: net(z, gamma(t))`` and ``gamma_fn = gamma`` (a ``LearnedGamma``) or
any pure schedule of ``vb.diffusion``. ``MuLAN`` composes an ``AuxiliaryEncoder``, a
``PolynomialSchedule`` and a conditional ``FourierDenoiser`` into ``vb.diffusion.mulan_vlb``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.diffusion import (
    AuxiliaryVLBTerms,
    init_monotone_gamma,
    monotone_gamma,
    mulan_vlb,
    polynomial_gamma,
)
from vbounds.lab.models.layers import MLP, sinusoidal_embedding


class FourierDenoiser(nnx.Module):
    """Noise prediction ``eps_hat(z_t, gamma_t)`` from an MLP on Fourier features.

    Inputs are ``z``, the features ``sin(2^n pi z), cos(2^n pi z)`` for each exponent ``n``
    (VDM adds these so that the network resolves the fine scale that matters for the
    likelihood near ``t = 0``), and a sinusoidal embedding of ``gamma`` rescaled to ``[0, 1]``.
    With ``context_features > 0`` a conditioning vector (MuLAN's auxiliary latent) is appended
    to the inputs. Any scalar time signal may stand in for ``gamma``: with a per-dimension
    schedule pass ``t`` itself and build the network with ``gamma_min=0, gamma_max=1``.

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
        context_features: int = 0,
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
          activation: an activation name of ``vbounds.lab.models.layers``.
          context_features: size of the conditioning vector (0 for none).
          rngs: the initialisation keys.
        """
        if context_features < 0:
            raise ValueError(f"`context_features` must be >= 0, got {context_features}.")
        if data_dim < 1:
            raise ValueError(f"`data_dim` must be positive, got {data_dim}.")
        if time_features < 2 or time_features % 2:
            raise ValueError(f"`time_features` must be even and >= 2, got {time_features}.")
        self.data_dim = data_dim
        self.frequencies = tuple(2.0**n * math.pi for n in fourier_exponents)
        self.time_features = time_features
        self.gamma_range = (float(gamma_min), float(gamma_max))
        self.context_features = context_features
        in_features = data_dim * (1 + 2 * len(self.frequencies)) + time_features + context_features
        self.mlp = MLP(in_features, hidden_sizes, data_dim, activation=activation, rngs=rngs)

    def _embed_gamma(self, gamma: jax.Array) -> jax.Array:
        lo, hi = self.gamma_range
        return sinusoidal_embedding((gamma - lo) / (hi - lo), self.time_features)

    def __call__(
        self,
        z: jax.Array,
        gamma: jax.typing.ArrayLike,
        context: jax.typing.ArrayLike | None = None,
    ) -> jax.Array:
        """Predicts the noise.

        Args:
          z: ``[..., data_dim]`` noisy data.
          gamma: ``gamma_t``, scalar or ``[...]``.
          context: ``[..., context_features]`` conditioning, when the network has any.

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
        if self.context_features:
            if context is None or jnp.shape(context)[-1:] != (self.context_features,):
                raise ValueError(
                    f"`context` must end in {self.context_features} features, got "
                    f"{None if context is None else jnp.shape(context)}."
                )
            parts.append(jnp.broadcast_to(context, (*z.shape[:-1], self.context_features)))
        elif context is not None:
            raise ValueError("`context` given to a network built with `context_features=0`.")
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


class AuxiliaryEncoder(nnx.Module):
    """MuLAN's encoder ``q(u | x) = N(m(x), diag exp(l(x)))`` of the auxiliary latent.

    Returns the mean and log-variance; ``vb.diffusion.mulan_vlb`` draws ``u`` from them by
    reparameterisation and adds ``KL(q(u | x) || N(0, I))`` to the bound.

    References:
      Sahoo et al., Diffusion Models With Learned Adaptive Noise (MuLAN), 2024.
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        *,
        hidden_sizes: Sequence[int] = (128,),
        activation: str = "gelu",
        rngs: nnx.Rngs,
    ):
        """Builds the network.

        Args:
          data_dim: size of a flat example.
          latent_dim: size of the auxiliary latent ``u``.
          hidden_sizes: MLP hidden sizes.
          activation: an activation name of ``vbounds.lab.models.layers``.
          rngs: the initialisation keys.
        """
        if data_dim < 1 or latent_dim < 1:
            raise ValueError(
                f"`data_dim` and `latent_dim` must be positive, got {data_dim}, {latent_dim}."
            )
        self.data_dim = data_dim
        self.mlp = MLP(data_dim, hidden_sizes, 2 * latent_dim, activation=activation, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(mean, log_variance)`` of ``q(u | x)``, each ``[..., latent_dim]``."""
        if jnp.shape(x)[-1:] != (self.data_dim,):
            raise ValueError(f"`x` must end in {self.data_dim} features, got {jnp.shape(x)}.")
        mean, log_variance = jnp.split(self.mlp(x), 2, axis=-1)
        return mean, log_variance


class PolynomialSchedule(nnx.Module):
    """MuLAN's schedule ``gamma(t; u)``: per-dimension monotone polynomials of ``t``.

    An MLP maps the auxiliary latent ``u`` to the coefficients ``a, b, c`` of
    ``vb.diffusion.polynomial_gamma`` for each of the ``data_dim`` dimensions (``c`` is offset
    by one, so a network that outputs zeros gives the linear schedule). Every schedule it
    produces is increasing and runs exactly between the end points, which are fixed numbers
    or, with ``learn_end_points``, parameters shared by all dimensions.

    References:
      Sahoo et al., Diffusion Models With Learned Adaptive Noise (MuLAN), 2024.
    """

    def __init__(
        self,
        latent_dim: int,
        data_dim: int,
        *,
        hidden_sizes: Sequence[int] = (64,),
        gamma_min: float = -13.3,
        gamma_max: float = 5.0,
        learn_end_points: bool = False,
        activation: str = "gelu",
        rngs: nnx.Rngs,
    ):
        """Builds the network.

        Args:
          latent_dim: size of ``u``.
          data_dim: number of per-dimension schedules.
          hidden_sizes: MLP hidden sizes.
          gamma_min: initial (or fixed) ``gamma(0)``.
          gamma_max: initial (or fixed) ``gamma(1)``.
          learn_end_points: whether the end points are parameters.
          activation: an activation name of ``vbounds.lab.models.layers``.
          rngs: the initialisation keys.
        """
        if latent_dim < 1 or data_dim < 1:
            raise ValueError(
                f"`latent_dim` and `data_dim` must be positive, got {latent_dim}, {data_dim}."
            )
        self.latent_dim, self.data_dim = latent_dim, data_dim
        self.mlp = MLP(latent_dim, hidden_sizes, 3 * data_dim, activation=activation, rngs=rngs)
        ends = jnp.array([gamma_min, gamma_max])
        self.ends = nnx.Param(ends) if learn_end_points else nnx.Variable(ends)

    def coefficients(self, u: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The polynomial coefficients ``(a, b, c)``, each ``[..., data_dim]``."""
        if jnp.shape(u)[-1:] != (self.latent_dim,):
            raise ValueError(f"`u` must end in {self.latent_dim} features, got {jnp.shape(u)}.")
        out = self.mlp(u).reshape(*jnp.shape(u)[:-1], 3, self.data_dim)
        return out[..., 0, :], out[..., 1, :], out[..., 2, :] + 1.0

    def __call__(self, t: jax.typing.ArrayLike, u: jax.Array) -> jax.Array:
        """``gamma(t; u)``, ``[..., data_dim]`` for ``t`` scalar or ``[...]`` like ``u``'s batch."""
        a, b, c = self.coefficients(u)
        ends = self.ends[...]
        t = jnp.asarray(t)[..., None]
        return polynomial_gamma(t, a, b, c, gamma_min=ends[0], gamma_max=ends[1])


class MuLAN(nnx.Module):
    """A diffusion model with a learned input-adaptive noise schedule (MuLAN).

    The generative model is ``p(u) p(x | u)``: ``u ~ N(0, I)``, then Gaussian diffusion with
    the schedule ``gamma(t; u)`` (``PolynomialSchedule``) and the denoiser
    ``eps_hat(z_t, t, u)`` (a ``FourierDenoiser`` with ``u`` as context). ``vlb`` is its
    negative ELBO with the encoder ``q(u | x)`` (``AuxiliaryEncoder``), an upper bound on
    ``-log p(x)``; see ``vb.diffusion.mulan_vlb``.

    References:
      Sahoo et al., Diffusion Models With Learned Adaptive Noise (MuLAN), 2024.
    """

    def __init__(
        self,
        data_dim: int,
        *,
        latent_dim: int = 8,
        hidden_sizes: Sequence[int] = (128, 128),
        encoder_hidden_sizes: Sequence[int] = (128,),
        schedule_hidden_sizes: Sequence[int] = (64,),
        fourier_exponents: Sequence[int] = (4, 5, 6),
        gamma_min: float = -13.3,
        gamma_max: float = 5.0,
        learn_end_points: bool = False,
        rngs: nnx.Rngs,
    ):
        """Builds the three networks.

        Args:
          data_dim: size of a flat example.
          latent_dim: size of the auxiliary latent.
          hidden_sizes: the denoiser's hidden sizes.
          encoder_hidden_sizes: the encoder's hidden sizes.
          schedule_hidden_sizes: the schedule network's hidden sizes.
          fourier_exponents: the denoiser's Fourier features.
          gamma_min: (initial) ``gamma(0)`` of every dimension.
          gamma_max: (initial) ``gamma(1)``.
          learn_end_points: whether the end points are parameters.
          rngs: the initialisation keys.
        """
        self.encoder = AuxiliaryEncoder(
            data_dim, latent_dim, hidden_sizes=encoder_hidden_sizes, rngs=rngs
        )
        self.schedule = PolynomialSchedule(
            latent_dim,
            data_dim,
            hidden_sizes=schedule_hidden_sizes,
            gamma_min=gamma_min,
            gamma_max=gamma_max,
            learn_end_points=learn_end_points,
            rngs=rngs,
        )
        # The time signal is t itself (the schedule differs per dimension and example).
        self.denoiser = FourierDenoiser(
            data_dim,
            hidden_sizes=hidden_sizes,
            fourier_exponents=fourier_exponents,
            gamma_min=0.0,
            gamma_max=1.0,
            context_features=latent_dim,
            rngs=rngs,
        )

    def eps(self, z_t: jax.Array, t: jax.typing.ArrayLike, u: jax.Array) -> jax.Array:
        """The denoiser ``eps_hat(z_t, t, u)``."""
        return self.denoiser(z_t, t, u)

    def vlb(
        self,
        key: jax.Array,
        x: jax.Array,
        *,
        num_steps: int | None = None,
        decoder: str = "gaussian",
        num_bins: int = 256,
        t: jax.typing.ArrayLike | None = None,
    ) -> AuxiliaryVLBTerms:
        """One-draw negative ELBO of one example ``x`` (``[data_dim]``); vmap for batches.

        Args:
          key: PRNG key.
          x: one example.
          num_steps: ``None`` (continuous time) or ``T``.
          decoder: as in ``vb.diffusion.gaussian_vlb``.
          num_bins: as in ``vb.diffusion.gaussian_vlb``.
          t: optional time.

        Returns:
          ``vb.diffusion.AuxiliaryVLBTerms``.
        """
        mean, log_variance = self.encoder(x)
        return mulan_vlb(
            key,
            x,
            self.eps,
            self.schedule,
            mean,
            log_variance,
            num_steps=num_steps,
            decoder=decoder,
            num_bins=num_bins,
            t=t,
        )
