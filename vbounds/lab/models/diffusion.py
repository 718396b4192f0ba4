"""Diffusion models of the digits: VDM on the 17 grey levels, p(x_0 | x_t) MLPs, MuLAN.

Registered names (``config.model.name``):

- ``vdm``: :class:`VDM`, the denoiser :class:`GridDenoiser` with a fixed linear or a
  learned (:class:`~vbounds.lab.models.denoisers.LearnedGamma`) schedule; for the ``vdm``
  objective (``vb.diffusion.gaussian_vlb`` with the discretised decoder).
- ``discrete_denoiser``: :class:`DiscreteDenoiser`, logits of ``p(x_0 | x_t)`` for the
  ``d3pm``, ``mdlm`` and ``udlm`` objectives.
- ``mulan``: :class:`~vbounds.lab.models.denoisers.MuLAN` (auxiliary encoder, per-dimension
  polynomial schedule, Fourier-feature denoiser; ``denoiser="grid"`` swaps in a
  :class:`GridDenoiser` that reads each pixel's schedule) for the ``mulan`` objective.

Each has a ``sample(key, num_samples, num_steps)`` method: ancestral samples as integer
classes (grey levels for the Gaussian models), drawn in the run's report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import vbounds as vb
from vbounds.lab.models.denoisers import LearnedGamma, MuLAN
from vbounds.lab.models.layers import MLP, sinusoidal_embedding
from vbounds.lab.registry import register_model

SCHEDULES = ("fixed", "learned")
DENOISERS = ("fourier", "grid")


def _check_features(time_features: int) -> None:
    if isinstance(time_features, bool) or not isinstance(time_features, int):
        raise ValueError(f"model.time_features must be an even int >= 2, got {time_features!r}")
    if time_features < 2 or time_features % 2:
        raise ValueError(f"model.time_features must be an even int >= 2, got {time_features}")


class GridDenoiser(nnx.Module):
    """``eps_hat(z_t, gamma_t)`` through a per-pixel posterior over the grid of levels.

    Logits over the levels ``v_k`` (the grid ``-1 + 2k / (L - 1)``) of pixel ``j``: an MLP
    of ``(z, embedding of gamma)`` plus the exact Gaussian log-likelihood
    ``-(z_j - alpha v_k)^2 / (2 sigma^2)``; then ``x_hat`` is the posterior mean and
    ``eps_hat = (z - alpha x_hat) / sigma``. With constant logits ``log p_j(k)`` this is the
    exact denoiser of independent per-pixel marginals, and at low noise it snaps ``z`` to the
    grid exactly. A plain MLP predicting ``eps`` (even on VDM's Fourier features) cannot learn
    that snapping in a few thousand steps: on the digits it paid ~0.5 bits/dim below
    ``gamma = -8``, where the exact denoiser costs nothing, and ended above the per-pixel
    baseline.

    With a per-pixel schedule (MuLAN) ``gamma`` has the shape of ``z`` and the network's time
    signal is ``time`` instead; ``context_features > 0`` appends a conditioning vector (MuLAN's
    auxiliary latent) to the MLP's inputs.
    """

    def __init__(
        self,
        data_dim: int,
        *,
        num_levels: int = 17,
        hidden_sizes: Sequence[int] = (128,),
        time_features: int = 16,
        gamma_min: float = -13.3,
        gamma_max: float = 5.0,
        activation: str = "gelu",
        context_features: int = 0,
        rngs: nnx.Rngs,
    ):
        """Builds the network.

        Args:
          data_dim: pixels of a flat example.
          num_levels: ``L``, the grid size (17 for the digits' grey levels).
          hidden_sizes: MLP hidden sizes.
          time_features: size of the embedding of ``gamma`` (or ``time``) (even).
          gamma_min: the ``gamma`` mapped to 0 in the embedding.
          gamma_max: the ``gamma`` mapped to 1.
          activation: an activation name of :mod:`vbounds.lab.models.layers`.
          context_features: size of the conditioning vector (0 for none).
          rngs: initialisation keys.
        """
        if data_dim < 1 or num_levels < 2:
            raise ValueError(
                f"data_dim must be >= 1 and model.num_levels >= 2, got {data_dim}, {num_levels}"
            )
        _check_features(time_features)
        self.data_dim, self.num_levels = data_dim, num_levels
        self.time_features = time_features
        self.gamma_range = (float(gamma_min), float(gamma_max))
        self.context_features = context_features
        self.mlp = MLP(
            data_dim + time_features + context_features,
            hidden_sizes,
            data_dim * num_levels,
            activation=activation,
            rngs=rngs,
        )

    def __call__(
        self,
        z: jax.Array,
        gamma: jax.typing.ArrayLike,
        *,
        time: jax.typing.ArrayLike | None = None,
        context: jax.Array | None = None,
    ) -> jax.Array:
        """Predicts the noise.

        Args:
          z: ``[..., data_dim]`` noisy data.
          gamma: ``gamma_t``: a scalar or ``[...]``; with ``time``, also per pixel (``z``'s
            shape).
          time: the time signal to embed instead of ``gamma`` (per-pixel schedules), or None.
          context: ``[..., context_features]`` conditioning, when the network has any.

        Returns:
          ``eps_hat`` shaped like ``z``.
        """
        if z.shape[-1] != self.data_dim:
            raise ValueError(f"`z` must end in {self.data_dim} features, got {z.shape}")
        gamma = jnp.asarray(gamma, z.dtype)
        if time is None:
            gamma = jnp.broadcast_to(gamma, z.shape[:-1])
            lo, hi = self.gamma_range
            signal = (gamma - lo) / (hi - lo)
            gamma = gamma[..., None]
        else:
            signal = jnp.broadcast_to(jnp.asarray(time, z.dtype), z.shape[:-1])
            gamma = jnp.broadcast_to(gamma, z.shape)
        parts = [z, sinusoidal_embedding(signal, self.time_features)]
        if self.context_features:
            if context is None or jnp.shape(context)[-1:] != (self.context_features,):
                raise ValueError(
                    f"`context` must end in {self.context_features} features, got "
                    f"{None if context is None else jnp.shape(context)}"
                )
            parts.append(jnp.broadcast_to(context, (*z.shape[:-1], self.context_features)))
        elif context is not None:
            raise ValueError("`context` given to a network built with `context_features=0`")
        alpha = jnp.sqrt(jax.nn.sigmoid(-gamma))
        var = jax.nn.sigmoid(gamma)
        grid = jnp.linspace(-1.0, 1.0, self.num_levels)
        log_lik = -((z[..., None] - alpha[..., None] * grid) ** 2) / (2 * var[..., None])
        logits = self.mlp(jnp.concatenate(parts, -1)).reshape(*z.shape, self.num_levels)
        x_hat = jax.nn.softmax(logits + log_lik, axis=-1) @ grid
        return (z - alpha * x_hat) / jnp.sqrt(var)


class LinearGamma(nnx.Module):
    """VDM's fixed linear schedule ``gamma(t) = gamma_min + (gamma_max - gamma_min) t``."""

    def __init__(self, *, gamma_min: float = -13.3, gamma_max: float = 5.0):
        """Stores the end points (plain numbers: nothing here is trained)."""
        self.gamma_min, self.gamma_max = float(gamma_min), float(gamma_max)

    def __call__(self, t: jax.typing.ArrayLike) -> jax.Array:
        """``gamma(t)``, elementwise in ``t``."""
        return vb.diffusion.linear_gamma(t, gamma_min=self.gamma_min, gamma_max=self.gamma_max)


def gaussian_ancestral_sample(
    key: jax.Array, eps_fn: Callable, gamma_fn: Callable, data_dim: int, num_steps: int
) -> jax.Array:
    """One ancestral sample ``x_hat = z_0 / alpha_0`` of a Gaussian diffusion model.

    From ``z_1 ~ N(0, I)``, ``num_steps`` steps of ``p(z_s | z_t) = q(z_s | z_t, x = x_hat)``
    with ``x_hat = (z_t - sigma_t eps_hat) / alpha_t`` clipped to ``[-1, 1]``.

    Args:
      key: PRNG key.
      eps_fn: ``eps_fn(z_t, t) -> eps_hat``, ``[data_dim]``.
      gamma_fn: ``gamma_fn(t)``, a scalar or ``[data_dim]`` (per-dimension schedules).
      data_dim: size of a flat example.
      num_steps: the number of reverse steps.

    Returns:
      ``[data_dim]`` values on the data scale (round them to the grid for levels).
    """
    k_z, k_steps = jax.random.split(key)

    def step(i, z):
        t = (num_steps - i) / num_steps
        s = (num_steps - i - 1) / num_steps
        g_t, g_s = gamma_fn(jnp.asarray(t)), gamma_fn(jnp.asarray(s))
        alpha_t, sigma_t = jnp.sqrt(jax.nn.sigmoid(-g_t)), jnp.sqrt(jax.nn.sigmoid(g_t))
        x_hat = jnp.clip((z - sigma_t * eps_fn(z, jnp.asarray(t))) / alpha_t, -1.0, 1.0)
        mean, log_var = vb.diffusion.gaussian_posterior(x_hat, z, g_s, g_t)
        noise = jax.random.normal(jax.random.fold_in(k_steps, i), z.shape)
        return mean + jnp.exp(0.5 * log_var) * noise

    z = jax.lax.fori_loop(0, num_steps, step, jax.random.normal(k_z, (data_dim,)))
    return z / jnp.sqrt(jax.nn.sigmoid(-gamma_fn(jnp.zeros(()))))


def to_levels(x: jax.Array, num_levels: int) -> jax.Array:
    """Values in ``[-1, 1]`` rounded to the nearest of ``num_levels`` grid points (ints)."""
    levels = jnp.round((x + 1.0) * (num_levels - 1) / 2.0)
    return jnp.clip(levels, 0, num_levels - 1).astype(jnp.int32)


class VDM(nnx.Module):
    """A variational diffusion model of grey levels: :class:`GridDenoiser` and a schedule.

    ``eps(z_t, t)`` and ``gamma(t)`` are the ``eps_fn`` and ``gamma_fn`` of
    ``vb.diffusion.gaussian_vlb``.

    References:
      Kingma et al., Variational Diffusion Models, 2021.
    """

    def __init__(
        self,
        data_dim: int,
        *,
        num_levels: int = 17,
        hidden_sizes: Sequence[int] = (128,),
        schedule: str = "fixed",
        gamma_min: float = -13.3,
        gamma_max: float = 5.0,
        schedule_hidden: int = 64,
        rngs: nnx.Rngs,
    ):
        """Builds the denoiser and the schedule.

        Args:
          data_dim: pixels of a flat example.
          num_levels: grid size (the grey levels).
          hidden_sizes: the denoiser's hidden sizes.
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
        self.data_dim, self.num_levels = data_dim, num_levels
        self.denoiser = GridDenoiser(
            data_dim,
            num_levels=num_levels,
            hidden_sizes=hidden_sizes,
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

    def sample(self, key: jax.Array, num_samples: int, num_steps: int = 100) -> jax.Array:
        """``[num_samples, data_dim]`` ancestral samples as grey levels (int32)."""
        keys = jax.random.split(key, num_samples)
        x = jax.vmap(
            lambda k: gaussian_ancestral_sample(k, self.eps, self.gamma, self.data_dim, num_steps)
        )(keys)
        return to_levels(x, self.num_levels)


class DiscreteDenoiser(nnx.Module):
    """Logits of ``p(x_0 | x_t)`` for each token: an MLP on the one-hot ``x_t`` and ``t``.

    ``x_t`` takes the ``num_classes`` data classes and one more, the mask (index
    ``num_classes``), so one network serves uniform noise (the mask never occurs) and
    absorbing noise. The logits are over the data classes only; an objective with a mask
    state appends ``-inf`` for it (``x_0`` is never the mask). ``t`` is a time in
    ``[0, 1]`` (D3PM's step ``i`` enters as ``i / T``).
    """

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
          data_dim: tokens of a flat example.
          num_classes: data classes (the mask is one more input class).
          hidden_sizes: MLP hidden sizes.
          time_features: size of the embedding of ``t`` (even).
          activation: an activation name of :mod:`vbounds.lab.models.layers`.
          rngs: initialisation keys.
        """
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"model.num_classes must be an int >= 2, got {num_classes!r}")
        _check_features(time_features)
        self.data_dim, self.num_classes = data_dim, num_classes
        self.time_features = time_features
        self.mlp = MLP(
            data_dim * (num_classes + 1) + time_features,
            hidden_sizes,
            data_dim * num_classes,
            activation=activation,
            rngs=rngs,
        )

    def __call__(self, x_t: jax.Array, t: jax.typing.ArrayLike) -> jax.Array:
        """``[..., data_dim, num_classes]`` logits for ``x_t`` of shape ``[..., data_dim]``."""
        x_t = jnp.asarray(x_t)
        if x_t.shape[-1] != self.data_dim:
            raise ValueError(f"`x_t` must end in {self.data_dim} tokens, got {x_t.shape}")
        t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x_t.shape[:-1])
        one_hot = jax.nn.one_hot(x_t, self.num_classes + 1).reshape(*x_t.shape[:-1], -1)
        h = jnp.concatenate([one_hot, sinusoidal_embedding(t, self.time_features)], axis=-1)
        return self.mlp(h).reshape(*x_t.shape, self.num_classes)


def categorical_ancestral_sample(
    key: jax.Array,
    logits_fn: Callable,
    transitions: jax.Array,
    prior: jax.Array,
    data_dim: int,
    *,
    parameterization: str = "mixture",
    last_step: str = "predict",
) -> jax.Array:
    """One ancestral sample of a discrete-state diffusion model with ``T`` steps.

    ``x_T ~ prior``, then ``p(x_{t-1} | x_t)`` (``vb.diffusion.reverse_probs``) down to
    ``x_1``; the last step draws ``x_0`` from ``p(x_0 | x_1)`` itself (``"predict"``,
    D3PM's reconstruction term) or takes the reverse step with ``Q_bar_0 = I``
    (``"posterior"``: continuous-time models, where unmasked tokens are carried over).

    Args:
      key: PRNG key.
      logits_fn: ``logits_fn(x_t, i) -> [data_dim, V]`` logits of ``p(x_0 | x_t)`` at step
        ``i`` in ``1..T``.
      transitions: ``[T, V, V]`` one-step matrices.
      prior: ``[V]`` probabilities of ``x_T``.
      data_dim: tokens of an example.
      parameterization: of the reverse step (``"mixture"`` or ``"d3pm"``).
      last_step: ``"predict"`` or ``"posterior"``.

    Returns:
      ``[data_dim]`` integer classes.
    """
    num_steps, v = transitions.shape[0], transitions.shape[-1]
    qbar = vb.diffusion.cumulative_transitions(transitions)
    qbar = jnp.concatenate([jnp.eye(v, dtype=qbar.dtype)[None], qbar])  # qbar[i] = Q_bar_i
    k_T, k_steps, k_0 = jax.random.split(key, 3)
    log_prior = jnp.log(jnp.maximum(prior, 1e-30))
    x = jax.random.categorical(k_T, jnp.broadcast_to(log_prior, (data_dim, v)))

    def reverse(i, x_t):
        probs = vb.diffusion.reverse_probs(
            x_t,
            logits_fn(x_t, i),
            transitions[i - 1],
            qbar[i - 1],
            parameterization=parameterization,
        )
        return probs

    def step(j, x_t):
        i = num_steps - j
        probs = reverse(i, x_t)
        k = jax.random.fold_in(k_steps, i)
        return jax.random.categorical(k, jnp.log(jnp.maximum(probs, 1e-30)), axis=-1)

    x = jax.lax.fori_loop(0, num_steps - 1, step, x)
    if last_step == "predict":
        return jax.random.categorical(k_0, logits_fn(x, 1), axis=-1)
    return jax.random.categorical(k_0, jnp.log(jnp.maximum(reverse(1, x), 1e-30)), axis=-1)


def _data_dim(example_batch: dict, name: str) -> int:
    x = np.asarray(example_batch["x"])
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(
            f"model {name!r} takes flat integer classes [batch, dim] (data 'digits_levels' or "
            f"'digits_binary'), got x of shape {x.shape} and dtype {x.dtype}"
        )
    return int(x.shape[1])


def _check_classes(example_batch: dict, count: int, key: str) -> None:
    top = int(np.max(example_batch["x"]))
    if top >= count:
        raise ValueError(
            f"model.{key}={count}, but the data hold class {top}: set it to the data's "
            "number of classes"
        )


def _tuple(value):
    return tuple(_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def make_vdm(config, *, rngs, example_batch):
    """VDM: :class:`GridDenoiser` with a fixed linear or learned schedule."""
    data_dim = _data_dim(example_batch, "vdm")
    _check_classes(example_batch, config.num_levels, "num_levels")
    return VDM(
        data_dim,
        num_levels=config.num_levels,
        hidden_sizes=_tuple(config.hidden_sizes),
        schedule=config.schedule,
        gamma_min=config.gamma_min,
        gamma_max=config.gamma_max,
        schedule_hidden=config.schedule_hidden,
        rngs=rngs,
    )


def make_discrete_denoiser(config, *, rngs, example_batch):
    """An MLP predicting ``p(x_0 | x_t)`` (D3PM, MDLM, UDLM)."""
    data_dim = _data_dim(example_batch, "discrete_denoiser")
    _check_classes(example_batch, config.num_classes, "num_classes")
    return DiscreteDenoiser(
        data_dim,
        num_classes=config.num_classes,
        hidden_sizes=_tuple(config.hidden_sizes),
        time_features=config.time_features,
        rngs=rngs,
    )


class MuLANGrid(MuLAN):
    """:class:`~vbounds.lab.models.denoisers.MuLAN` on grey levels, with a sampler.

    ``denoiser="fourier"`` keeps MuLAN's Fourier-feature MLP; ``"grid"`` replaces it with a
    :class:`GridDenoiser` that reads the per-pixel ``gamma(t; u)`` (the exact Gaussian
    likelihood of each level under each pixel's own schedule), ``t`` as its time signal and
    ``u`` as context. Either reads ``x`` only through ``u``, so the bound stays a bound.

    Attributes beyond MuLAN's: ``data_dim``, ``num_levels`` (the decoder's grid),
    ``latent_dim`` and ``denoiser_kind``.
    """

    def __init__(
        self,
        data_dim: int,
        *,
        num_levels: int = 17,
        denoiser: str = "fourier",
        latent_dim: int = 8,
        rngs: nnx.Rngs,
        **kwargs,
    ):
        """Builds MuLAN (``kwargs`` go to its constructor) and, for ``"grid"``, the denoiser."""
        if denoiser not in DENOISERS:
            raise ValueError(f"model.denoiser must be one of {DENOISERS}, got {denoiser!r}")
        super().__init__(data_dim, latent_dim=latent_dim, rngs=rngs, **kwargs)
        self.data_dim, self.num_levels, self.latent_dim = data_dim, num_levels, latent_dim
        self.denoiser_kind = denoiser
        if denoiser == "grid":
            self.denoiser = GridDenoiser(
                data_dim,
                num_levels=num_levels,
                hidden_sizes=kwargs.get("hidden_sizes", (128,)),
                context_features=latent_dim,
                rngs=rngs,
            )

    def eps(self, z_t: jax.Array, t: jax.typing.ArrayLike, u: jax.Array) -> jax.Array:
        """The denoiser ``eps_hat(z_t, t, u)``."""
        if self.denoiser_kind == "grid":
            return self.denoiser(z_t, self.schedule(t, u), time=t, context=u)
        return super().eps(z_t, t, u)

    def sample(self, key: jax.Array, num_samples: int, num_steps: int = 100) -> jax.Array:
        """Ancestral samples as grey levels (int32): ``u ~ N(0, I)``, then the reverse chain under
        the schedule ``gamma(t; u)`` and the denoiser ``eps_hat(z_t, t, u)``."""

        def one(k):
            k_u, k_z = jax.random.split(k)
            u = jax.random.normal(k_u, (self.latent_dim,))
            return gaussian_ancestral_sample(
                k_z,
                lambda z, t: self.eps(z, t, u),
                lambda t: self.schedule(t, u),
                self.data_dim,
                num_steps,
            )

        return to_levels(jax.vmap(one)(jax.random.split(key, num_samples)), self.num_levels)


def make_mulan(config, *, rngs, example_batch):
    """MuLAN: an auxiliary latent, a per-dimension learned schedule, a denoiser given ``u``."""
    data_dim = _data_dim(example_batch, "mulan")
    _check_classes(example_batch, config.num_levels, "num_levels")
    return MuLANGrid(
        data_dim,
        num_levels=config.num_levels,
        denoiser=config.denoiser,
        latent_dim=config.latent_dim,
        hidden_sizes=_tuple(config.hidden_sizes),
        encoder_hidden_sizes=_tuple(config.encoder_hidden_sizes),
        schedule_hidden_sizes=_tuple(config.schedule_hidden_sizes),
        fourier_exponents=_tuple(config.fourier_exponents),
        gamma_min=config.gamma_min,
        gamma_max=config.gamma_max,
        learn_end_points=config.learn_end_points,
        rngs=rngs,
    )


register_model(
    "vdm",
    make_vdm,
    defaults={
        "num_levels": 17,
        "hidden_sizes": (128,),
        "schedule": "fixed",
        "gamma_min": -13.3,
        "gamma_max": 5.0,
        "schedule_hidden": 64,
    },
    doc="VDM on grey levels: a per-pixel posterior denoiser, fixed or learned schedule",
)
register_model(
    "discrete_denoiser",
    make_discrete_denoiser,
    defaults={"num_classes": 2, "hidden_sizes": (256, 256), "time_features": 16},
    doc="an MLP predicting p(x_0 | x_t) over the data classes (D3PM, MDLM, UDLM)",
)
register_model(
    "mulan",
    make_mulan,
    defaults={
        "num_levels": 17,
        "denoiser": "fourier",
        "latent_dim": 8,
        "hidden_sizes": (128, 128),
        "encoder_hidden_sizes": (128,),
        "schedule_hidden_sizes": (64,),
        "fourier_exponents": (4, 5, 6),
        "gamma_min": -13.3,
        "gamma_max": 5.0,
        "learn_end_points": False,
    },
    doc="MuLAN: auxiliary latent, per-dimension learned schedule (Sahoo et al. 2024)",
)
