"""Weight-space variational inference for a classifier, and its point estimate (``bnn``).

With the model :class:`~vbounds.lab.models.bnn.BNN` and ``num_data`` training examples, the
loss is the negated per-datum ELBO

    -ELBO / N = -mean_b log p(y_b | x_b, w) + (log q(w) - log p(w)) / N,   w ~ q,

for ``estimator`` ``"weights"`` (Bayes by backprop: ``vb.weight_space.elbo``, one weight
draw shared by the batch and the Monte Carlo KL), ``"local_reparam"`` or ``"flipout"`` (the
likelihood term through ``vb.weight_space.local_reparameterization`` / ``flipout``, the KL
on a separate weight draw). ``"map"`` trains the same network's ``loc`` alone as a point
estimate, ``-mean_b log p(y_b | x_b, loc) - log p(loc) / N`` (MAP under the same prior).
The prior is Blundell et al.'s scale mixture (``prior="scale_mixture"``) or
``N(0, prior_scale1^2)`` (``prior="gaussian"``).

The test evaluation averages the predictive probabilities over ``eval_num_samples`` weight
draws (at ``loc`` for ``"map"``) and reports ``test_nll`` (``-log`` of the averaged
probability of the label), ``test_accuracy`` and ``test_ece``, the expected calibration
error over ``num_bins`` equal-width confidence bins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

import vbounds as vb
from vbounds.lab.models.bnn import SAMPLERS
from vbounds.lab.objectives.base import Objective, expected_calibration_error
from vbounds.lab.registry import register_objective

ESTIMATORS = (*SAMPLERS, "map")
PRIORS = ("scale_mixture", "gaussian")

#: Declared hyperparameters of ``bnn``: Blundell et al.'s prior, the digits' training size.
DEFAULTS = {
    "estimator": "flipout",
    "num_data": 1347,
    "prior": "scale_mixture",
    "mixture_weight": 0.5,
    "prior_scale1": 1.0,
    "prior_scale2": math.exp(-6.0),
    "eval_num_samples": 32,
    "num_bins": 15,
}


def _check(config) -> None:
    if config.estimator not in ESTIMATORS:
        raise ValueError(
            f"objective.estimator must be one of {ESTIMATORS}, got {config.estimator!r}"
        )
    if config.prior not in PRIORS:
        raise ValueError(f"objective.prior must be one of {PRIORS}, got {config.prior!r}")
    for key in ("num_data", "eval_num_samples", "num_bins"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")
    if not 0 <= config.mixture_weight <= 1:
        raise ValueError(
            f"objective.mixture_weight must be in [0, 1], got {config.mixture_weight!r}"
        )
    for key in ("prior_scale1", "prior_scale2"):
        if not config[key] > 0:
            raise ValueError(f"objective.{key} must be positive, got {config[key]!r}")


def make(config) -> Objective:
    """The ``bnn`` objective of an ``objective`` section (see the module)."""
    _check(config)
    estimator, num_data = config.estimator, int(config.num_data)
    eval_num_samples, num_bins = int(config.eval_num_samples), int(config.num_bins)
    if config.prior == "scale_mixture":
        pi, s1, s2 = (float(config[k]) for k in ("mixture_weight", "prior_scale1", "prior_scale2"))

        def log_prior(w):
            return vb.weight_space.scale_mixture_log_prob(
                w, mixture_weight=pi, scale1=s1, scale2=s2
            )
    else:
        s1 = float(config.prior_scale1)

        def log_prior(w):
            return -0.5 * jnp.square(w / s1) - math.log(s1) - 0.5 * math.log(2 * math.pi)

    def log_lik(logits, y):
        return jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=-1)[:, 0]

    def loss(model, batch, key):
        x, y = batch["x"], batch["y"]
        loc, scale = model.posterior()
        if estimator == "map":
            logits = model.forward(loc, x)
            log_p = sum(jnp.sum(log_prior(v)) for v in jax.tree.leaves(loc))
            per_datum = jnp.mean(log_lik(logits, y)) + log_p / num_data
        elif estimator == "weights":
            per_datum = (
                vb.weight_space.elbo(
                    key,
                    lambda w: num_data * jnp.mean(log_lik(model.forward(w, x), y)),
                    loc,
                    scale,
                    log_prior_fn=log_prior,
                )
                / num_data
            )
            logits = model.mean_logits(x)
        else:
            k_lik, k_kl = jax.random.split(key)
            logits = model.logits(x, k_lik, estimator)
            # elbo with a zero likelihood is -KL(q || p), estimated on its own weight draw.
            neg_kl = vb.weight_space.elbo(
                k_kl, lambda w: jnp.zeros(()), loc, scale, log_prior_fn=log_prior
            )
            per_datum = jnp.mean(log_lik(logits, y)) + neg_kl / num_data
        accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
        # The per-datum ELBO, or for "map" the per-datum log posterior (up to a constant).
        return -per_datum, {"objective_per_datum": per_datum, "accuracy": accuracy}

    def evaluate(model, batch, key):
        x, y = batch["x"], batch["y"]
        if estimator == "map":
            log_probs = jax.nn.log_softmax(model.mean_logits(x))
        else:
            keys = jax.random.split(key, eval_num_samples)
            draws = jax.vmap(lambda k: jax.nn.log_softmax(model.logits(x, k, "weights")))(keys)
            log_probs = jax.nn.logsumexp(draws, axis=0) - math.log(eval_num_samples)
        return {
            "nll": -jnp.take_along_axis(log_probs, y[:, None], axis=-1)[:, 0],
            "correct": (jnp.argmax(log_probs, -1) == y).astype(jnp.float32),
            "confidence": jnp.exp(jnp.max(log_probs, -1)),
        }

    def summarize(outputs: Mapping) -> dict:
        correct = np.asarray(outputs["correct"], np.float64)
        return {
            "test_nll": float(np.mean(np.asarray(outputs["nll"], np.float64))),
            "test_accuracy": float(correct.mean()),
            "test_ece": expected_calibration_error(outputs["confidence"], correct, num_bins),
        }

    return Objective(loss=loss, evaluate=evaluate, summarize=summarize)


register_objective(
    "bnn",
    make,
    defaults=DEFAULTS,
    doc="weight-space ELBO of a classifier (Bayes by backprop, local reparam, flipout) or MAP",
)
