"""Latent-variable-model objectives: ELBO, IWAE, Renyi, VR-max, VOD, weighted ELBO, RWS.

Each works with any model of :mod:`vbounds.lab.models.vae` (the per-example interface
there: ``variational_params``, ``make_q``, ``prior``, ``log_likelihood``, ``log_joint``,
``posterior_mean``). Training logs ``objective`` (the value of what is trained), ``elbo``,
and ``bound`` when the objective is a lower bound on ``log p(x)``. The test evaluation
adds the importance-sampled ``log_likelihood`` with ``eval_num_samples`` samples (5,000 in
the literature) and the number of active latent units.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

import vbounds as vb
from vbounds.lab.objectives.base import Objective, mean_summary, per_example
from vbounds.lab.registry import register_objective
from vbounds.lab.report import plot_vae_report

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

#: Burda et al.'s threshold on ``Cov_x(E_q[z])`` for an active latent unit.
ACTIVE_UNIT_THRESHOLD = 1e-2

# Test-set evaluation, declared by every objective of this family.
_EVAL = {"eval_num_samples": 5000, "eval_chunk_size": None}


def _check(config) -> None:
    name = config.name
    if config.estimator not in ESTIMATORS[name]:
        raise ValueError(
            f"objective.estimator {config.estimator!r} does not apply to {name!r}; "
            f"valid: {', '.join(ESTIMATORS[name])}"
        )
    for key in ("num_samples", "eval_num_samples"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")
    chunk = config.eval_chunk_size
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ValueError(
            f"objective.eval_chunk_size must be a positive int or None (the backend's measured "
            f"default), got {chunk!r}"
        )
    if config.estimator == "vimco" and config.num_samples < 2:
        raise ValueError("objective.estimator 'vimco' needs objective.num_samples >= 2")
    if config.get("kl", "analytic") not in ("analytic", "mc"):
        raise ValueError(f"objective.kl must be 'analytic' or 'mc', got {config.kl!r}")
    alpha = config.get("alpha", 0.0)
    if not (isinstance(alpha, int | float) and math.isfinite(alpha)):
        raise ValueError(f"objective.alpha must be a finite float for {name!r}, got {alpha!r}")


def _expected_log_likelihood_and_kl(model, example, key, config):
    """``E_q log p(x|z)`` over K reparameterised draws and ``KL(q || p)`` (closed form
    where distrax has one, else Monte Carlo with K draws)."""
    key_z, key_kl = jax.random.split(key)
    q = model.make_q(model.variational_params(example))
    z = q.sample(seed=key_z, sample_shape=(config.num_samples,))
    log_likelihood = jnp.mean(model.log_likelihood(example, z))
    if config.kl == "analytic":
        kl = vb.kl_divergence(q, model.prior(example), key=key_kl, num_samples=config.num_samples)
    else:
        kl = jnp.mean(q.log_prob(z) - model.prior(example).log_prob(z))
    return log_likelihood, kl


def _is_weighted_bound(config) -> bool:
    """Whether the weighted ELBO is the plain ELBO (a bound) at these settings."""
    if config.name != "weighted_elbo":
        return True
    return config.beta == 1.0 and config.likelihood_weight == 1.0 and config.capacity is None


def _weighted_elbo(model, example, key, config):
    log_likelihood, kl = _expected_log_likelihood_and_kl(model, example, key, config)
    value = vb.weighted_elbo(
        log_likelihood,
        kl,
        beta=config.get("beta", 1.0),
        likelihood_weight=config.get("likelihood_weight", 1.0),
        capacity=config.get("capacity"),
    )
    stop = jax.lax.stop_gradient
    metrics = {
        "objective": stop(value),
        "elbo": stop(log_likelihood - kl),
        "kl": stop(kl),
        "log_likelihood": stop(log_likelihood),
    }
    if _is_weighted_bound(config):
        metrics["bound"] = stop(value)
    return value, metrics


_LOWER_BOUNDS = ("elbo", "iwae")


def _sampled_bound(model, example, key, config, bound):
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
    metrics = {"objective": est.value, "elbo": vb.elbo(est.log_weights)}
    # Renyi's bound is a lower bound on log p(x) for alpha >= 0 only; VR-max is none.
    if bound in _LOWER_BOUNDS or (bound == "renyi" and config.alpha >= 0):
        metrics["bound"] = est.value
    return est.surrogate, metrics


def _elbo(model, example, key, config):
    if config.kl == "analytic" and config.estimator == "reparam":
        return _weighted_elbo(model, example, key, config)
    return _sampled_bound(model, example, key, config, "elbo")


def _vod(model, example, key, config):
    q = model.make_q(model.variational_params(example))
    z = q.sample(seed=key, sample_shape=(config.num_samples,))
    log_likelihood = model.log_likelihood(example, z)
    log_prior = model.prior(example).log_prob(z)
    log_q = q.log_prob(z)
    value = vb.vod(log_likelihood, log_prior, log_q, alpha=config.alpha, axis=0)
    log_w = jax.lax.stop_gradient(log_likelihood + log_prior - log_q)
    stop = jax.lax.stop_gradient(value)
    metrics = {"objective": stop, "elbo": vb.elbo(log_w)}
    if config.alpha >= 0:
        metrics["bound"] = stop
    return value, metrics


def _rws(model, example, key, config):
    est = vb.rws_wake_phi(
        key,
        lambda z: model.log_joint(example, z),
        model.make_q,
        model.variational_params(example),
        num_samples=config.num_samples,
        estimator=config.estimator,
    )
    return est.surrogate, {
        "objective": est.value,
        "bound": est.value,
        "elbo": vb.elbo(est.log_weights),
    }


_PER_EXAMPLE = {
    "elbo": _elbo,
    "iwae": lambda m, e, k, c: _sampled_bound(m, e, k, c, "iwae"),
    "renyi": lambda m, e, k, c: _sampled_bound(m, e, k, c, "renyi"),
    "vr_max": lambda m, e, k, c: _sampled_bound(m, e, k, c, "vr_max"),
    "vod": _vod,
    "weighted_elbo": _weighted_elbo,
    "rws": _rws,
}


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


def summarize(outputs) -> dict:
    """Test means of the per-example outputs and the active units."""
    summary = mean_summary(outputs)
    summary["test_active_units"] = active_units(outputs["posterior_mean"])
    return summary


def make(config) -> Objective:
    """The objective of a latent-variable model that ``config.name`` names.

    Args:
      config: the ``objective`` section, completed with its declared defaults.

    Returns:
      An :class:`Objective` whose evaluation adds ``log_likelihood`` (importance
      sampled, ``eval_num_samples``) and the active units.
    """
    _check(config)
    fn = _PER_EXAMPLE[config.name]

    def evaluate(model, batch, key):
        num_samples = config.eval_num_samples
        chunk = min(config.eval_chunk_size or vb.default_chunk_size(), num_samples)

        def one(example, k):
            key_ll, key_bound, key_mean = jax.random.split(k, 3)
            log_likelihood = vb.log_likelihood(
                key_ll,
                lambda z: model.log_joint(example, z),
                model.make_q,
                model.variational_params(example),
                num_samples=num_samples,
                chunk_size=chunk,
            )
            _, metrics = fn(model, example, key_bound, config)
            outputs = {"log_likelihood": log_likelihood, **metrics}
            outputs["posterior_mean"] = model.posterior_mean(example, key_mean)
            return jax.lax.stop_gradient(outputs)

        keys = jax.random.split(key, jax.tree.leaves(batch)[0].shape[0])
        return jax.vmap(one)(batch, keys)

    return Objective(
        loss=per_example(lambda m, e, k: fn(m, e, k, config)),
        evaluate=evaluate,
        summarize=summarize,
        report=plot_vae_report,
    )


_COMMON = {"estimator": "reparam", "num_samples": 5, **_EVAL}
_DEFAULTS = {
    "elbo": {**_COMMON, "num_samples": 1, "kl": "analytic"},
    "iwae": dict(_COMMON),
    "renyi": {**_COMMON, "alpha": 0.5},
    "vr_max": dict(_COMMON),
    "vod": {**_COMMON, "alpha": 0.0},
    "weighted_elbo": {
        **_COMMON,
        "num_samples": 1,
        "kl": "analytic",
        "beta": 1.0,
        "likelihood_weight": 1.0,
        "capacity": None,
    },
    "rws": {**_COMMON, "estimator": "is"},
}
_DOCS = {
    "elbo": "the ELBO (analytic KL with reparam; else sampled)",
    "iwae": "the K-sample importance-weighted bound (Burda et al. 2016)",
    "renyi": "the Renyi / VR bound of order alpha (Li & Turner 2016)",
    "vr_max": "VR-max, the largest log-weight (not a bound)",
    "vod": "the self-normalised importance-weighted Renyi bound (Lievin et al. 2023)",
    "weighted_elbo": "beta-VAE / data-emphasised / capacity ELBO (a bound only at beta=1)",
    "rws": "reweighted wake-sleep (Bornschein & Bengio 2015; DReG form of Tucker et al.)",
}
for _name, _defaults in _DEFAULTS.items():
    register_objective(_name, make, defaults=_defaults, doc=_DOCS[_name])
