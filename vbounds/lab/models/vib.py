"""The model of the deep variational information bottleneck (Alemi et al. 2017).

:class:`VIB` is a stochastic encoder ``q(z|x) = N(mu(x), diag sigma(x)^2)`` (an MLP whose
last layer gives ``mu`` and, through a softplus, ``sigma``) and a linear softmax decoder
``q(y|z)``; the prior on ``z`` is ``N(0, I)``. The factory ``vib`` builds one from a
``model`` section, sized from the example batch's ``x``.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.layers import ACTIVATIONS, GaussianHead
from vbounds.lab.registry import register_model


class VIB(nnx.Module):
    """An MLP encoder to a diagonal Gaussian over ``z`` and a linear softmax decoder."""

    def __init__(
        self,
        x_dim: int,
        *,
        z_dim: int,
        hidden: int,
        layers: int,
        num_classes: int,
        activation: str = "relu",
        rngs: nnx.Rngs,
    ):
        """Builds the encoder, then the decoder, from ``rngs``.

        Args:
          x_dim: input size.
          z_dim: dimension of the representation ``z``.
          hidden: units of each hidden layer of the encoder.
          layers: number of hidden layers of the encoder.
          num_classes: number of labels the decoder scores.
          activation: the encoder's nonlinearity (one of ``ACTIVATIONS``).
          rngs: the initialisation keys.
        """
        self.encoder = GaussianHead(
            x_dim, (hidden,) * layers, z_dim, activation=activation, rngs=rngs
        )
        self.decoder = nnx.Linear(z_dim, num_classes, rngs=rngs)

    def posterior(self, x: jax.Array) -> distrax.MultivariateNormalDiag:
        """``q(z | x)`` for a batch ``x [N, x_dim]`` (batch shape ``[N]``)."""
        loc, scale = self.encoder(x)
        return distrax.MultivariateNormalDiag(loc, scale)

    def prior(self, like: jax.Array) -> distrax.MultivariateNormalDiag:
        """``N(0, I)`` with the batch shape of the locations ``like [N, z_dim]``."""
        return distrax.MultivariateNormalDiag(jnp.zeros_like(like))

    def log_probs(self, z: jax.Array) -> jax.Array:
        """``log q(y | z)`` for every class: ``[..., z_dim] -> [..., num_classes]``."""
        return jax.nn.log_softmax(self.decoder(z), axis=-1)

    def __call__(self, x: jax.Array) -> jax.Array:
        """The class log-probabilities at the posterior mean (a deterministic read-out)."""
        return self.log_probs(self.posterior(x).loc)


def _positive_int(config, key: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    return value


def make_vib(config, *, rngs: nnx.Rngs, example_batch: dict) -> VIB:
    """The VIB of a ``model`` section: ``z_dim``, ``hidden`` units in each of ``layers``
    hidden layers (``activation``), ``num_classes`` labels; inputs sized from ``x``."""
    if "y" not in example_batch:
        raise ValueError("model 'vib' needs labelled data (batches with 'y'); this data has none")
    x = example_batch["x"]
    if x.ndim != 2:
        raise ValueError(f"model 'vib' takes flat inputs [batch, dim], got x of shape {x.shape}")
    if config.activation not in ACTIVATIONS:
        raise ValueError(
            f"model.activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}"
        )
    num_classes = _positive_int(config, "num_classes")
    if num_classes < 2:
        raise ValueError(f"model.num_classes must be at least 2, got {num_classes}")
    labels = example_batch["y"]
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"model.num_classes={num_classes} does not cover the labels of the data "
            f"(seen [{labels.min()}, {labels.max()}])"
        )
    return VIB(
        int(x.shape[1]),
        z_dim=_positive_int(config, "z_dim"),
        hidden=_positive_int(config, "hidden"),
        layers=_positive_int(config, "layers"),
        num_classes=num_classes,
        activation=config.activation,
        rngs=rngs,
    )


#: Declared hyperparameters of ``vib``: the architecture of Alemi et al. at the digits' scale.
DEFAULTS = {"z_dim": 8, "hidden": 256, "layers": 2, "activation": "relu", "num_classes": 10}

register_model(
    "vib",
    make_vib,
    defaults=DEFAULTS,
    doc="VIB: MLP encoder to a diagonal Gaussian q(z|x), linear softmax decoder q(y|z)",
)
