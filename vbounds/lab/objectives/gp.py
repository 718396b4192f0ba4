"""Sparse GP regression as one objective, ``sparse_gp``: Titsias' collapsed bound or SVGP.

With the model :class:`~vbounds.lab.models.gp.SparseGP`, the loss is minus the bound per
training point, ``-L / N``:

- ``bound="collapsed"`` (Titsias 2009, ``vb.gp.collapsed_elbo``): ``q(u)`` is optimised
  out, so the batch must be the whole training set (``batch_size`` = its size). Each step
  also writes the optimal ``q(u)`` (``vb.gp.optimal_inducing_posterior``) and, with
  ``exact=True``, the exact ``log p(y)`` of the same hyperparameters
  (``vb.gp.log_marginal_likelihood``, ``O(N^3)``) into the model's cache;
- ``bound="svgp"`` (Hensman et al. 2013, ``vb.gp.svgp_elbo``): ``q(u)`` is trained, and a
  minibatch estimate is unbiased with ``num_data`` the training set's size (``0``: the
  batch is the whole set).

Logged: ``bound`` (nats per training point), ``noise_variance``, and for the collapsed
bound ``exact_lml`` and ``gap`` (``exact_lml - bound`` per point, ``KL(q || posterior) / N
>= 0``). The test evaluation predicts with ``q(u)`` (the cached optimum for the collapsed
bound) and reports ``test_rmse``, ``test_nll`` (``-log N(y | mean, var + noise)`` per
test point, in the standardised units of the data), and, as final numbers of the run,
``test_bound`` and ``test_exact_lml``: the training-set values per point at the last
step (the ``test_`` prefix marks final metrics for the sweep), with ``test_num_inducing``.
A sweep's ``report.png`` draws the bound and the exact value, then RMSE and NLL, against
the number of inducing points.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.objectives.base import Objective
from vbounds.lab.registry import register_objective

#: Declared hyperparameters of ``sparse_gp``.
DEFAULTS = {"bound": "collapsed", "num_data": 0, "jitter": 1e-4, "exact": True}
BOUNDS = ("collapsed", "svgp")


def _check(config) -> None:
    if config.bound not in BOUNDS:
        raise ValueError(f"objective.bound must be one of {BOUNDS}, got {config.bound!r}")
    num_data = config.num_data
    if isinstance(num_data, bool) or not isinstance(num_data, int) or num_data < 0:
        raise ValueError(f"objective.num_data must be an int >= 0, got {num_data!r}")
    jitter = config.jitter
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not jitter >= 0:
        raise ValueError(f"objective.jitter must be a number >= 0, got {jitter!r}")
    if not isinstance(config.exact, bool):
        raise ValueError(f"objective.exact must be a bool, got {config.exact!r}")


def summarize(outputs: Mapping) -> dict:
    """Test RMSE and mean NLL over the split, and the cached final training values."""
    return {
        "test_rmse": float(np.sqrt(np.mean(np.asarray(outputs["sq_error"], np.float64)))),
        "test_nll": float(np.mean(np.asarray(outputs["nll"], np.float64))),
        "test_bound": float(np.asarray(outputs["bound"])[0]),
        "test_exact_lml": float(np.asarray(outputs["exact_lml"])[0]),
        "test_num_inducing": float(np.asarray(outputs["num_inducing"])[0]),
    }


def make(config) -> Objective:
    """The ``sparse_gp`` objective of an ``objective`` section (see the module docstring)."""
    _check(config)
    jitter = float(config.jitter)
    collapsed = config.bound == "collapsed"

    def loss(model, batch, key):
        del key
        x, y = batch["x"], batch["y"]
        kernel, noise, z = model.kernel(), model.noise_variance(), model.z[...]
        n = x.shape[0]
        metrics = {"noise_variance": noise}
        if collapsed:
            bound = vb.gp.collapsed_elbo(kernel, x, y, z, noise, jitter=jitter) / n
            stop = jax.lax.stop_gradient
            q = vb.gp.optimal_inducing_posterior(kernel, x, y, stop(z), stop(noise), jitter=jitter)
            model.cache_mean[...] = stop(q.mean)
            model.cache_tril[...] = stop(q.scale_tril)
            model.cache_bound[...] = stop(bound)
            if config.exact:
                exact = stop(vb.gp.log_marginal_likelihood(kernel, x, y, noise, jitter=jitter)) / n
                model.cache_exact[...] = exact
                metrics.update(exact_lml=exact, gap=exact - stop(bound))
        else:
            num_data = config.num_data or n
            bound = (
                vb.gp.svgp_elbo(
                    kernel, x, y, z, *model.q_u(), noise, num_data=num_data, jitter=jitter
                )
                / num_data
            )
            model.cache_bound[...] = jax.lax.stop_gradient(bound)
        return -bound, {"bound": bound, **metrics}

    def evaluate(model, batch, key):
        del key
        mean, var = model(batch["x"], cached=collapsed, jitter=jitter)
        y = batch["y"]
        n = y.shape[0]
        return {
            "sq_error": (y - mean) ** 2,
            "nll": 0.5 * (jnp.log(2 * jnp.pi * var) + (y - mean) ** 2 / var),
            "bound": jnp.full((n,), model.cache_bound[...]),
            "exact_lml": jnp.full(
                (n,), model.cache_exact[...] if collapsed and config.exact else jnp.nan
            ),
            "num_inducing": jnp.full((n,), float(model.z[...].shape[0])),
        }

    return Objective(loss=loss, evaluate=evaluate, summarize=summarize, sweep_report=sweep_report)


def _by_inducing(jobs: Sequence[Mapping]) -> dict:
    groups = defaultdict(list)
    for job in jobs:
        if isinstance(job.get("test_num_inducing"), int | float):
            groups[int(job["test_num_inducing"])].append(job)
    return dict(sorted(groups.items()))


def _mean_se(values) -> tuple[float, float]:
    data = np.asarray([v for v in values if isinstance(v, int | float)], float)
    data = data[np.isfinite(data)]
    if not data.size:
        return math.nan, math.nan
    se = float(np.std(data, ddof=1) / math.sqrt(data.size)) if data.size > 1 else 0.0
    return float(np.mean(data)), se


def sweep_report(jobs: Sequence[Mapping], path: str) -> None:
    """A sweep's ``report.png``: the bound and the exact ``log p(y)`` per training point
    (left), test RMSE and NLL (right), against the number of inducing points (mean +-
    standard error over the jobs of each M, e.g. seeds)."""
    groups = _by_inducing(jobs)
    if not groups:
        return
    ms = list(groups)
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    for ax, metrics in (
        (left, (("test_bound", "collapsed / SVGP bound"), ("test_exact_lml", "exact log p(y)"))),
        (right, (("test_rmse", "test RMSE"), ("test_nll", "test NLL"))),
    ):
        for i, (metric, label) in enumerate(metrics):
            stats = [_mean_se(job.get(metric) for job in groups[m]) for m in ms]
            ax.errorbar(
                ms,
                [s[0] for s in stats],
                yerr=[s[1] for s in stats],
                fmt="o-",
                color=f"C{i}",
                capsize=2,
                ms=4,
                label=label,
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("inducing points M")
        ax.legend(fontsize=8)
    left.set_ylabel("nats per training point")
    right.set_ylabel("RMSE (standardised y); NLL (nats per test point)")
    n = sorted({len(g) for g in groups.values()})
    runs = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    fig.suptitle(f"Sparse GP regression (mean \u00b1 standard error over {runs} runs per M)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


register_objective(
    "sparse_gp",
    make,
    defaults=DEFAULTS,
    doc="sparse GP regression: Titsias' collapsed bound or SVGP, per training point",
)
