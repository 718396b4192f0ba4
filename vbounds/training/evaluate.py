"""Test-set evaluation: importance-sampled log-likelihood, the training bound, active units."""

import jax
import jax.numpy as jnp
import numpy as np

import vbounds as vb
from vbounds.objectives import OBJECTIVES

#: Burda et al.'s threshold on ``Cov_x(E_q[z])`` for an active latent unit.
ACTIVE_UNIT_THRESHOLD = 1e-2


def evaluate_batch(model, batch, key, *, objective_config, num_samples: int, chunk_size: int):
    """Per-example test quantities for a batch.

    Args:
      model: a model of :mod:`vbounds.models`.
      batch: dict of arrays with a leading batch axis.
      key: PRNG key.
      objective_config: the ``objective`` section (for the training bound).
      num_samples: importance samples for ``log p(x)`` (5,000 in the literature).
      chunk_size: samples per chunk of the streaming estimate.

    Returns:
      ``(metrics, means)``: per-example ``log_likelihood``, ``bound`` and ``elbo``
      (``[B]`` each) and the posterior means (a pytree of ``[B, d]``).
    """
    per_example_objective = OBJECTIVES[objective_config.name]

    def one(example, k):
        key_ll, key_bound, key_mean = jax.random.split(k, 3)
        log_likelihood = vb.log_likelihood(
            key_ll,
            lambda z: model.log_joint(example, z),
            model.make_q,
            model.variational_params(example),
            num_samples=num_samples,
            chunk_size=min(chunk_size, num_samples),
        )
        _, metrics = per_example_objective(model, example, key_bound, objective_config)
        metrics = {
            "log_likelihood": log_likelihood,
            "bound": metrics["bound"],
            "elbo": metrics["elbo"],
        }
        return jax.lax.stop_gradient(metrics), model.posterior_mean(example, key_mean)

    keys = jax.random.split(key, jax.tree.leaves(batch)[0].shape[0])
    return jax.vmap(one)(batch, keys)


def active_units(means) -> int:
    """Number of latent units with ``Var_x(E_q[z | x]) > 1e-2`` (Burda et al. 2016).

    Args:
      means: pytree of ``[N, d]`` posterior means over a data set.

    Returns:
      The count over all latent layers.
    """
    return int(
        sum(
            np.sum(np.var(np.asarray(m), axis=0) > ACTIVE_UNIT_THRESHOLD)
            for m in jax.tree.leaves(means)
        )
    )


def summarize(metrics: dict, means) -> dict:
    """Averages per-example test metrics into the ``test_*`` numbers of the log."""
    summary = {f"test_{k}": float(jnp.mean(v)) for k, v in metrics.items()}
    summary["test_active_units"] = active_units(means)
    return summary
