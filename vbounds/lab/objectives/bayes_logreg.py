"""Bayesian logistic regression as one objective, ``bayes_logreg``: SVGD or a mean-field ELBO.

Posterior ``p(w | D) ∝ N(w | 0, prior_variance I) prod_n p(y_n | x_n, w)``; a minibatch of
``b`` stands for ``num_data`` points (``0``: the batch is the whole training set) by
scaling its log-likelihood by ``num_data / b``.

- ``method="svgd"`` (model ``logreg_particles``): the particles move along the Stein
  direction ``phi`` of ``vb.svgd.stein_direction`` (RBF kernel; ``bandwidth`` 0 is the
  median heuristic). The loop minimises a loss with an optimiser, so the loss is a
  surrogate whose gradient with respect to the particles is exactly ``-phi``:
  ``-sum_i stop(phi_i) . w_i`` (its value replaced by the mean ``-log p(w_i, D) / num_data``
  for logging). With ``optimizer.name="sgd"`` a step is the SVGD update
  ``w += learning_rate * phi``, identical to ``optax.chain(vb.svgd.transform(),
  optax.sgd(learning_rate))``; with Adam it is SVGD with Adam's per-coordinate step sizes
  (the paper used AdaGrad).
- ``method="elbo"`` (model ``logreg_mean_field``): minus the reparameterised ELBO per
  training point with ``num_samples`` draws.

The test evaluation averages the predictive probability over the particles (or
``eval_num_samples`` draws of ``q``) and reports ``test_log_lik`` (mean
``log p(y | x, D)``), ``test_accuracy`` and ``test_ece``, the expected calibration error
of the predicted class's probability over 10 equal-width confidence bins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

import vbounds as vb
from vbounds.lab.models.bayes_logreg import log_likelihood
from vbounds.lab.objectives.base import Objective, expected_calibration_error
from vbounds.lab.registry import register_objective

#: Declared hyperparameters of ``bayes_logreg``.
DEFAULTS = {
    "method": "svgd",
    "prior_variance": 1.0,
    "num_samples": 8,
    "eval_num_samples": 200,
    "num_data": 0,
    "bandwidth": 0.0,
}
METHODS = ("svgd", "elbo")
NUM_BINS = 10


def _check(config) -> None:
    if config.method not in METHODS:
        raise ValueError(f"objective.method must be one of {METHODS}, got {config.method!r}")
    for key, low in (("num_samples", 1), ("eval_num_samples", 1), ("num_data", 0)):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"objective.{key} must be an int >= {low}, got {value!r}")
    for key in ("prior_variance", "bandwidth"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"objective.{key} must be a number >= 0, got {value!r}")
    if not config.prior_variance > 0:
        raise ValueError(f"objective.prior_variance must be positive, got {config.prior_variance}")


def summarize(outputs: Mapping) -> dict:
    """Mean test log-likelihood and accuracy, and the expected calibration error."""
    return {
        "test_log_lik": float(np.mean(np.asarray(outputs["log_lik"], np.float64))),
        "test_accuracy": float(np.mean(np.asarray(outputs["correct"], np.float64))),
        "test_ece": expected_calibration_error(outputs["confidence"], outputs["correct"], NUM_BINS),
    }


def make(config) -> Objective:
    """The ``bayes_logreg`` objective of an ``objective`` section (module docstring)."""
    _check(config)
    prior_scale = math.sqrt(config.prior_variance)
    bandwidth = config.bandwidth or None
    stop = jax.lax.stop_gradient

    def log_joint(weights, x, y, num_data):
        """``[S]`` ``log p(w_s) + (num_data / b) sum_n log p(y_n | x_n, w_s)``."""
        scale = num_data / x.shape[0]
        prior = jnp.sum(jax.scipy.stats.norm.logpdf(weights, scale=prior_scale), axis=-1)
        return prior + scale * jnp.sum(log_likelihood(weights, x, y), axis=-1)

    def loss(model, batch, key):
        x, y = batch["x"], batch["y"]
        num_data = config.num_data or x.shape[0]
        if config.method == "svgd":
            particles = model.weights[...]
            joint = lambda w: log_joint(w[None], x, y, num_data)[0]  # noqa: E731
            grad_log_p = jax.vmap(jax.grad(joint))(stop(particles))
            phi = vb.svgd.stein_direction(stop(particles), grad_log_p, bandwidth=bandwidth)
            surrogate = -jnp.sum(stop(phi) * particles)
            neg_log_p = -jnp.mean(log_joint(stop(particles), x, y, num_data)) / num_data
            value = stop(neg_log_p) + surrogate - stop(surrogate)
            return value, {"neg_log_joint": neg_log_p, "stein_norm": jnp.sqrt(jnp.mean(phi**2))}
        q = model.posterior()
        weights = q.sample(seed=key, sample_shape=(config.num_samples,))
        elbo = jnp.mean(log_joint(weights, x, y, num_data) - q.log_prob(weights)) / num_data
        return -elbo, {"elbo": elbo}

    def evaluate(model, batch, key):
        x, y = batch["x"], batch["y"]
        weights = model.draws(key, config.eval_num_samples)
        log_lik = jax.nn.logsumexp(log_likelihood(weights, x, y), axis=0) - math.log(
            weights.shape[0]
        )
        logits = weights[:, :1] + weights[:, 1:] @ x.T
        p1 = jnp.mean(jax.nn.sigmoid(logits), axis=0)
        predicted = (p1 > 0.5).astype(y.dtype)
        return {
            "log_lik": log_lik,
            "correct": (predicted == y).astype(jnp.float32),
            "confidence": jnp.maximum(p1, 1.0 - p1),
        }

    return Objective(loss=loss, evaluate=evaluate, summarize=summarize)


register_objective(
    "bayes_logreg",
    make,
    defaults=DEFAULTS,
    doc="Bayesian logistic regression: SVGD particles (surrogate loss) or a mean-field ELBO",
)
