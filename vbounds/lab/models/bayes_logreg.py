"""Approximate posteriors over the weights of a Bayesian logistic regression.

``p(y = 1 | x, w) = sigmoid(w_0 + w_{1:} . x)``. Two families, each giving weight draws
``[S, 1 + D]`` for prediction:

- ``logreg_particles``: ``num_particles`` weight vectors as one ``nnx.Param`` (the SVGD
  particles), drawn from ``N(0, init_scale^2)``;
- ``logreg_mean_field``: a diagonal Gaussian ``q(w) = N(mean, diag scale^2)`` with
  ``scale = softplus(raw)``, the mean started at 0 and the scale at ``init_scale``.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vbounds.lab.registry import register_model


def log_likelihood(weights: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """``log p(y_n | x_n, w_s)``, ``[S, N]``, for weights ``[S, 1 + D]`` and labels 0/1."""
    logits = weights[:, :1] + weights[:, 1:] @ x.T
    return -jax.nn.softplus(jnp.where(y[None, :] == 1, -logits, logits))


class Particles(nnx.Module):
    """A set of weight vectors ``[num_particles, 1 + D]``."""

    def __init__(self, dims: int, *, num_particles: int, init_scale: float, rngs: nnx.Rngs):
        shape = (num_particles, 1 + dims)
        self.weights = nnx.Param(init_scale * jax.random.normal(rngs.params(), shape))

    def draws(self, key: jax.Array, num_samples: int) -> jax.Array:
        """The particles themselves (``key`` and ``num_samples`` unused)."""
        del key, num_samples
        return self.weights[...]


class MeanField(nnx.Module):
    """A diagonal Gaussian over the weights ``[1 + D]``."""

    def __init__(self, dims: int, *, init_scale: float):
        self.mean = nnx.Param(jnp.zeros((1 + dims,)))
        raw = float(np.log(np.expm1(init_scale)))  # softplus^-1
        self.raw_scale = nnx.Param(jnp.full((1 + dims,), raw))

    def posterior(self) -> distrax.MultivariateNormalDiag:
        scale = jax.nn.softplus(self.raw_scale[...])
        return distrax.MultivariateNormalDiag(self.mean[...], scale)

    def draws(self, key: jax.Array, num_samples: int) -> jax.Array:
        """``num_samples`` reparameterised draws ``[S, 1 + D]``."""
        return self.posterior().sample(seed=key, sample_shape=(num_samples,))


def _dims(example_batch, name: str) -> int:
    x = example_batch["x"]
    if x.ndim != 2 or "y" not in example_batch:
        raise ValueError(f"model {name!r} needs labelled batches with flat inputs x [N, D]")
    labels = np.asarray(example_batch["y"])
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"model {name!r} needs binary labels 0/1")
    return int(x.shape[1])


def _positive(config, key: str, kind=float):
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int | kind) or not value > 0:
        raise ValueError(f"model.{key} must be positive, got {value!r}")
    return value


def make_particles(config, *, rngs: nnx.Rngs, example_batch: dict) -> Particles:
    """``logreg_particles``: ``num_particles`` particles, initial scale ``init_scale``."""
    num = config.num_particles
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"model.num_particles must be a positive int, got {num!r}")
    return Particles(
        _dims(example_batch, "logreg_particles"),
        num_particles=num,
        init_scale=float(_positive(config, "init_scale")),
        rngs=rngs,
    )


def make_mean_field(config, *, rngs: nnx.Rngs, example_batch: dict) -> MeanField:
    """``logreg_mean_field``: a diagonal Gaussian with initial scale ``init_scale``."""
    del rngs
    return MeanField(
        _dims(example_batch, "logreg_mean_field"),
        init_scale=float(_positive(config, "init_scale")),
    )


register_model(
    "logreg_particles",
    make_particles,
    defaults={"num_particles": 50, "init_scale": 1.0},
    doc="Bayesian logistic regression: a set of weight particles (SVGD)",
)
register_model(
    "logreg_mean_field",
    make_mean_field,
    defaults={"init_scale": 0.1},
    doc="Bayesian logistic regression: a mean-field Gaussian over the weights",
)
