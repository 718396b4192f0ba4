"""A stochastic classifier: an MLP with a mean-field Gaussian posterior over its weights.

Every weight and bias ``w`` has a posterior ``N(mu, sigma^2)`` with
``sigma = softplus(rho)`` and a prior ``N(mu_0, sigma_0^2)``, ``sigma_0 = prior_scale``.
The prior means ``mu_0`` start as the network's random initialisation (drawn from the
run's seed, so independent of the data, as a PAC-Bayes prior must be) and live in
:class:`PriorMean` variables that the optimiser does not update; an objective may move
them onto the posterior means while it trains on data reserved for the prior
(:meth:`GaussianMLP.move_prior_to_means`). The posterior starts at the prior
(``mu = mu_0``, ``sigma = sigma_0``), as in PAC-Bayes with backprop (Perez-Ortiz et al.
2021). The factory ``gaussian_mlp`` builds one from a ``model`` section, sized from the
example batch.
"""

from __future__ import annotations

import math

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.layers import ACTIVATIONS
from vbounds.lab.registry import register_model


class PriorMean(nnx.Variable):
    """The prior's means: fixed at initialisation (kept in the state's ``rest``)."""


class GaussianLinear(nnx.Module):
    """A dense layer whose weights and biases are independent Gaussians."""

    def __init__(self, in_features: int, out_features: int, *, prior_scale: float, rngs):
        # The means of the usual truncated-normal initialisation (std 1/sqrt(fan-in), cut
        # at two standard deviations), zero biases.
        std = 1.0 / math.sqrt(in_features)
        w0 = std * jax.random.truncated_normal(
            rngs.params(), -2.0, 2.0, (in_features, out_features)
        )
        b0 = jnp.zeros((out_features,))
        rho0 = math.log(math.expm1(prior_scale))
        self.prior_w = PriorMean(w0)
        self.prior_b = PriorMean(b0)
        # Copies: the training step donates its state, and a buffer shared by a parameter
        # and a prior mean would be donated twice.
        self.w_loc = nnx.Param(jnp.copy(w0))
        self.b_loc = nnx.Param(jnp.copy(b0))
        self.w_rho = nnx.Param(jnp.full(w0.shape, rho0))
        self.b_rho = nnx.Param(jnp.full(b0.shape, rho0))
        self.prior_scale = prior_scale

    def _posteriors(self):
        return (
            distrax.Normal(self.w_loc[...], jax.nn.softplus(self.w_rho[...])),
            distrax.Normal(self.b_loc[...], jax.nn.softplus(self.b_rho[...])),
        )

    def kl(self) -> jax.Array:
        """``KL(posterior || prior)`` of the layer's parameters, nats."""
        priors = (self.prior_w[...], self.prior_b[...])
        return sum(
            jnp.sum(q.kl_divergence(distrax.Normal(m0, self.prior_scale)))
            for q, m0 in zip(self._posteriors(), priors, strict=True)
        )

    def __call__(self, x: jax.Array, key: jax.Array | None) -> jax.Array:
        """``x @ w + b`` with ``(w, b)`` drawn from the posterior (its means if ``key`` is None)."""
        if key is None:
            return x @ self.w_loc[...] + self.b_loc[...]
        kw, kb = jax.random.split(key)
        q_w, q_b = self._posteriors()
        return x @ q_w.sample(seed=kw) + q_b.sample(seed=kb)


class GaussianMLP(nnx.Module):
    """An MLP of :class:`GaussianLinear` layers: a Gibbs classifier over its weights."""

    def __init__(
        self,
        x_dim: int,
        *,
        hidden: int,
        layers: int,
        num_classes: int,
        prior_scale: float,
        activation: str = "relu",
        rngs: nnx.Rngs,
    ):
        """Builds the layers from ``rngs`` (the prior means and the posterior's start).

        Args:
          x_dim: input size.
          hidden: units of each hidden layer.
          layers: number of hidden layers.
          num_classes: number of output logits.
          prior_scale: the prior's standard deviation ``sigma_0`` (also the posterior's
            initial one).
          activation: the nonlinearity (one of ``ACTIVATIONS``).
          rngs: the initialisation keys.
        """
        sizes = [x_dim, *(hidden,) * layers, num_classes]
        self.layers = nnx.List(
            [
                GaussianLinear(a, b, prior_scale=prior_scale, rngs=rngs)
                for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )
        self.activation = activation

    def logits(self, x: jax.Array, key: jax.Array | None) -> jax.Array:
        """Logits ``[N, num_classes]`` of one network drawn from the posterior for the whole
        batch ``x [N, x_dim]`` (the posterior-mean network if ``key`` is None)."""
        act = ACTIVATIONS[self.activation]
        keys = [None] * len(self.layers) if key is None else jax.random.split(key, len(self.layers))
        for layer, k in zip(self.layers[:-1], keys[:-1], strict=True):
            x = act(layer(x, k))
        return self.layers[-1](x, keys[-1])

    def kl(self) -> jax.Array:
        """``KL(posterior || prior)`` over every weight and bias, nats."""
        return sum(layer.kl() for layer in self.layers)

    def move_prior_to_means(self, where: jax.Array) -> None:
        """Sets the prior means to the posterior means (gradient stopped) where ``where``
        (a scalar bool) holds: how a data-dependent prior is learnt on its own data."""
        for layer in self.layers:
            for prior, loc in ((layer.prior_w, layer.w_loc), (layer.prior_b, layer.b_loc)):
                prior.value = jnp.where(where, jax.lax.stop_gradient(loc[...]), prior[...])

    def __call__(self, x: jax.Array) -> jax.Array:
        """The posterior-mean network's logits (a deterministic read-out)."""
        return self.logits(x, None)


def _positive_int(config, key: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    return value


def make_gaussian_mlp(config, *, rngs: nnx.Rngs, example_batch: dict) -> GaussianMLP:
    """The Gaussian-weight MLP of a ``model`` section: ``hidden`` units in each of
    ``layers`` hidden layers (``activation``), ``num_classes`` outputs, prior standard
    deviation ``prior_scale``; inputs sized from ``x``."""
    if "y" not in example_batch:
        raise ValueError("model 'gaussian_mlp' needs labelled data (batches with 'y')")
    x = example_batch["x"]
    if x.ndim != 2:
        raise ValueError(f"model 'gaussian_mlp' takes flat inputs [batch, dim], got {x.shape}")
    if config.activation not in ACTIVATIONS:
        raise ValueError(
            f"model.activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}"
        )
    scale = config.prior_scale
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < 10:
        raise ValueError(f"model.prior_scale must be a number in (0, 10), got {scale!r}")
    num_classes = _positive_int(config, "num_classes")
    labels = example_batch["y"]
    if num_classes < 2 or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"model.num_classes={num_classes} must be >= 2 and cover the labels of the data "
            f"(seen [{labels.min()}, {labels.max()}])"
        )
    return GaussianMLP(
        int(x.shape[1]),
        hidden=_positive_int(config, "hidden"),
        layers=_positive_int(config, "layers"),
        num_classes=num_classes,
        prior_scale=float(scale),
        activation=config.activation,
        rngs=rngs,
    )


#: Declared hyperparameters of ``gaussian_mlp``.
DEFAULTS = {
    "hidden": 100,
    "layers": 2,
    "num_classes": 10,
    "prior_scale": 0.03,
    "activation": "relu",
}

register_model(
    "gaussian_mlp",
    make_gaussian_mlp,
    defaults=DEFAULTS,
    doc="MLP with a mean-field Gaussian posterior over its weights, prior at its initialisation",
)
