"""The ELBO of PPCA with a posterior over its loadings, for rank selection (``ppca_elbo``).

With the model :class:`~vbounds.lab.models.ppca.PPCA` and ``N`` training rows, the bound on
``log p(X)`` (``z`` integrated out exactly by ``vb.linear_gaussian.log_likelihood``) is

    ELBO = E_{q(W)} sum_n log p(x_n | W) - KL(q(W) || N(0, prior_scale^2)),

estimated on a minibatch by ``vb.weight_space.elbo`` (``num_samples`` reparameterised draws
of ``W``, the minibatch log-likelihood scaled by ``N / B``, the KL by Monte Carlo); the loss
is ``-ELBO / N``. The KL grows with every column of ``W``, so the ELBO, unlike the
likelihood, can prefer a smaller rank (Cherief-Abdellatif 2019, consistency of ELBO
maximisation for model selection).

The test evaluation (the training rows, then held-out rows: dataset ``ppca_rank``) reports

- ``test_elbo``: the training-set ELBO, ``eval_num_samples`` draws of ``W`` per batch and
  the closed-form Gaussian KL;
- ``test_max_loglik``: the *maximum* exact training log-likelihood of a PPCA of the same
  rank, in closed form (Tipping & Bishop 1999: the top eigenvalues of the sample
  covariance), the criterion "max likelihood" ranks by;
- ``test_heldout_loglik``: the mean exact log-likelihood of the held-out rows at ``W =
  w_loc``; ``test_kl``; ``test_rank``; ``test_num_train``.

A sweep's ``report.png`` draws the rank each criterion selects against ``N`` (mean +-
standard error over the replicates), and ``selected_rank.md`` lists it.
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

#: Declared hyperparameters of ``ppca_elbo``.
DEFAULTS = {"prior_scale": 1.0, "num_samples": 4, "eval_num_samples": 128}

#: The criteria of the sweep report: (metric, label), each maximised over the rank.
CRITERIA = (
    ("test_elbo", "max ELBO"),
    ("test_max_loglik", "max likelihood"),
    ("test_heldout_loglik", "held-out likelihood"),
)


def _check(config) -> None:
    if not config.prior_scale > 0:
        raise ValueError(f"objective.prior_scale must be positive, got {config.prior_scale!r}")
    for key in ("num_samples", "eval_num_samples"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")


def _weights_kl(loc, scale, prior_scale: float) -> jax.Array:
    """Closed-form ``KL(N(loc, scale^2) || N(0, prior_scale^2))``, summed over entries."""
    ratio = jnp.square(scale / prior_scale)
    return 0.5 * jnp.sum(ratio + jnp.square(loc / prior_scale) - 1.0 - jnp.log(ratio))


def max_log_likelihood(x: np.ndarray, rank: int) -> float:
    """The maximum over ``W, mean, noise`` of the PPCA log-likelihood of ``x [N, d]``.

    Tipping & Bishop (1999): with the sample covariance's eigenvalues ``l_1 >= ... >= l_d``
    and ``s2 = mean(l_{rank+1..d})``, the maximum is
    ``-N/2 (d log 2 pi + sum_{j <= rank} log l_j + (d - rank) log s2 + d)``.
    """
    x = np.asarray(x, np.float64)
    n, d = x.shape
    eig = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True)))[::-1]
    s2 = eig[rank:].mean()
    logdet = np.sum(np.log(eig[:rank])) + (d - rank) * np.log(s2)
    return float(-0.5 * n * (d * math.log(2 * math.pi) + logdet + d))


def summarize(outputs: Mapping) -> dict:
    """The criteria of the per-example outputs over the whole split (see the module)."""
    train = np.asarray(outputs["is_train"]) > 0.5
    rank = int(np.asarray(outputs["rank"])[0])
    kl = float(np.asarray(outputs["kl"], np.float64)[0])
    expected = np.asarray(outputs["expected_loglik"], np.float64)
    heldout = np.asarray(outputs["loglik_at_mean"], np.float64)[~train]
    return {
        "test_elbo": float(expected[train].sum() - kl),
        "test_max_loglik": max_log_likelihood(np.asarray(outputs["x"])[train], rank),
        "test_heldout_loglik": float(heldout.mean()) if heldout.size else math.nan,
        "test_kl": kl,
        "test_rank": float(rank),
        "test_num_train": float(train.sum()),
    }


def make(config) -> Objective:
    """The ``ppca_elbo`` objective of an ``objective`` section (see the module)."""
    _check(config)
    prior_scale = float(config.prior_scale)
    num_samples, eval_num_samples = int(config.num_samples), int(config.eval_num_samples)
    log_prior = lambda w: (  # noqa: E731
        -0.5 * jnp.square(w / prior_scale) - jnp.log(prior_scale) - 0.5 * math.log(2 * math.pi)
    )

    def loss(model, batch, key):
        num_data = batch["num_data"][0]
        mean, noise = model.mean[...], model.noise_variance

        def log_lik(w):
            ll = vb.linear_gaussian.log_likelihood(batch["x"], w, mean, noise)
            return num_data * jnp.mean(ll)

        elbo = vb.weight_space.elbo(
            key,
            log_lik,
            model.w_loc[...],
            model.w_scale,
            log_prior_fn=log_prior,
            num_samples=num_samples,
        )
        return -elbo / num_data, {"elbo_per_datum": elbo / num_data, "noise_variance": noise}

    def evaluate(model, batch, key):
        loc, scale = model.w_loc[...], model.w_scale
        mean, noise = model.mean[...], model.noise_variance
        eps = jax.random.normal(key, (eval_num_samples, *loc.shape))
        draws = jax.vmap(lambda w: vb.linear_gaussian.log_likelihood(batch["x"], w, mean, noise))(
            loc + scale * eps
        )
        n = batch["x"].shape[0]
        return {
            "expected_loglik": jnp.mean(draws, axis=0),
            "loglik_at_mean": vb.linear_gaussian.log_likelihood(batch["x"], loc, mean, noise),
            "kl": jnp.full(n, _weights_kl(loc, scale, prior_scale)),
            "rank": jnp.full(n, loc.shape[1]),
            "is_train": batch["is_train"],
            "x": batch["x"],
        }

    return Objective(loss=loss, evaluate=evaluate, summarize=summarize, sweep_report=sweep_report)


def selected_ranks(jobs: Sequence[Mapping]) -> list[dict]:
    """For each training-set size, the rank each criterion selects, over the replicates.

    A replicate is a job's swept values other than ``model.rank`` (e.g. ``data.seed``) at
    one ``test_num_train``; each criterion's selected rank is the rank of its largest value.

    Returns:
      One dict per ``N``: ``num_train``, ``n`` (replicates) and, per criterion metric, the
      mean selected rank and its standard error (``<metric>_se``, NaN for one replicate).
    """
    replicates: dict[tuple, list[Mapping]] = {}
    for job in jobs:
        if "test_rank" not in job:
            continue
        ident = tuple(
            (k, str(job[k]))
            for k in sorted(job)
            if not k.startswith("test_") and k not in ("step", "model.rank", "data.num_train")
        )
        replicates.setdefault((float(job["test_num_train"]), ident), []).append(job)
    by_n: dict[float, list[dict]] = {}
    for (num_train, _), members in replicates.items():
        picks = {}
        for metric, _ in CRITERIA:
            best = max(members, key=lambda j: float(j[metric]))
            picks[metric] = float(best["test_rank"])
        by_n.setdefault(num_train, []).append(picks)
    rows = []
    for num_train in sorted(by_n):
        picks = by_n[num_train]
        row = {"num_train": int(num_train), "n": len(picks)}
        for metric, _ in CRITERIA:
            values = np.array([p[metric] for p in picks])
            row[metric] = float(values.mean())
            row[f"{metric}_se"] = (
                float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan
            )
        rows.append(row)
    return rows


def sweep_report(jobs: Sequence[Mapping], path: str) -> None:
    """A sweep's ``report.png``: the selected rank against ``N`` per criterion, and
    ``selected_rank.md`` beside it."""
    rows = selected_ranks(jobs)
    if not rows:
        return
    lines = ["| N | replicates | " + " | ".join(label for _, label in CRITERIA) + " |"]
    lines.append("|" + " --- |" * (2 + len(CRITERIA)))
    for r in rows:
        cells = [
            f"{r[m]:.2f} +- {r[m + '_se']:.2f}" if not math.isnan(r[m + "_se"]) else f"{r[m]:.2f}"
            for m, _ in CRITERIA
        ]
        lines.append(f"| {r['num_train']} | {r['n']} | " + " | ".join(cells) + " |")
    with open(os.path.join(os.path.dirname(os.path.abspath(path)), "selected_rank.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for i, (metric, label) in enumerate(CRITERIA):
        ax.errorbar(
            [r["num_train"] * (1 + 0.04 * (i - 1)) for r in rows],
            [r[metric] for r in rows],
            yerr=[np.nan_to_num(r[f"{metric}_se"]) for r in rows],
            fmt="o-",
            capsize=3,
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("training examples N")
    ax.set_ylabel("selected rank")
    ax.legend(fontsize=8)
    ax.set_title("PPCA rank chosen by each criterion (mean \u00b1 SE over replicates)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


register_objective(
    "ppca_elbo",
    make,
    defaults=DEFAULTS,
    doc="ELBO of PPCA with q(W) over the loadings (rank selection); a lower bound on log p(X)",
)
