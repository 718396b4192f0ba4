"""The latent-SDE ELBO as an objective, ``latent_sde`` (Li et al. 2020).

With the model :class:`~vbounds.lab.models.latent_sde.LatentSDE`, the loss is minus the
batch mean of :func:`vbounds.sde.elbo` (one posterior path per series; ``substeps``
Euler-Maruyama steps per observation interval), in nats per series. Logged: ``elbo``,
``log_likelihood`` and ``path_kl`` (with ``initial_kl``). The test evaluation averages
``eval_num_samples`` paths per series: ``test_elbo`` and its terms.

The run's ``report.png`` draws the ELBO over training (left) and, right, three test
series with posterior sample paths decoded to the observation space: it rebuilds the test
split from the run's ``config.json``, so the report needs nothing but the workdir.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from matplotlib.figure import Figure

from vbounds.lab.models.latent_sde import time_grid
from vbounds.lab.objectives.base import Objective
from vbounds.lab.registry import lookup, register_objective
from vbounds.lab.report import split_rows

#: Declared hyperparameters of ``latent_sde``.
DEFAULTS = {"substeps": 4, "eval_num_samples": 8}


def _check(config) -> None:
    for key in ("substeps", "eval_num_samples"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")


def _terms(model, batch, key, *, substeps: int, num_samples: int) -> dict:
    """Per-series means over ``num_samples`` paths of the ELBO and its terms."""

    def one(x, t, k):
        out = jax.vmap(lambda kk: model.elbo(x, t, kk, substeps=substeps))(
            jax.random.split(k, num_samples)
        )
        return {
            "elbo": jnp.mean(out.value),
            "log_likelihood": jnp.mean(out.log_likelihood),
            "path_kl": jnp.mean(out.path_kl),
            "initial_kl": jnp.mean(out.initial_kl),
        }

    keys = jax.random.split(key, batch["x"].shape[0])
    return jax.vmap(one)(batch["x"], batch["t"], keys)


def make(config) -> Objective:
    """The ``latent_sde`` objective of an ``objective`` section."""
    _check(config)

    def loss(model, batch, key):
        terms = _terms(model, batch, key, substeps=config.substeps, num_samples=1)
        means = jax.tree.map(jnp.mean, terms)
        return -means["elbo"], jax.lax.stop_gradient(means)

    def evaluate(model, batch, key):
        terms = _terms(
            model, batch, key, substeps=config.substeps, num_samples=config.eval_num_samples
        )
        return jax.lax.stop_gradient(terms)

    def report(rows, path, *, model=None, key=None, title=""):
        plot_report(rows, path, model=model, key=key, title=title, substeps=config.substeps)

    return Objective(loss=loss, evaluate=evaluate, report=report)


def _test_split(workdir: str) -> dict | None:
    """The run's test split, rebuilt from its ``config.json`` (``None`` when absent)."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)["data"]
    return lookup("dataset", data["name"]).factory(ml_collections.ConfigDict(data)).test_split()


def plot_report(rows, path, *, model=None, key=None, title="", substeps=4, num_paths=8):
    """The ELBO over training, and posterior paths of three test series."""
    train, test = split_rows(rows)
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 4)
    axes[0].plot([r["step"] for r in train], [r["elbo"] for r in train], lw=1, label="training")
    axes[0].plot([r["step"] for r in test], [r["test_elbo"] for r in test], "o-", label="test")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("ELBO (nats / series)")
    axes[0].legend(fontsize=8)
    split = _test_split(os.path.dirname(os.path.abspath(path)))
    if model is not None and split is not None:
        key = jax.random.key(0) if key is None else key
        for i, ax in enumerate(axes[1:]):
            x, times = jnp.asarray(split["x"][i]), jnp.asarray(split["t"][i])
            ts, _ = time_grid(times, substeps)
            paths = jax.vmap(
                lambda k, x=x, times=times: model.elbo(x, times, k, substeps=substeps).path
            )(jax.random.split(jax.random.fold_in(key, i), num_paths))
            decoded = np.asarray(jax.vmap(jax.vmap(model))(paths))[..., 0]
            ax.plot(np.asarray(ts), decoded.T, color="C0", lw=0.8, alpha=0.6)
            ax.plot(np.asarray(times), np.asarray(x[:, 0]), "o", color="C3", ms=3, label="data")
            ax.set_title(f"test series {i}: {num_paths} posterior paths", fontsize=9)
            ax.set_xlabel("t")
        axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


register_objective(
    "latent_sde",
    make,
    defaults=DEFAULTS,
    doc="latent-SDE ELBO (Girsanov path KL on Euler-Maruyama paths), nats per series",
)
