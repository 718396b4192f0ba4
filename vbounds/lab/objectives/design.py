"""Adaptive experimental design by sequential PCE (``location_spce``).

The location-finding model of Foster et al. (2021): a source at ``theta ~ N(0, I_2)`` in
the plane, an experiment at design ``xi`` measures the log-intensity

    y = log(base + 1 / (max_signal + |theta - xi|^2)) + noise_scale * eps,

``eps ~ N(0, 1)``. A policy (:mod:`vbounds.lab.models.design`) chooses ``T =
num_experiments`` designs in turn, each from the outcomes so far. With ``L`` contrastive
prior draws, the log-likelihood of the whole history under each draw feeds
``vb.eig.pce`` (the sequential PCE lower bound on the EIG of the policy, Foster et al.
2021); the loss is its negation, differentiated through the reparameterised outcomes.

The test evaluation (``eval_num_contrasts`` draws) reports, after each experiment
``t = 1..T``, the sPCE lower bound and the sNMC upper bound (``vb.eig.nmc``) on the
information gathered by the policy so far (``test_spce_t{t}``, ``test_snmc_t{t}``) and the
same for random designs ``xi ~ N(0, I)`` (``test_random_spce_t{t}``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.objectives.base import Objective
from vbounds.lab.registry import register_objective

#: Declared hyperparameters of ``location_spce``.
DEFAULTS = {
    "num_experiments": 10,
    "num_contrasts": 127,
    "eval_num_contrasts": 4095,
    "noise_scale": 0.5,
    "base": 0.1,
    "max_signal": 1e-4,
}


def _check(config) -> None:
    for key in ("num_experiments", "num_contrasts", "eval_num_contrasts"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")
    for key in ("noise_scale", "base", "max_signal"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"objective.{key} must be a positive number, got {value!r}")


def mean_outcome(theta: jax.Array, design: jax.Array, *, base: float, max_signal: float):
    """The noiseless log-intensity: ``theta [..., D], design [..., D] -> [...]``."""
    distance = jnp.sum((theta - design) ** 2, axis=-1)
    return jnp.log(base + 1.0 / (max_signal + distance))


def rollout(model, theta, key, config, *, random_designs: bool = False):
    """Runs ``T`` experiments on sources ``theta [N, D]``.

    Returns:
      ``(designs [N, T, D], outcomes [N, T])``; the designs come from the policy, or from
      ``N(0, I)`` independently of the history when ``random_designs``.
    """
    noise_key, design_key = jax.random.split(key)
    noise = jax.random.normal(noise_key, (config.num_experiments,) + theta.shape[:1])
    random = jax.random.normal(design_key, (config.num_experiments,) + theta.shape)
    code = jnp.zeros((theta.shape[0], model.encoder_out.out_features), theta.dtype)
    designs, outcomes = [], []
    for t in range(config.num_experiments):
        design = random[t] if random_designs else model(code, t)
        signal = mean_outcome(theta, design, base=config.base, max_signal=config.max_signal)
        outcome = signal + config.noise_scale * noise[t]
        code = code + model.encode(design, outcome)
        designs.append(design)
        outcomes.append(outcome)
    return jnp.stack(designs, axis=1), jnp.stack(outcomes, axis=1)


def history_log_lik(designs, outcomes, thetas, config):
    """Cumulative ``log p(y_1..t | theta_l, xi_1..t)``: ``[N, L + 1, T]`` for ``thetas
    [N, L + 1, D]`` (column 0 the source that generated the outcomes)."""
    signal = mean_outcome(
        thetas[:, :, None], designs[:, None], base=config.base, max_signal=config.max_signal
    )
    per_step = jax.scipy.stats.norm.logpdf(outcomes[:, None], signal, config.noise_scale)
    return jnp.cumsum(per_step, axis=-1)


def _contrasts(theta, key, num):
    draws = jax.random.normal(key, (num,) + theta.shape)
    return jnp.concatenate([theta[:, None], jnp.moveaxis(draws, 0, 1)], axis=1)


def _per_example(bound, log_lik):
    """Per-example terms of ``vb.eig.pce`` / ``vb.eig.nmc``: ``[N, L + 1, T] -> [N, T]``."""
    rows = jnp.moveaxis(log_lik, -1, 0)  # [T, N, L + 1]
    return jax.vmap(jax.vmap(lambda row: bound(row[None])))(rows).T


def summarize(outputs: Mapping) -> dict:
    """``test_<name>_t{t}`` (the mean over the test sources) for every output and step,
    and ``test_<name>`` for the last step."""
    summary = {}
    for name, values in outputs.items():
        means = np.mean(np.asarray(values, np.float64), axis=0)
        for t, value in enumerate(means, start=1):
            summary[f"test_{name}_t{t}"] = float(value)
        summary[f"test_{name}"] = float(means[-1])
    return summary


def make(config) -> Objective:
    """The ``location_spce`` objective of an ``objective`` section (see the module)."""
    _check(config)

    def loss(model, batch, key):
        theta = batch["x"]
        rollout_key, contrast_key = jax.random.split(key)
        designs, outcomes = rollout(model, theta, rollout_key, config)
        thetas = _contrasts(theta, contrast_key, config.num_contrasts)
        bound = vb.eig.pce(history_log_lik(designs, outcomes, thetas, config)[..., -1])
        return -bound, {"spce": jax.lax.stop_gradient(bound)}

    def evaluate(model, batch, key):
        theta = batch["x"]
        outputs = {}
        keys = jax.random.split(key, 4)
        for prefix, random, rollout_key, contrast_key in (
            ("", False, keys[0], keys[1]),
            ("random_", True, keys[2], keys[3]),
        ):
            designs, outcomes = rollout(model, theta, rollout_key, config, random_designs=random)
            thetas = _contrasts(theta, contrast_key, config.eval_num_contrasts)
            log_lik = history_log_lik(designs, outcomes, thetas, config)
            outputs[f"{prefix}spce"] = _per_example(vb.eig.pce, log_lik)
            outputs[f"{prefix}snmc"] = _per_example(vb.eig.nmc, log_lik)
        return jax.lax.stop_gradient(outputs)

    return Objective(loss=loss, evaluate=evaluate, summarize=summarize, sweep_report=sweep_report)


def eig_per_step(jobs: Sequence[Mapping]) -> dict:
    """Mean and standard error over the jobs (seeds) of every ``test_*_t{t}`` curve.

    Returns:
      ``{name: (steps, mean [T], se [T])}`` for ``spce``, ``snmc``, ``random_spce`` and
      ``random_snmc`` (the names present in the jobs).
    """
    curves = {}
    for name in ("spce", "snmc", "random_spce", "random_snmc"):
        steps = sorted(
            int(k.rsplit("_t", 1)[1])
            for k in (jobs[0] if jobs else {})
            if k.startswith(f"test_{name}_t")
        )
        if not steps:
            continue
        values = np.array([[float(j[f"test_{name}_t{t}"]) for t in steps] for j in jobs])
        se = values.std(axis=0, ddof=1) / math.sqrt(len(jobs)) if len(jobs) > 1 else 0 * values[0]
        curves[name] = (steps, values.mean(axis=0), se)
    return curves


def sweep_report(jobs: Sequence[Mapping], path: str) -> None:
    """The sweep's ``report.png``: the bounds on the EIG after each experiment, policy
    against random designs, mean +- standard error over the jobs (seeds)."""
    jobs = [j for j in jobs if any(k.startswith("test_spce_t") for k in j)]
    curves = eig_per_step(jobs)
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    styles = {
        "spce": ("C0", "-", "policy: sPCE (lower)"),
        "snmc": ("C0", ":", "policy: sNMC (upper)"),
        "random_spce": ("C1", "-", "random designs: sPCE (lower)"),
        "random_snmc": ("C1", ":", "random designs: sNMC (upper)"),
    }
    for name, (steps, mean, se) in curves.items():
        color, style, label = styles[name]
        ax.errorbar(steps, mean, yerr=se, color=color, ls=style, marker="o", ms=3, label=label)
    ax.set_xlabel("experiments t")
    ax.set_ylabel("information gained (nats)")
    ax.set_title(f"location finding, {len(jobs)} seed(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


register_objective(
    "location_spce",
    make,
    defaults=DEFAULTS,
    doc="adaptive design for location finding: -sPCE of a design policy (Foster et al. 2021)",
)
