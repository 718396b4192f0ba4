"""The registry that joins a model to a bound: objective name -> batched loss function.

An objective is written for one example (``per_example(model, example, key, config)``
returning the surrogate whose gradient is the estimator's, and named per-example
metrics, among them ``"bound"``), then :func:`get_objective` vmaps it over the batch
and turns it into ``loss(model, batch, key) -> (loss, metrics)`` with ``loss`` the
negated batch mean of the surrogate. ``model`` is any model of :mod:`vbounds.models`
(see the per-example interface there); ``batch`` a dict of arrays with a leading batch
axis (``"x"`` and optionally ``"y"``).
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

import vbounds as vb

_SAMPLED = ("reparam", "stl", "dreg", "score", "vimco")

#: Objective name -> the gradient estimators it accepts (the first is the default).
ESTIMATORS = {
    "elbo": ("reparam", "stl", "dreg", "score"),
    "iwae": _SAMPLED,
    "renyi": _SAMPLED,
    "vr_max": ("reparam", "stl", "score", "vimco"),
    "vod": ("reparam",),
    "weighted_elbo": ("reparam",),
    "rws": ("is", "dreg"),
}


def _expected_log_likelihood_and_kl(model, example, key, config):
    """``E_q log p(x|z)`` over K reparameterised draws and ``KL(q || p)`` (closed form
    where distrax has one, else Monte Carlo with K draws)."""
    key_z, key_kl = jax.random.split(key)
    q = model.make_q(model.variational_params(example))
    z = q.sample(seed=key_z, sample_shape=(config.num_samples,))
    log_likelihood = jnp.mean(model.log_likelihood(example, z))
    if config.get("kl", "analytic") == "analytic":
        kl = vb.kl_divergence(q, model.prior(example), key=key_kl, num_samples=config.num_samples)
    else:
        kl = jnp.mean(q.log_prob(z) - model.prior(example).log_prob(z))
    return log_likelihood, kl


def _weighted_elbo(model, example, key, config):
    log_likelihood, kl = _expected_log_likelihood_and_kl(model, example, key, config)
    value = vb.weighted_elbo(
        log_likelihood,
        kl,
        beta=config.get("beta", 1.0),
        likelihood_weight=config.get("likelihood_weight", 1.0),
        capacity=config.get("capacity"),
    )
    metrics = {
        "bound": jax.lax.stop_gradient(value),
        "elbo": jax.lax.stop_gradient(log_likelihood - kl),
        "kl": jax.lax.stop_gradient(kl),
        "log_likelihood": jax.lax.stop_gradient(log_likelihood),
    }
    return value, metrics


def _sampled_bound(bound: str) -> Callable:
    def per_example(model, example, key, config):
        est = vb.estimate(
            key,
            lambda z: model.log_joint(example, z),
            model.make_q,
            model.variational_params(example),
            num_samples=config.num_samples,
            bound=bound,
            estimator=config.estimator,
            alpha=config.get("alpha", 0.0),
        )
        return est.surrogate, {"bound": est.value, "elbo": vb.elbo(est.log_weights)}

    return per_example


def _elbo(model, example, key, config):
    if config.get("kl", "analytic") == "analytic" and config.estimator == "reparam":
        return _weighted_elbo(model, example, key, config)
    return _sampled_bound("elbo")(model, example, key, config)


def _vod(model, example, key, config):
    q = model.make_q(model.variational_params(example))
    z = q.sample(seed=key, sample_shape=(config.num_samples,))
    log_likelihood = model.log_likelihood(example, z)
    log_prior = model.prior(example).log_prob(z)
    log_q = q.log_prob(z)
    value = vb.vod(log_likelihood, log_prior, log_q, alpha=config.get("alpha", 0.0), axis=0)
    log_w = jax.lax.stop_gradient(log_likelihood + log_prior - log_q)
    return value, {"bound": jax.lax.stop_gradient(value), "elbo": vb.elbo(log_w)}


def _rws(model, example, key, config):
    est = vb.rws_wake_phi(
        key,
        lambda z: model.log_joint(example, z),
        model.make_q,
        model.variational_params(example),
        num_samples=config.num_samples,
        estimator=config.estimator,
    )
    return est.surrogate, {"bound": est.value, "elbo": vb.elbo(est.log_weights)}


#: Objective name -> per-example function ``(model, example, key, config) ->
#: (surrogate, metrics)``.
OBJECTIVES = {
    "elbo": _elbo,
    "iwae": _sampled_bound("iwae"),
    "renyi": _sampled_bound("renyi"),
    "vr_max": _sampled_bound("vr_max"),
    "vod": _vod,
    "weighted_elbo": _weighted_elbo,
    "rws": _rws,
}


def check_objective_config(config) -> None:
    """Raises ``ValueError`` for an objective config that cannot work, before any tracing.

    Args:
      config: the ``objective`` section: ``name``, ``estimator``, ``num_samples`` and
        the objective's hyperparameters (``alpha``, ``kl``, ``beta``, ...).
    """
    name = config.get("name")
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective.name {name!r}; valid names: {', '.join(OBJECTIVES)}")
    estimator = config.get("estimator")
    if estimator not in ESTIMATORS[name]:
        raise ValueError(
            f"objective.estimator {estimator!r} does not apply to {name!r}; "
            f"valid: {', '.join(ESTIMATORS[name])}"
        )
    num_samples = config.get("num_samples")
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"objective.num_samples must be a positive int, got {num_samples!r}")
    if estimator == "vimco" and num_samples < 2:
        raise ValueError("objective.estimator 'vimco' needs objective.num_samples >= 2")
    if config.get("kl", "analytic") not in ("analytic", "mc"):
        raise ValueError(f"objective.kl must be 'analytic' or 'mc', got {config.get('kl')!r}")
    alpha = config.get("alpha", 0.0)
    if name in ("renyi", "vod") and not (isinstance(alpha, int | float) and math.isfinite(alpha)):
        raise ValueError(f"objective.alpha must be a finite float for {name!r}, got {alpha!r}")


def get_objective(config) -> Callable:
    """Returns the batched loss of the objective a config names.

    Args:
      config: the ``objective`` section (validated by :func:`check_objective_config`).

    Returns:
      ``loss(model, batch, key) -> (loss, metrics)``: ``loss`` is the negated batch
      mean of the per-example surrogates, ``metrics`` the batch means of the named
      per-example metrics (``"bound"`` among them).
    """
    check_objective_config(config)
    per_example = OBJECTIVES[config.name]

    def loss(model, batch, key):
        keys = jax.random.split(key, jax.tree.leaves(batch)[0].shape[0])
        surrogate, metrics = jax.vmap(lambda ex, k: per_example(model, ex, k, config))(batch, keys)
        return -jnp.mean(surrogate), jax.tree.map(jnp.mean, metrics)

    return loss
