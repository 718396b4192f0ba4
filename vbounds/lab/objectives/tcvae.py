"""beta-VAE and beta-TCVAE (Chen et al. 2018) as one objective, ``tcvae``.

With a Gaussian-encoder VAE (the registered ``vae`` model: ``variational_params`` gives
``loc``, ``scale`` of ``q(z|x)``, ``log_likelihood`` gives ``log p(x|z)``, prior
``N(0, I)``), one draw ``z_i ~ q(z|x_i)`` per example and the pairwise densities
``log q(z_{i,d} | x_j)`` over the batch, the loss is the batch mean of
``vb.disentangle.beta_tcvae_loss``:

    -log p(x_i|z_i) + alpha MI_i + beta TC_i + gamma dimKL_i

``method="tcvae"`` uses the configured ``alpha``, ``beta``, ``gamma``; ``method="beta_vae"``
puts ``beta`` on all three, which is exactly beta-VAE's ``-log p(x|z) + beta KL`` (the
three parts sum to the single-sample KL). ``dataset_size`` is the number of training
examples (the minibatch estimators' ``N``); ``estimator`` is ``"mss"`` or ``"mws"``.

Logged on training batches: ``elbo`` (single-sample, nats), ``index_code_mi``,
``total_correlation``, ``dimension_kl`` (the minibatch estimates). The test evaluation
(data with ``factors``, e.g. ``shapes``) reports ``test_elbo`` (with the closed-form KL),
``test_log_likelihood``, ``test_kl``, the decomposition of the KL term over the whole test
split (``test_index_code_mi``, ``test_total_correlation``, ``test_dimension_kl``: the
``"mws"`` estimator with the whole split as the batch, the exact terms of the test set's
empirical aggregate posterior at one draw per image) and ``test_mig`` (the posterior means
against the factors). A sweep's ``report.png`` draws MIG and the three terms against beta,
one line per method, and writes ``disentanglement.md`` beside it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.objectives.base import Objective
from vbounds.lab.registry import register_objective

#: Declared hyperparameters of ``tcvae``.
DEFAULTS = {
    "method": "tcvae",
    "alpha": 1.0,
    "beta": 6.0,
    "gamma": 1.0,
    "dataset_size": 972,
    "estimator": "mss",
    "mig_bins": 20,
}
METHODS = ("tcvae", "beta_vae")
_TERMS = ("index_code_mi", "total_correlation", "dimension_kl")
_LOG_2PI = math.log(2 * math.pi)


def _check(config) -> None:
    if config.method not in METHODS:
        raise ValueError(f"objective.method must be one of {METHODS}, got {config.method!r}")
    for key in ("alpha", "beta", "gamma"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"objective.{key} must be a number >= 0, got {value!r}")
    for key, minimum in (("dataset_size", 2), ("mig_bins", 2)):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"objective.{key} must be an int >= {minimum}, got {value!r}")
    if config.estimator not in vb.disentangle.ESTIMATORS:
        raise ValueError(
            f"objective.estimator must be one of {vb.disentangle.ESTIMATORS}, "
            f"got {config.estimator!r}"
        )


def pairwise_terms(model, x, key):
    """One draw per example and the arrays the decomposition needs.

    Returns:
      ``(log_likelihood [M], log_q_pairwise [M, M, D], log_prior [M, D], loc, scale)``.
    """
    params = model.variational_params({"x": x})
    loc, scale = params["loc"], params["scale"]
    z = loc + scale * jax.random.normal(key, loc.shape, loc.dtype)
    log_likelihood = jax.vmap(lambda xi, zi: model.log_likelihood({"x": xi}, zi[None])[0])(x, z)
    standard = (z[:, None, :] - loc[None]) / scale[None]
    log_q_pairwise = -0.5 * (standard**2 + _LOG_2PI) - jnp.log(scale)[None]
    log_prior = -0.5 * (z**2 + _LOG_2PI)
    return log_likelihood, log_q_pairwise, log_prior, loc, scale


def _gaussian_kl(loc, scale):
    return 0.5 * jnp.sum(loc**2 + scale**2 - 1.0 - 2.0 * jnp.log(scale), axis=-1)


def summarize(outputs: Mapping, *, mig_bins: int = 20) -> dict:
    """Test metrics over the whole split: ELBO, KL decomposition, MIG."""
    loc = np.asarray(outputs["loc"], np.float64)
    scale = np.asarray(outputs["scale"], np.float64)
    z = np.asarray(outputs["z"], np.float64)
    lqp = -0.5 * (((z[:, None] - loc[None]) / scale[None]) ** 2 + _LOG_2PI) - np.log(scale)[None]
    log_prior = -0.5 * (z**2 + _LOG_2PI)
    with jax.enable_x64(True):
        terms = vb.disentangle.elbo_decomposition(
            lqp, log_prior, dataset_size=len(z), estimator="mws"
        )
        terms = {f"test_{k}": float(v) for k, v in terms._asdict().items()}
    factors = np.asarray(outputs["factors"])
    result = {
        "test_elbo": float(np.mean(outputs["elbo"])),
        "test_log_likelihood": float(np.mean(outputs["log_likelihood"])),
        "test_kl": float(np.mean(outputs["kl"])),
        **terms,
        "test_mig": float(vb.disentangle.mig(factors, loc, num_bins=mig_bins)),
    }
    return result


def make(config) -> Objective:
    """The ``tcvae`` objective of an ``objective`` section (see the module docstring)."""
    _check(config)
    if config.method == "beta_vae":
        alpha = beta = gamma = float(config.beta)
    else:
        alpha, beta, gamma = float(config.alpha), float(config.beta), float(config.gamma)
    dataset_size, estimator = int(config.dataset_size), config.estimator

    def loss(model, batch, key):
        x = batch["x"]
        if x.shape[0] > dataset_size:
            raise ValueError(
                f"objective.dataset_size ({dataset_size}) is below the batch size ({x.shape[0]})"
            )
        ll, lqp, lp, _, _ = pairwise_terms(model, x, key)
        per_example = vb.disentangle.beta_tcvae_loss(
            ll, lqp, lp, dataset_size=dataset_size, alpha=alpha, beta=beta, gamma=gamma,
            estimator=estimator,
        )  # fmt: skip
        stop = jax.lax.stop_gradient
        terms = vb.disentangle.elbo_decomposition(
            stop(lqp), stop(lp), dataset_size=dataset_size, estimator=estimator
        )
        kl = jnp.sum(jnp.einsum("iid->id", lqp) - lp, axis=-1)
        metrics = {"elbo": stop(jnp.mean(ll - kl)), **terms._asdict()}
        return jnp.mean(per_example), metrics

    def evaluate(model, batch, key):
        x = batch["x"]
        params = model.variational_params({"x": x})
        loc, scale = params["loc"], params["scale"]
        z = loc + scale * jax.random.normal(key, loc.shape, loc.dtype)
        ll = jax.vmap(lambda xi, zi: model.log_likelihood({"x": xi}, zi[None])[0])(x, z)
        kl = _gaussian_kl(loc, scale)
        outputs = {
            "elbo": ll - kl,
            "log_likelihood": ll,
            "kl": kl,
            "loc": loc,
            "scale": scale,
            "z": z,
            "factors": batch["factors"],
        }
        return jax.lax.stop_gradient(outputs)

    return Objective(
        loss=loss,
        evaluate=evaluate,
        summarize=lambda outputs: summarize(outputs, mig_bins=int(config.mig_bins)),
        sweep_report=sweep_report,
    )


# Sweep report --------------------------------------------------------------------------

_METRICS = ("test_mig", "test_elbo", *(f"test_{t}" for t in _TERMS))


def disentanglement_table(jobs: Sequence[Mapping]) -> list[dict]:
    """Jobs grouped by (method, beta): mean and standard error over seeds of each metric."""
    groups: dict[tuple, list[Mapping]] = {}
    for job in jobs:
        method = str(job.get("objective.method", "tcvae"))
        groups.setdefault((method, float(job.get("objective.beta", math.nan))), []).append(job)
    rows = []
    for (method, beta), members in sorted(groups.items()):
        row = {"method": method, "beta": beta, "n": len(members)}
        for metric in _METRICS:
            values = np.array([float(m[metric]) for m in members if metric in m], np.float64)
            row[metric] = float(np.mean(values)) if values.size else math.nan
            row[f"{metric}_se"] = (
                float(np.std(values, ddof=1) / math.sqrt(values.size))
                if values.size > 1
                else math.nan
            )
        rows.append(row)
    return rows


def format_table(rows: Sequence[Mapping]) -> str:
    """A markdown table of :func:`disentanglement_table` (mean ± standard error)."""
    head = ["objective", "beta", "seeds", "MIG", "test ELBO", "MI", "TC", "dim-KL"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["method"], f"{r['beta']:g}", str(r["n"])]
        for metric, digits in zip(_METRICS, (3, 1, 2, 2, 2), strict=True):
            cells.append(f"{r[metric]:.{digits}f} ± {r[metric + '_se']:.{digits}f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_report(jobs: Sequence[Mapping], path: str) -> None:
    """A sweep's ``report.png``: MIG, TC, MI and dimension-wise KL against beta (mean ±
    standard error over seeds), one line per method; ``disentanglement.md`` beside it."""
    rows = disentanglement_table(jobs)
    if not rows:
        return
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), "disentanglement.md"), "w") as f:
        f.write(format_table(rows))
    fig = Figure(figsize=(14, 3.6))
    axes = fig.subplots(1, 4)
    panels = ("test_mig", "test_total_correlation", "test_index_code_mi", "test_dimension_kl")
    titles = ("MIG (higher: more disentangled)", "total correlation (nats)",
              "index-code MI (nats)", "dimension-wise KL (nats)")  # fmt: skip
    for ax, metric, title in zip(axes, panels, titles, strict=True):
        for i, kind in enumerate(dict.fromkeys(r["method"] for r in rows)):
            series = [r for r in rows if r["method"] == kind]
            ax.errorbar(
                [r["beta"] for r in series],
                [r[metric] for r in series],
                yerr=[np.nan_to_num(r[metric + "_se"]) for r in series],
                fmt="o-",
                color=f"C{i}",
                capsize=2,
                ms=4,
                label=kind,
            )
        ax.set_xscale("log")
        ax.set_xlabel("beta")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle("beta-VAE vs beta-TCVAE on shapes (test split; mean ± SE over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


register_objective(
    "tcvae",
    make,
    defaults=DEFAULTS,
    doc="beta-VAE / beta-TCVAE (vb.disentangle): KL split into MI, TC, dim-KL; MIG at test",
)
