"""Escorted free-energy estimation between a Gaussian and a mixture (``escorted_free_energy``).

State A is ``N(0, base_scale^2 I_2)``, state B an equal mixture of ``N((+-mode_distance,
0), mode_scale^2 I_2)``; with ``u_A(x) = |x|^2 / (2 base_scale^2)`` and ``u_B(x) =
-log sum_k exp(-|x - mu_k|^2 / (2 mode_scale^2)) + log 2``, the exact free-energy
difference is ``dF = -log(Z_B / Z_A) = 2 log(base_scale / mode_scale)`` kT.

The data are standard-normal draws (``design_prior``), scaled into samples of A; samples
of B are drawn from the step's key. A model ``M`` (:mod:`vbounds.lab.models.escort`)
maps A toward B; the loss is ``mean(w_forward) + mean(w_reverse)`` of the mapped works
(``vb.free_energy.mapped_work`` with ``M`` and ``M^{-1}``): the width of the bracket
``vb.free_energy.bounds``, a sum of two KL divergences, zero for an exact map.

The test evaluation splits the ``N`` test samples of each state into ``N / n`` disjoint
sets of ``n`` for each ``n`` in ``eval_sizes`` and reports the root-mean-square error
against the exact ``dF`` of ``jarzynski`` and ``bar`` on the plain works, of targeted FEP
(``jarzynski`` of the mapped works) and of FEAT (``bar`` of the mapped works):
``test_rmse_<estimator>_n<n>``; and the bracket ends ``test_lower``/``test_upper`` with
and without the map.
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

#: Declared hyperparameters of ``escorted_free_energy``.
DEFAULTS = {
    "base_scale": 1.5,
    "mode_distance": 2.0,
    "mode_scale": 0.5,
    "eval_sizes": (16, 64, 256, 1024),
}

ESTIMATORS = ("jarzynski", "bar", "targeted", "feat")

# Compiled once per chunk shape and reused by every evaluation of a run.
_jarzynski_per_set = jax.jit(jax.vmap(vb.free_energy.jarzynski))
_bar_per_set = jax.jit(jax.vmap(vb.free_energy.bar))


def _check(config) -> None:
    for key in ("base_scale", "mode_distance", "mode_scale"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"objective.{key} must be a positive number, got {value!r}")
    sizes = config.eval_sizes
    if not isinstance(sizes, tuple | list) or not sizes:
        raise ValueError(f"objective.eval_sizes must be a non-empty tuple, got {sizes!r}")
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"objective.eval_sizes must hold ints >= 2, got {sizes!r}")


def exact_delta_f(config) -> float:
    """``dF = -log(Z_B / Z_A) = 2 log(base_scale / mode_scale)`` (kT)."""
    return 2.0 * math.log(config.base_scale / config.mode_scale)


def potentials(config):
    """``(u_A, u_B)``: reduced potentials of the two states, ``[N, 2] -> [N]``."""
    means = jnp.array([[config.mode_distance, 0.0], [-config.mode_distance, 0.0]])

    def u_a(x):
        return 0.5 * jnp.sum(x**2, axis=-1) / config.base_scale**2

    def u_b(x):
        sq = jnp.sum((x[:, None] - means) ** 2, axis=-1) / config.mode_scale**2
        return -jax.nn.logsumexp(-0.5 * sq, axis=-1) + math.log(2.0)

    return u_a, u_b


def sample_b(key, n, config, dtype=jnp.float32):
    """``n`` exact draws of state B."""
    mode_key, noise_key = jax.random.split(key)
    sign = jnp.where(jax.random.bernoulli(mode_key, 0.5, (n,)), 1.0, -1.0).astype(dtype)
    centre = jnp.stack([sign * config.mode_distance, jnp.zeros_like(sign)], axis=-1)
    return centre + config.mode_scale * jax.random.normal(noise_key, (n, 2), dtype)


def works(model, x, y, config):
    """Per-sample works ``(w_f, w_r, w_f_map, w_r_map)`` of A-samples ``x`` and
    B-samples ``y``: plain, then through ``M`` (forward) and ``M^{-1}`` (reverse)."""
    u_a, u_b = potentials(config)
    mapped_x, log_det = model.forward(x)
    mapped_y, log_det_inv = model.inverse(y)
    w_f_map = vb.free_energy.mapped_work(u_a(x), u_b(mapped_x), log_det)
    w_r_map = vb.free_energy.mapped_work(u_b(y), u_a(mapped_y), log_det_inv)
    return u_b(x) - u_a(x), u_a(y) - u_b(y), w_f_map, w_r_map


def _rmse(estimates, exact: float) -> float:
    return float(np.sqrt(np.mean((np.asarray(estimates, np.float64) - exact) ** 2)))


def make(config) -> Objective:
    """The ``escorted_free_energy`` objective of an ``objective`` section."""
    _check(config)
    delta_f = exact_delta_f(config)

    def loss(model, batch, key):
        x = config.base_scale * batch["x"]
        y = sample_b(key, x.shape[0], config, x.dtype)
        _, _, w_f, w_r = works(model, x, y, config)
        upper, lower = jnp.mean(w_f), -jnp.mean(w_r)
        stop = jax.lax.stop_gradient
        return upper - lower, {"upper": stop(upper), "lower": stop(lower)}

    def evaluate(model, batch, key):
        x = config.base_scale * batch["x"]
        y = sample_b(key, x.shape[0], config, x.dtype)
        names = ("w_f", "w_r", "w_f_map", "w_r_map")
        return jax.lax.stop_gradient(dict(zip(names, works(model, x, y, config), strict=True)))

    def summarize(outputs: Mapping) -> dict:
        w = {k: jnp.asarray(v) for k, v in outputs.items()}
        total = w["w_f"].shape[0]
        summary = {"test_delta_f": delta_f}
        for suffix, (fwd, rev) in (("", ("w_f", "w_r")), ("_map", ("w_f_map", "w_r_map"))):
            lower, upper = vb.free_energy.bounds(w[fwd], w[rev])
            summary[f"test_lower{suffix}"] = float(lower)
            summary[f"test_upper{suffix}"] = float(upper)
        for n in config.eval_sizes:
            if n > total:
                continue
            chunks = {k: v[: (total // n) * n].reshape(-1, n) for k, v in w.items()}
            estimates = {
                "jarzynski": _jarzynski_per_set(chunks["w_f"]),
                "bar": _bar_per_set(chunks["w_f"], chunks["w_r"]),
                "targeted": _jarzynski_per_set(chunks["w_f_map"]),
                "feat": _bar_per_set(chunks["w_f_map"], chunks["w_r_map"]),
            }
            for name, values in estimates.items():
                summary[f"test_rmse_{name}_n{n}"] = _rmse(values, delta_f)
        return summary

    return Objective(loss=loss, evaluate=evaluate, summarize=summarize, sweep_report=sweep_report)


def rmse_curves(jobs: Sequence[Mapping]) -> dict:
    """``{estimator: (sizes, mean [S], se [S])}``: the RMSE against the sample size, mean
    and standard error over the jobs (seeds)."""
    curves = {}
    for name in ESTIMATORS:
        prefix = f"test_rmse_{name}_n"
        sizes = sorted(
            int(k[len(prefix) :]) for k in (jobs[0] if jobs else {}) if k.startswith(prefix)
        )
        if not sizes:
            continue
        values = np.array([[float(j[f"{prefix}{n}"]) for n in sizes] for j in jobs])
        se = values.std(axis=0, ddof=1) / math.sqrt(len(jobs)) if len(jobs) > 1 else 0 * values[0]
        curves[name] = (sizes, values.mean(axis=0), se)
    return curves


def sweep_report(jobs: Sequence[Mapping], path: str) -> None:
    """The sweep's ``report.png``: RMSE of each estimator against the number of samples
    per state, mean +- standard error over the jobs (seeds), log-log."""
    jobs = [j for j in jobs if any(k.startswith("test_rmse_") for k in j)]
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    labels = {
        "jarzynski": "Jarzynski (forward works)",
        "bar": "BAR",
        "targeted": "targeted FEP (trained map)",
        "feat": "BAR of mapped works (FEAT)",
    }
    for name, (sizes, mean, se) in rmse_curves(jobs).items():
        ax.errorbar(sizes, mean, yerr=se, marker="o", ms=3, label=labels[name])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("samples per state n")
    ax.set_ylabel("RMSE of dF (kT)")
    ax.set_title(f"Gaussian -> two-mode mixture, {len(jobs)} seed(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


register_objective(
    "escorted_free_energy",
    make,
    defaults=DEFAULTS,
    doc="free energy of a Gaussian -> mixture pair with a learned escort map (FEAT-style)",
)
