"""Maximum likelihood of a density on SO(3), ``so3_nll``: the exact negative log-likelihood.

The model's ``log_prob`` is exact (an IGSO(3) mixture), so the loss is the batch mean NLL
in nats with respect to the uniform probability measure on SO(3), and the test evaluation
reports ``test_nll`` beside ``test_true_nll``, the data's own NLL under the generating
mixture: their difference estimates ``KL(p_data || p_model) >= 0``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vbounds.lab.objectives.base import Objective
from vbounds.lab.registry import register_objective


def make(config) -> Objective:
    """The ``so3_nll`` objective (no hyperparameters)."""

    def loss(model, batch, key):
        del key
        nll = -jnp.mean(model.log_prob(batch["x"]))
        return nll, {"nll": jax.lax.stop_gradient(nll)}

    def evaluate(model, batch, key):
        del key
        nll = -model.log_prob(batch["x"])
        outputs = {"nll": nll}
        if "log_p_true" in batch:
            outputs["true_nll"] = -batch["log_p_true"]
            outputs["kl_gap"] = nll + batch["log_p_true"]
        return outputs

    return Objective(loss=loss, evaluate=evaluate)


register_objective("so3_nll", make, defaults={})
