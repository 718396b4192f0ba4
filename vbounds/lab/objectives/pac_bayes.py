"""PAC-Bayes with backprop (Perez-Ortiz et al. 2021) as one objective, ``pac_bayes_bound``.

With a stochastic classifier (``model.logits(x, key)``: one network drawn from the
posterior per call; ``model.kl()``: ``KL(posterior || prior)``; the model
``gaussian_mlp``), the training loss is a PAC-Bayes upper bound on the risk of the
bounded cross-entropy

    l(x, y) = -log(max(p(y | x), min_prob)) / log(1 / min_prob)   in [0, 1],

evaluated with one weight draw per batch, ``n = num_train`` (the size of the bound set)
and confidence ``delta``: ``bound = "quad"`` is ``vb.pac_bayes.quadratic`` (the f-quad
objective), ``"classic"`` ``vb.pac_bayes.mcallester`` (f-classic), ``"kl"``
``vb.pac_bayes.maurer`` (through the implicit gradient of ``vb.pac_bayes.kl_inverse``).

Data-dependent prior: batches flagged ``prior_phase`` (the dataset ``digits_certificate``
serves its prior set first) train the posterior-mean network by plain cross-entropy and
move the prior means onto it (``model.move_prior_to_means``); the bound-set batches then
minimise the bound with the prior frozen, the posterior starting at the prior (one
optimiser step away). The prior depends on the prior set and the seed only, so the bound
holds for the bound set.

The evaluation needs the bound set as well as the test images (a ``bound_set`` flag per
example). Each example's 0-1 error and bounded cross-entropy are averaged over
``eval_num_samples`` networks drawn from the posterior (``m``), and the certificate follows
the paper's two steps: the Monte Carlo estimate ``e_m`` of the empirical risk is turned
into an upper bound on the posterior's empirical risk, ``kl_inverse(e_m, log(2 / mc_delta)
/ m)`` (Langford & Caruana 2001), and that into a bound on the risk with
``vb.pac_bayes.maurer(., KL, n, delta)``. The certificate holds with probability at least
``1 - delta - mc_delta``.

Reported (``test_*``): ``certified_error`` (the 0-1 risk certificate),
``certified_bce`` (the same for the bounded cross-entropy), ``train_error`` and
``train_bce`` (the Monte Carlo empirical risks on the bound set), ``error`` (the
stochastic classifier's error on the test images: what the certificate bounds),
``mean_error`` (the posterior-mean network's test error), ``kl`` and ``bound`` (the
training objective on the whole bound set).
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

#: The training objectives: the bound's name -> ``f(emp_risk, kl, n, delta)``.
BOUNDS = {
    "quad": vb.pac_bayes.quadratic,
    "classic": vb.pac_bayes.mcallester,
    "kl": vb.pac_bayes.maurer,
}

#: Declared hyperparameters of ``pac_bayes_bound`` (the paper's confidences and p_min).
DEFAULTS = {
    "bound": "quad",
    "delta": 0.025,
    "mc_delta": 0.01,
    "min_prob": 1e-4,
    "num_train": 674,
    "eval_num_samples": 1000,
    "eval_chunk": 100,
}


def _check(config) -> None:
    if config.bound not in BOUNDS:
        raise ValueError(f"objective.bound must be one of {sorted(BOUNDS)}, got {config.bound!r}")
    for key in ("delta", "mc_delta", "min_prob"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise ValueError(f"objective.{key} must lie in (0, 1), got {value!r}")
    for key in ("num_train", "eval_num_samples", "eval_chunk"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")


def bounded_cross_entropy(logits: jax.Array, y: jax.Array, min_prob: float) -> jax.Array:
    """``-log(max(p(y|x), min_prob)) / log(1/min_prob)`` in ``[0, 1]``, per example."""
    log_p = jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=-1)[:, 0]
    return -jnp.maximum(log_p, math.log(min_prob)) / math.log(1.0 / min_prob)


def _errors(logits: jax.Array, y: jax.Array) -> jax.Array:
    return (jnp.argmax(logits, axis=-1) != y).astype(jnp.float32)


def certificate(emp_risk: float, kl: float, *, n: int, m: int, delta: float, mc_delta: float):
    """The risk certificate of a Monte Carlo empirical risk ``emp_risk`` over ``m`` draws:
    ``maurer(kl_inverse(emp_risk, log(2/mc_delta)/m), kl, n, delta)``."""
    emp_upper = vb.pac_bayes.kl_inverse(emp_risk, math.log(2.0 / mc_delta) / m)
    return float(vb.pac_bayes.maurer(emp_upper, kl, n, delta))


def make(config) -> Objective:
    """The ``pac_bayes_bound`` objective of an ``objective`` section.

    Args:
      config: the section, completed with :data:`DEFAULTS`.

    Returns:
      An :class:`~vbounds.lab.objectives.Objective` with the certificate evaluation and
      a sweep report.
    """
    _check(config)
    bound_fn = BOUNDS[config.bound]
    n, delta, min_prob = config.num_train, float(config.delta), float(config.min_prob)
    m = config.eval_num_samples

    def loss(model, batch, key):
        x, y = batch["x"], batch["y"]
        in_prior = batch["prior_phase"][0] > 0.5 if "prior_phase" in batch else False
        mean_logits = model(x)
        cross_entropy = -jnp.mean(
            jnp.take_along_axis(jax.nn.log_softmax(mean_logits), y[:, None], axis=-1)
        )
        model.move_prior_to_means(in_prior)
        logits = model.logits(x, key)
        bce = jnp.mean(bounded_cross_entropy(logits, y, min_prob))
        kl = model.kl()
        value = jnp.where(in_prior, cross_entropy, bound_fn(bce, kl, n, delta))
        stop = jax.lax.stop_gradient
        metrics = {
            "bce": stop(bce),
            "kl": stop(kl),
            "error": stop(jnp.mean(_errors(logits, y))),
            "prior_phase": jnp.asarray(in_prior, jnp.float32),
        }
        return value, metrics

    def evaluate(model, batch, key):
        x, y = batch["x"], batch["y"]

        def one_network(k):
            logits = model.logits(x, k)
            return _errors(logits, y), bounded_cross_entropy(logits, y, min_prob)

        errors, bces = jax.lax.map(
            one_network, jax.random.split(key, m), batch_size=min(config.eval_chunk, m)
        )
        outputs = {
            "error": jnp.mean(errors, axis=0),
            "bce": jnp.mean(bces, axis=0),
            "mean_error": _errors(model(x), y),
            "bound_set": batch["bound_set"],
            "kl": jnp.broadcast_to(model.kl(), y.shape),
        }
        return jax.lax.stop_gradient(outputs)

    def summarize(outputs: Mapping) -> dict:
        in_bound = np.asarray(outputs["bound_set"]) > 0.5
        if int(in_bound.sum()) != n:
            raise ValueError(
                f"objective.num_train={n} but the data's bound set has "
                f"{int(in_bound.sum())} examples: set objective.num_train to that"
            )
        kl = float(np.asarray(outputs["kl"])[0])
        error = np.asarray(outputs["error"], np.float64)
        bce = np.asarray(outputs["bce"], np.float64)
        train_error, train_bce = float(error[in_bound].mean()), float(bce[in_bound].mean())
        cert = {"n": n, "m": m, "delta": delta, "mc_delta": float(config.mc_delta)}
        return {
            "test_certified_error": certificate(train_error, kl, **cert),
            "test_certified_bce": certificate(train_bce, kl, **cert),
            "test_train_error": train_error,
            "test_train_bce": train_bce,
            "test_error": float(error[~in_bound].mean()),
            "test_mean_error": float(np.asarray(outputs["mean_error"])[~in_bound].mean()),
            "test_kl": kl,
            "test_bound": float(bound_fn(train_bce, kl, n, delta)),
        }

    return Objective(loss=loss, evaluate=evaluate, summarize=summarize, sweep_report=sweep_report)


_SHOWN = (
    ("test_certified_error", "certified 0-1 risk"),
    ("test_error", "test error (stochastic)"),
    ("test_train_error", "bound-set error (stochastic)"),
    ("test_mean_error", "test error (posterior mean)"),
)


def certificate_rows(jobs: Sequence[Mapping]) -> list[dict]:
    """The jobs grouped by their swept values other than ``seed``: each group's ``label``,
    ``n`` and, per reported metric, its mean and standard error (``<metric>_se``)."""
    groups: dict[str, list[Mapping]] = {}
    for job in jobs:
        swept = [
            f"{k}={job[k]}" for k in job if not k.startswith("test_") and k not in ("step", "seed")
        ]
        groups.setdefault(", ".join(swept), []).append(job)
    rows = []
    for label, members in groups.items():
        row = {"label": label, "n": len(members)}
        for metric, _ in (*_SHOWN, ("test_kl", ""), ("test_certified_bce", "")):
            values = np.array([float(j[metric]) for j in members if metric in j])
            row[metric] = float(values.mean()) if values.size else math.nan
            row[f"{metric}_se"] = (
                float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan
            )
        rows.append(row)
    return rows


def sweep_report(jobs: Sequence[Mapping], path: str) -> None:
    """A sweep's ``report.png``: per group of jobs, the certified 0-1 risk beside the test,
    bound-set and posterior-mean errors (mean +- standard error over seeds); and
    ``certificates.md`` beside it with the values and the KL."""
    rows = certificate_rows(jobs)
    if not rows:
        return
    head = ["swept", "n", *(name for _, name in _SHOWN), "KL (nats)", "certified bounded CE"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["label"] or "-", str(r["n"])]
        for metric in (*(k for k, _ in _SHOWN), "test_kl", "test_certified_bce"):
            se = r[f"{metric}_se"]
            digits = 1 if metric == "test_kl" else 4
            cells.append(
                f"{r[metric]:.{digits}f}" + ("" if math.isnan(se) else f" +- {se:.{digits}f}")
            )
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), "certificates.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    fig = Figure(figsize=(max(5.0, 1.8 * len(rows) + 2.5), 4))
    ax = fig.subplots()
    width = 0.8 / len(_SHOWN)
    for i, (metric, name) in enumerate(_SHOWN):
        ax.bar(
            np.arange(len(rows)) + (i - (len(_SHOWN) - 1) / 2) * width,
            [r[metric] for r in rows],
            width,
            yerr=[np.nan_to_num(r[f"{metric}_se"]) for r in rows],
            capsize=2,
            color=f"C{i}",
            label=name,
        )
    ax.set_xticks(np.arange(len(rows)), [r["label"] or "-" for r in rows], fontsize=8)
    ax.set_ylabel("0-1 risk")
    ax.legend(fontsize=8)
    seeds = sorted({r["n"] for r in rows})
    ax.set_title(f"PAC-Bayes risk certificates (mean \u00b1 s.e. over {seeds[-1]} seed(s))")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


register_objective(
    "pac_bayes_bound",
    make,
    defaults=DEFAULTS,
    doc="a PAC-Bayes bound on the bounded cross-entropy (PBB), with a 0-1 risk certificate",
)
