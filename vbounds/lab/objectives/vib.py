"""The deep variational information bottleneck (Alemi et al. 2017) as one objective, ``vib``.

With the model :class:`~vbounds.lab.models.vib.VIB` (encoder ``q(z|x)``, decoder
``q(y|z)``, prior ``N(0, I)``), the loss is the batch mean of ``vb.mi.vib_loss``,

    -log q(y | z) + beta KL(q(z | x) || N(0, I)),   z ~ q(z | x) (``num_samples`` draws),

which upper-bounds ``beta I(x; z) - I(z; y) + H(y)``. It is a classification loss with a
rate penalty, not a bound on a likelihood, so nothing here is called a bound on ``log p``.

Logged on training batches: ``cross_entropy`` (``-E log q(y|z)``), ``rate`` (the batch
mean of the KL) and ``accuracy`` (argmax of the predictive probabilities averaged over the
``num_samples`` draws). The test evaluation draws ``eval_num_samples`` z per example (12,
as Alemi et al.) and reports:

- ``test_accuracy``: argmax of ``(1/S) sum_s q(y | z_s)`` against the label;
- ``test_rate``: ``E KL(q(z|x) || N(0, I))`` (``vb.mi.kl_rate``), an upper bound on
  ``I(x; z)``;
- ``test_cross_entropy``: the Monte Carlo ``-E log q(y|z)``;
- ``test_izy_lower``: the Barber-Agakov lower bound ``I(z; y) >= H(y) - CE``
  (``vb.mi.barber_agakov``), with ``test_entropy_y``, the empirical entropy of the test
  labels, as ``H(y)``.

By the data-processing inequality (``y - x - z``), ``I(z; y) <= I(x; z) <= rate``, so
``test_izy_lower`` below ``test_rate`` is a consistency check. The run's ``report.png``
draws accuracy and rate over training; a sweep's ``report.png`` draws accuracy and the
``I(z; y)`` lower bound against the rate (the information plane), one point per beta, and
writes the same values to ``info_plane.md`` beside it.
"""

from __future__ import annotations

import json
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
from vbounds.lab.report import split_rows

#: Declared hyperparameters of ``vib``.
DEFAULTS = {"beta": 1e-3, "num_samples": 1, "eval_num_samples": 12}


def _check(config) -> None:
    beta = config.beta
    if isinstance(beta, bool) or not isinstance(beta, int | float) or not math.isfinite(beta):
        raise ValueError(f"objective.beta must be a finite number >= 0, got {beta!r}")
    if beta < 0:
        raise ValueError(f"objective.beta must be >= 0, got {beta!r}")
    for key in ("num_samples", "eval_num_samples"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")


def terms(model, x, y, key, num_samples: int):
    """The per-example terms of the VIB on a batch.

    Args:
      model: a :class:`~vbounds.lab.models.vib.VIB` (``posterior``, ``prior``,
        ``log_probs``).
      x: ``[N, D]`` inputs.
      y: ``[N]`` integer labels.
      key: PRNG key of the z draws.
      num_samples: z draws per example, ``S``.

    Returns:
      ``(log_likelihood [S, N], kl [N], log_probs [S, N, C])``: ``log q(y_i | z_si)``,
      the closed-form ``KL(q(z|x_i) || N(0, I))`` and every class's ``log q(c | z_si)``.
    """
    q = model.posterior(x)
    kl = q.kl_divergence(model.prior(q.loc))
    z = q.sample(seed=key, sample_shape=(num_samples,))
    log_probs = model.log_probs(z)
    log_likelihood = jnp.take_along_axis(log_probs, y[None, :, None], axis=-1)[..., 0]
    return log_likelihood, kl, log_probs


def predictive_log_probs(log_probs: jax.Array) -> jax.Array:
    """``log (1/S) sum_s q(c | z_s)``: ``[S, N, C] -> [N, C]`` (Alemi et al.'s prediction)."""
    return jax.nn.logsumexp(log_probs, axis=0) - math.log(log_probs.shape[0])


def correct(log_probs: jax.Array, y: jax.Array) -> jax.Array:
    """``[N]`` 1.0 where the argmax of the averaged predictive probabilities is ``y``."""
    return (jnp.argmax(predictive_log_probs(log_probs), axis=-1) == y).astype(jnp.float32)


def label_entropy(labels, num_classes: int | None = None) -> float:
    """The empirical entropy (nats) of integer ``labels``."""
    labels = np.asarray(labels).astype(np.int64).ravel()
    counts = np.bincount(labels, minlength=num_classes or 0)
    p = counts[counts > 0] / labels.size
    return float(-np.sum(p * np.log(p)))


def summarize(outputs: Mapping) -> dict:
    """The test metrics of the per-example outputs of the whole split.

    Returns:
      ``test_accuracy``, ``test_rate``, ``test_cross_entropy``, ``test_izy_lower`` (the
      Barber-Agakov lower bound on ``I(z; y)``) and ``test_entropy_y``.
    """
    cross_entropy = np.asarray(outputs["cross_entropy"], np.float64)
    entropy_y = label_entropy(outputs["label"])
    return {
        "test_accuracy": float(np.mean(np.asarray(outputs["correct"], np.float64))),
        "test_rate": float(vb.mi.kl_rate(np.asarray(outputs["rate"]))),
        "test_cross_entropy": float(np.mean(cross_entropy)),
        "test_izy_lower": float(vb.mi.barber_agakov(-cross_entropy, entropy_y)),
        "test_entropy_y": entropy_y,
    }


def make(config) -> Objective:
    """The ``vib`` objective of an ``objective`` section.

    Args:
      config: the section, completed with :data:`DEFAULTS`.

    Returns:
      An :class:`~vbounds.lab.objectives.Objective` with the test evaluation above and
      the run and sweep reports.
    """
    _check(config)
    beta = float(config.beta)

    def loss(model, batch, key):
        y = batch["y"]
        log_likelihood, kl, log_probs = terms(model, batch["x"], y, key, config.num_samples)
        value = jnp.mean(vb.mi.vib_loss(log_likelihood, kl, beta=beta))
        stop = jax.lax.stop_gradient
        metrics = {
            "cross_entropy": stop(-jnp.mean(log_likelihood)),
            "rate": stop(vb.mi.kl_rate(kl)),
            "accuracy": stop(jnp.mean(correct(log_probs, y))),
        }
        return value, metrics

    def evaluate(model, batch, key):
        y = batch["y"]
        log_likelihood, kl, log_probs = terms(model, batch["x"], y, key, config.eval_num_samples)
        outputs = {
            "correct": correct(log_probs, y),
            "rate": kl,
            "cross_entropy": -jnp.mean(log_likelihood, axis=0),
            "label": y,
        }
        return jax.lax.stop_gradient(outputs)

    return Objective(
        loss=loss,
        evaluate=evaluate,
        summarize=summarize,
        report=plot_run_report,
        sweep_report=sweep_report,
    )


# Reports -------------------------------------------------------------------------------


def _series(rows: Sequence[Mapping], key: str) -> tuple[list, list]:
    points = [(r["step"], float(r[key])) for r in rows if isinstance(r.get(key), int | float)]
    return ([p[0] for p in points], [p[1] for p in points]) if points else ([], [])


def plot_run_report(rows, path: str, *, model=None, key=None, title: str = "") -> None:
    """A run's ``report.png``: accuracy (left) and rate and cross-entropy (right) over the
    steps, on training batches (lines) and the test split (markers), with ``H(y)`` and
    the test ``I(z; y)`` lower bound; the final test values in the panels' titles."""
    del model, key
    train, test = split_rows(rows)
    fig = Figure(figsize=(12.5, 4))
    ax_acc, ax_nats = fig.subplots(1, 2)
    ax_acc.plot(*_series(train, "accuracy"), color="C0", lw=1, label="training batches")
    ax_acc.plot(*_series(test, "test_accuracy"), "o-", color="C1", label="test")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend(fontsize=8)
    for name, color in (("rate", "C0"), ("cross_entropy", "C2")):
        ax_nats.plot(*_series(train, name), color=color, lw=1, label=f"{name} (training)")
        ax_nats.plot(*_series(test, f"test_{name}"), "o", color=color, label=f"{name} (test)")
    ax_nats.plot(*_series(test, "test_izy_lower"), "s--", color="C3", label="I(z;y) >= H(y) - CE")
    if test and "test_entropy_y" in test[-1]:
        ax_nats.axhline(test[-1]["test_entropy_y"], color="gray", ls=":", lw=1, label="H(y)")
    values = [v for line in ax_nats.get_lines() for v in np.ravel(line.get_ydata())]
    if values and min(values) > 0:
        ax_nats.set_yscale("log")
    else:  # the I(z;y) lower bound is negative while the cross-entropy exceeds H(y)
        ax_nats.set_yscale("symlog", linthresh=0.1)
    ax_nats.set_xlabel("step")
    ax_nats.set_ylabel("nats")
    ax_nats.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if test and "test_accuracy" in test[-1]:
        final = test[-1]
        ax_acc.set_title(f"test accuracy {final['test_accuracy']:.3f}")
        ax_nats.set_title(
            f"test rate {final['test_rate']:.2f} >= I(x;z), CE {final['test_cross_entropy']:.3f}"
        )
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


_METRICS = ("test_accuracy", "test_rate", "test_cross_entropy", "test_izy_lower")


def _job_beta(sweep_dir: str, job: Mapping) -> float:
    """A job's beta: its swept value, else the one in the job's ``config.json``."""
    if "objective.beta" in job:
        return float(job["objective.beta"])
    from vbounds.lab.sweep import job_name

    keys = [k for k in job if not k.startswith("test_") and k != "step"]
    path = os.path.join(sweep_dir, job_name({k: str(job[k]) for k in keys}, keys), "config.json")
    if not os.path.exists(path):
        return math.nan
    with open(path) as f:
        return float(json.load(f)["objective"]["beta"])


def info_plane(jobs: Sequence[Mapping], *, beta_of=None) -> list[dict]:
    """The sweep's jobs grouped by their swept values other than ``seed``.

    Args:
      jobs: one dict per finished job: its swept values and final ``test_*`` metrics.
      beta_of: ``job -> beta`` (default: the job's ``objective.beta``).

    Returns:
      One dict per group, ordered by beta: ``beta``, ``label`` (the other swept values),
      ``n`` and, for each test metric, its mean and its standard error over the group
      (``<metric>_se``, NaN for one job).
    """
    beta_of = beta_of or (lambda job: float(job["objective.beta"]))
    groups: dict[tuple, list[Mapping]] = {}
    for job in jobs:
        swept = tuple(
            (k, str(job[k]))
            for k in job
            if not k.startswith("test_") and k not in ("step", "seed", "objective.beta")
        )
        groups.setdefault((beta_of(job), swept), []).append(job)
    rows = []
    for (beta, swept), members in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0])):
        row = {"beta": beta, "label": ", ".join(f"{k}={v}" for k, v in swept), "n": len(members)}
        for metric in (*_METRICS, "test_entropy_y"):
            values = np.array([float(m[metric]) for m in members if metric in m], np.float64)
            row[metric] = float(np.mean(values)) if values.size else math.nan
            row[f"{metric}_se"] = (
                float(np.std(values, ddof=1) / math.sqrt(values.size))
                if values.size > 1
                else math.nan
            )
        rows.append(row)
    return rows


def _cell(row: Mapping, metric: str, digits: int) -> str:
    mean, se = row[metric], row[f"{metric}_se"]
    if math.isnan(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {se:.{digits}f}"


def format_info_plane(rows: Sequence[Mapping]) -> str:
    """A markdown table of :func:`info_plane`'s rows (mean +- standard error)."""
    extra = any(r["label"] for r in rows)
    head = [*(["swept"] if extra else []), "beta", "n", "test accuracy"]
    head += ["rate E KL >= I(x;z) (nats)", "CE (nats)", "I(z;y) >= H(y) - CE (nats)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [*([r["label"]] if extra else []), f"{r['beta']:g}", str(r["n"])]
        cells += [_cell(r, "test_accuracy", 3), _cell(r, "test_rate", 2)]
        cells += [_cell(r, "test_cross_entropy", 3), _cell(r, "test_izy_lower", 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_report(jobs: Sequence[Mapping], path: str) -> None:
    """A sweep's ``report.png``: test accuracy (left) and the ``I(z; y)`` lower bound
    (right) against the rate, one point per beta (mean +- standard error over seeds, the
    beta on each point), with ``H(y)`` and the data-processing line ``I(z;y) = rate``; and
    ``info_plane.md`` beside it with the same values."""
    sweep_dir = os.path.dirname(os.path.abspath(path))
    rows = info_plane(jobs, beta_of=lambda job: _job_beta(sweep_dir, job))
    if not rows:
        return
    with open(os.path.join(sweep_dir, "info_plane.md"), "w") as f:
        f.write(format_info_plane(rows))
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    panels = (("test_accuracy", "test accuracy"), ("test_izy_lower", "I(z;y) >= H(y) - CE (nats)"))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    for ax, (metric, ylabel) in zip(axes, panels, strict=True):
        for i, label in enumerate(labels):
            series = [r for r in rows if r["label"] == label]
            ax.errorbar(
                [r["test_rate"] for r in series],
                [r[metric] for r in series],
                xerr=[np.nan_to_num(r["test_rate_se"]) for r in series],
                yerr=[np.nan_to_num(r[f"{metric}_se"]) for r in series],
                fmt="o-",
                color=f"C{i}",
                ms=4,
                capsize=2,
                label=label or None,
            )
            for r in series:
                ax.annotate(
                    f"{r['beta']:g}",
                    (r["test_rate"], r[metric]),
                    xytext=(0, -7),
                    textcoords="offset points",
                    fontsize=7,
                    rotation=90,
                    ha="center",
                    va="top",
                )
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("rate E KL(q(z|x) || N(0,I)) >= I(x;z) (nats)")
        ax.set_ylabel(ylabel)
    entropy = float(np.nanmean([r["test_entropy_y"] for r in rows]))
    ax_izy = axes[1]
    ax_izy.axhline(entropy, color="gray", ls="--", lw=0.8, label=f"H(y) = {entropy:.3f}")
    low, high = ax_izy.get_xlim()
    grid = np.linspace(max(low, 0.0), min(high, entropy), 50)
    ax_izy.plot(grid, grid, color="k", ls=":", lw=0.8, label="I(z;y) = rate")
    ax_izy.legend(fontsize=7, loc="lower right")
    if any(labels):
        axes[0].legend(fontsize=7, loc="lower right")
    seeds = sorted({r["n"] for r in rows})
    n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    fig.suptitle(
        f"VIB information plane (labels: beta; mean \u00b1 standard error over {n} job(s) each)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


register_objective(
    "vib",
    make,
    defaults=DEFAULTS,
    doc="the deep variational information bottleneck loss (Alemi et al. 2017), not a bound",
)
