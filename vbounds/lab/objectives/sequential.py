"""Sequential bounds for latent state-space models: ``sequential``.

With a model that gives ``(prior, proposal, emission)`` callables for one sequence
(:class:`~vbounds.lab.models.ssm.LatentSSM`), the loss is minus the batch mean of one of

- ``bound="elbo"``: the per-step ELBO (:func:`vbounds.sequential.elbo`, analytic
  Gaussian KLs), averaged over ``num_particles`` draws;
- ``bound="iwae"``: :func:`vbounds.sequential.fivo` without resampling (IWAE over whole
  sequences) with ``num_particles`` particles;
- ``bound="fivo"``: :func:`vbounds.sequential.fivo` resampling (``resampling``) when the
  ESS falls below ``ess_threshold * num_particles``; its gradient drops the resampling
  score terms (the biased gradient of the FIVO papers).

All values are in nats per sequence. The test evaluation reports, per sequence and then
averaged: ``test_log_likelihood``, the log of a particle filter's estimate of ``p(x)``
with the learned proposal and ``eval_num_particles`` particles (systematic resampling
at ESS < K/2: an unbiased estimate of ``p(x)``, so a stochastic lower bound on
``log p(x)`` that tightens with the particle count), and ``test_elbo``, ``test_iwae``,
``test_fivo``: the three bounds with ``num_particles``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import vbounds as vb
from vbounds.lab.objectives.base import Objective
from vbounds.lab.registry import register_objective

BOUNDS = ("elbo", "iwae", "fivo")

#: Declared hyperparameters of ``sequential``.
DEFAULTS = {
    "bound": "fivo",
    "num_particles": 4,
    "resampling": "systematic",
    "ess_threshold": 0.5,
    "eval_num_particles": 256,
}


def _check(config) -> None:
    if config.bound not in BOUNDS:
        raise ValueError(f"objective.bound must be one of {BOUNDS}, got {config.bound!r}")
    if config.resampling not in vb.sequential.RESAMPLING:
        raise ValueError(
            f"objective.resampling must be one of {vb.sequential.RESAMPLING}, got "
            f"{config.resampling!r}"
        )
    for key in ("num_particles", "eval_num_particles"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")
    if not 0.0 <= float(config.ess_threshold) <= 1.0:
        raise ValueError(f"objective.ess_threshold must be in [0, 1], got {config.ess_threshold!r}")


def sequence_bound(
    model, x, key, *, bound: str, num_particles: int, resampling: str, ess_threshold: float
) -> jax.Array:
    """One sequence's bound (nats): ``bound`` in :data:`BOUNDS` with ``num_particles``."""
    prior, proposal, emission = model.callables(x)
    initial_state = jnp.zeros((model.z_dim,), x.dtype)
    if bound == "elbo":
        draws = jax.vmap(
            lambda k: (
                vb.sequential.elbo(
                    k,
                    x,
                    prior=prior,
                    posterior=proposal,
                    emission=emission,
                    initial_state=initial_state,
                ).value
            )
        )(jax.random.split(key, num_particles))
        return jnp.mean(draws)
    return vb.sequential.fivo(
        key,
        x,
        prior=prior,
        proposal=proposal,
        emission=emission,
        initial_state=initial_state,
        num_particles=num_particles,
        resampling=resampling,
        ess_threshold=0.0 if bound == "iwae" else ess_threshold,
    ).value


def _batched(model, batch, key, **kwargs) -> jax.Array:
    keys = jax.random.split(key, batch["x"].shape[0])
    return jax.vmap(lambda x, k: sequence_bound(model, x, k, **kwargs))(batch["x"], keys)


def make(config) -> Objective:
    """The ``sequential`` objective of an ``objective`` section (see the module)."""
    _check(config)
    common = dict(resampling=config.resampling, ess_threshold=float(config.ess_threshold))

    def loss(model, batch, key):
        values = _batched(
            model, batch, key, bound=config.bound, num_particles=config.num_particles, **common
        )
        value = jnp.mean(values)
        return -value, {"bound": jax.lax.stop_gradient(value)}

    def evaluate(model, batch, key):
        keys = jax.random.split(key, len(BOUNDS) + 1)
        outputs = {
            name: _batched(
                model, batch, k, bound=name, num_particles=config.num_particles, **common
            )
            for name, k in zip(BOUNDS, keys[1:], strict=True)
        }
        outputs["log_likelihood"] = _batched(
            model,
            batch,
            keys[0],
            bound="fivo",
            num_particles=config.eval_num_particles,
            resampling="systematic",
            ess_threshold=0.5,
        )
        return jax.lax.stop_gradient(outputs)

    return Objective(loss=loss, evaluate=evaluate)


register_objective(
    "sequential",
    make,
    defaults=DEFAULTS,
    doc="per-step ELBO, sequence IWAE or FIVO of a latent state-space model (nats/sequence)",
)
