"""Latent-variable models: the VAE / IWAE architectures of Burda et al. and a conditional VAE.

Every model here answers the same per-example questions, which is all an objective
(:mod:`vbounds.lab.objectives`) needs. An ``example`` is a dict with ``"x"`` (a flat input)
and, for conditional models, ``"y"`` (an integer label):

- ``variational_params(example)``: the parameters ``q_params`` of ``q(z | x)``;
- ``make_q(q_params)``: the distribution (``sample(seed=, sample_shape=)``, ``log_prob``),
  rebuilt from parameters so that STL / DReG can stop its gradient;
- ``prior(example)``: ``p(z)`` (or ``p(z | y)``), same two methods;
- ``log_likelihood(example, z)``: ``log p(x | z)`` for ``z`` with a leading sample axis;
- ``log_joint(example, z)``: ``log p(x, z)``;
- ``posterior_mean(example, key)``: ``E_q[z]`` (for counting active units).
"""

from collections.abc import Sequence

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.distributions import GaussianChain
from vbounds.lab.models.layers import MLP, GaussianHead

LIKELIHOODS = ("bernoulli", "gaussian")


class _Decoder(nnx.Module):
    """``p(x | h)``: an MLP giving Bernoulli logits or a Gaussian mean (learned scales)."""

    def __init__(self, in_features, hidden_sizes, data_dim, *, likelihood, activation, rngs):
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.net = MLP(in_features, hidden_sizes, data_dim, activation=activation, rngs=rngs)
        self.likelihood = likelihood
        self.log_scale = nnx.Param(jnp.zeros(data_dim)) if likelihood == "gaussian" else None

    def __call__(self, h: jax.Array, x: jax.Array) -> jax.Array:
        """``log p(x | h)`` summed over the event, batched over ``h``'s leading axes."""
        out = self.net(h)
        if self.likelihood == "bernoulli":
            return jnp.sum(distrax.Bernoulli(logits=out).log_prob(x), axis=-1)
        return distrax.MultivariateNormalDiag(out, jnp.exp(self.log_scale[...])).log_prob(x)


class VAE(nnx.Module):
    """Gaussian latent, diagonal-Gaussian encoder, Bernoulli or Gaussian decoder.

    The defaults are the one-stochastic-layer architecture of the IWAE paper (two
    deterministic tanh layers of 200 units each side, 50 latent units).

    References:
      Kingma & Welling, Auto-Encoding Variational Bayes, 2014.
      Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, 2016.
    """

    def __init__(
        self,
        *,
        data_dim: int,
        latent_dim: int = 50,
        hidden_sizes: Sequence[int] = (200, 200),
        likelihood: str = "bernoulli",
        activation: str = "tanh",
        rngs: nnx.Rngs,
    ):
        """Builds the encoder and decoder.

        Args:
          data_dim: size of a flat input.
          latent_dim: size of ``z``.
          hidden_sizes: encoder hidden sizes (the decoder mirrors them).
          likelihood: ``"bernoulli"`` or ``"gaussian"``.
          activation: hidden nonlinearity.
          rngs: initialisation keys.
        """
        _check_sizes(data_dim=data_dim, latent_dim=latent_dim)
        context = self._context_dim()
        self.encoder = GaussianHead(
            data_dim + context, hidden_sizes, latent_dim, activation=activation, rngs=rngs
        )
        self.decoder = _Decoder(
            latent_dim + context,
            tuple(reversed(hidden_sizes)),
            data_dim,
            likelihood=likelihood,
            activation=activation,
            rngs=rngs,
        )
        self.latent_dim = latent_dim

    def _context_dim(self) -> int:
        return 0

    def _with_context(self, example: dict, h: jax.Array) -> jax.Array:
        del example
        return h

    def variational_params(self, example: dict) -> dict:
        """Location and scale of ``q(z | x)``."""
        loc, scale = self.encoder(self._with_context(example, example["x"]))
        return {"loc": loc, "scale": scale}

    def make_q(self, q_params: dict) -> distrax.Distribution:
        """``q(z | x)`` as a diagonal Gaussian."""
        return distrax.MultivariateNormalDiag(q_params["loc"], q_params["scale"])

    def prior(self, example: dict) -> distrax.Distribution:
        """The standard normal prior ``p(z)``."""
        del example
        return distrax.MultivariateNormalDiag(jnp.zeros(self.latent_dim))

    def log_likelihood(self, example: dict, z: jax.Array) -> jax.Array:
        """``log p(x | z)`` for ``z`` of shape ``[K, latent_dim]``; returns ``[K]``."""
        z = jnp.asarray(z)
        context = jnp.broadcast_to(
            self._with_context(example, jnp.zeros(0)), (*z.shape[:-1], self._context_dim())
        )
        return self.decoder(jnp.concatenate([z, context], axis=-1), example["x"])

    def log_joint(self, example: dict, z) -> jax.Array:
        """``log p(x, z) = log p(x | z) + log p(z)``; returns ``[K]``."""
        return self.log_likelihood(example, z) + self.prior(example).log_prob(z)

    def posterior_mean(self, example: dict, key: jax.Array):
        """``E_q[z]``, exact for the Gaussian encoder."""
        del key
        return self.variational_params(example)["loc"]


class CVAE(VAE):
    """A conditional VAE: ``q(z | x, y)``, a learned prior ``p(z | y)``, ``p(x | z, y)``.

    The condition ``y`` is an integer label, fed one-hot. The model's bounds are bounds
    on ``log p(x | y)``.

    References:
      Sohn, Lee & Yan, Learning Structured Output Representation using Deep Conditional
      Generative Models, 2015.
    """

    def __init__(
        self,
        *,
        data_dim: int,
        num_classes: int,
        latent_dim: int = 50,
        hidden_sizes: Sequence[int] = (200, 200),
        likelihood: str = "bernoulli",
        activation: str = "tanh",
        rngs: nnx.Rngs,
    ):
        """Builds the recognition, prior and generation networks.

        Args:
          data_dim: size of a flat input.
          num_classes: number of label values (the condition's one-hot size).
          latent_dim: size of ``z``.
          hidden_sizes: hidden sizes of the recognition network (mirrored by the
            generation network; the prior network uses the first one).
          likelihood: ``"bernoulli"`` or ``"gaussian"``.
          activation: hidden nonlinearity.
          rngs: initialisation keys.
        """
        if num_classes < 1:
            raise ValueError(
                f"num_classes must be positive (the data need labels), got {num_classes}"
            )
        self.num_classes = num_classes
        super().__init__(
            data_dim=data_dim,
            latent_dim=latent_dim,
            hidden_sizes=hidden_sizes,
            likelihood=likelihood,
            activation=activation,
            rngs=rngs,
        )
        self.prior_net = GaussianHead(
            num_classes, tuple(hidden_sizes[:1]), latent_dim, activation=activation, rngs=rngs
        )

    def _context_dim(self) -> int:
        return self.num_classes

    def _with_context(self, example: dict, h: jax.Array) -> jax.Array:
        one_hot = jax.nn.one_hot(example["y"], self.num_classes, dtype=h.dtype)
        return jnp.concatenate([h, one_hot], axis=-1)

    def prior(self, example: dict) -> distrax.Distribution:
        """The learned conditional prior ``p(z | y)``."""
        one_hot = jax.nn.one_hot(example["y"], self.num_classes)
        return distrax.MultivariateNormalDiag(*self.prior_net(one_hot))


class TwoLayerVAE(nnx.Module):
    """The IWAE paper's two-stochastic-layer model.

    ``q(z1 | x) q(z2 | z1)`` and ``p(z2) p(z1 | z2) p(x | z1)``, every conditional a
    diagonal Gaussian MLP (Bernoulli or Gaussian for ``x``). Latents are dicts
    ``{"z1": [K, d1], "z2": [K, d2]}``. Defaults are the paper's sizes: x-100-100-z1(100)
    and z1-50-50-z2(50), mirrored in the generative model.

    References:
      Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, 2016.
    """

    def __init__(
        self,
        *,
        data_dim: int,
        latent_dims: Sequence[int] = (100, 50),
        hidden_sizes: Sequence[Sequence[int]] = ((100, 100), (50, 50)),
        likelihood: str = "bernoulli",
        activation: str = "tanh",
        rngs: nnx.Rngs,
    ):
        """Builds the four conditionals.

        Args:
          data_dim: size of a flat input.
          latent_dims: sizes ``(d1, d2)`` of ``z1`` and ``z2``.
          hidden_sizes: hidden sizes between ``x`` and ``z1``, and between ``z1`` and ``z2``.
          likelihood: ``"bernoulli"`` or ``"gaussian"``.
          activation: hidden nonlinearity.
          rngs: initialisation keys.
        """
        if len(latent_dims) != 2 or len(hidden_sizes) != 2:
            raise ValueError(
                f"latent_dims and hidden_sizes need two entries (one per stochastic layer), "
                f"got {latent_dims} and {hidden_sizes}"
            )
        d1, d2 = latent_dims
        _check_sizes(data_dim=data_dim, latent_dim=min(d1, d2))
        h1, h2 = (tuple(h) for h in hidden_sizes)
        self.q_z1 = GaussianHead(data_dim, h1, d1, activation=activation, rngs=rngs)
        self.q_z2 = GaussianHead(d1, h2, d2, activation=activation, rngs=rngs)
        self.p_z1 = GaussianHead(d2, h2[::-1], d1, activation=activation, rngs=rngs)
        self.decoder = _Decoder(
            d1, h1[::-1], data_dim, likelihood=likelihood, activation=activation, rngs=rngs
        )
        self.latent_dims = (d1, d2)

    def variational_params(self, example: dict) -> dict:
        """``q(z1 | x)``'s location and scale, and the parameters of ``q(z2 | z1)``'s network.

        The network's parameters belong to ``q_params`` so that estimators which stop
        the gradient of ``q``'s parameters (STL, DReG) stop it there too.
        """
        loc, scale = self.q_z1(example["x"])
        return {"loc": loc, "scale": scale, "q_z2": nnx.state(self.q_z2)}

    def make_q(self, q_params: dict) -> GaussianChain:
        """``q(z1, z2 | x)`` as a chain sampling ``z1`` then ``z2``."""
        q_z2 = nnx.merge(nnx.graphdef(self.q_z2), q_params["q_z2"])
        return GaussianChain(q_params["loc"], q_params["scale"], q_z2, names=("z1", "z2"))

    def prior(self, example: dict) -> GaussianChain:
        """``p(z2) p(z1 | z2)`` as a chain sampling ``z2`` then ``z1``."""
        del example
        d2 = self.latent_dims[1]
        return GaussianChain(jnp.zeros(d2), jnp.ones(d2), self.p_z1, names=("z2", "z1"))

    def log_likelihood(self, example: dict, z: dict) -> jax.Array:
        """``log p(x | z1)``; returns ``[K]``."""
        return self.decoder(z["z1"], example["x"])

    def log_joint(self, example: dict, z: dict) -> jax.Array:
        """``log p(x, z1, z2)``; returns ``[K]``."""
        return self.log_likelihood(example, z) + self.prior(example).log_prob(z)

    def posterior_mean(self, example: dict, key: jax.Array) -> dict:
        """``E_q[z1]`` exactly and ``E_q[z2]`` by Monte Carlo over ``z1``."""
        return self.make_q(self.variational_params(example)).mean(seed=key)


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
