"""Contrastive MI estimators as one objective, ``mi_bound``, for the MI staircase.

``objective.estimator`` selects what trains the critic and what is reported (``mi``, the
estimate on the training batch, in nats), as in Poole et al. (2019) and Song & Ermon
(2020):

=============  ==========================================  ==================================
estimator      trains on                                   reports (``mi``)
=============  ==========================================  ==================================
infonce        InfoNCE                                     InfoNCE (at most log N)
nwj            NWJ                                         NWJ
tuba           TUBA with the learned baseline ``a(y)``     TUBA
interpolated   ``I_alpha`` with the learned baseline       ``I_alpha`` (``interpolated_alpha``)
js             the JS f-GAN objective                      NWJ of the critic plus one
dv             Donsker-Varadhan                            DV
mine           DV, moving-average gradient (MINE)          DV
smile          the JS f-GAN objective                      DV clipped at ``smile_clip``
=============  ==========================================  ==================================

MINE's moving average (``mine_decay``) lives in the model (:class:`~vbounds.lab.models.mi.
MICritic`), so the loop carries it in ``state["rest"]`` and a resumed run continues it.

Logged on training batches: ``mi`` and ``true_mi`` (the batch's true MI, when the data
carry it). The test evaluation scores held-out batches of pairs with ``vb.mi.from_critic``
(the bound that is reported, at the evaluation batch size) and keeps those drawn at the
level the critic is training on: ``test_mi`` (their mean), ``test_mi_stderr`` (its standard
error over batches) and ``test_true_mi``. The run's ``report.png`` draws the estimate
against the true MI over the steps; the sweep's draws the estimate at the end of each
level against the true MI (Poole et al.'s figure) and writes the per-level values to
``staircase.md`` and ``staircase.csv`` beside it.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.objectives.base import Objective
from vbounds.lab.registry import register_objective

ESTIMATORS = ("infonce", "nwj", "tuba", "interpolated", "js", "dv", "mine", "smile")
#: The bound of ``vb.mi.from_critic`` that evaluates each estimator's reported value.
EVAL_BOUNDS = {
    "infonce": "infonce",
    "nwj": "nwj",
    "tuba": "tuba",
    "interpolated": "interpolated",
    "js": "js_mi",
    "dv": "dv",
    "mine": "dv",
    "smile": "smile",
}
_BASELINE = ("tuba", "interpolated")

#: Declared hyperparameters of ``mi_bound``.
DEFAULTS = {
    "estimator": "infonce",
    "smile_clip": 5.0,
    "interpolated_alpha": 0.01,
    "mine_decay": 0.99,
    # Reports: the per-level estimate averages the training rows of the last `tail` steps.
    "tail": 500,
    # Held-out evaluation: rows of a batch scored at once by vb.mi.from_critic (None: all).
    "eval_chunk_size": None,
}


def _number(config, key: str, *, low: float, high: float, low_open: bool, high_open: bool):
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"objective.{key} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"objective.{key} must lie in {interval}, got {value!r}")


def _check(config) -> None:
    if config.estimator not in ESTIMATORS:
        raise ValueError(
            f"objective.estimator must be one of {', '.join(ESTIMATORS)}, got {config.estimator!r}"
        )
    _number(config, "smile_clip", low=0.0, high=math.inf, low_open=False, high_open=True)
    _number(config, "interpolated_alpha", low=0.0, high=1.0, low_open=True, high_open=False)
    _number(config, "mine_decay", low=0.0, high=1.0, low_open=False, high_open=True)
    tail = config.tail
    if isinstance(tail, bool) or not isinstance(tail, int) or tail < 1:
        raise ValueError(f"objective.tail must be a positive int (steps), got {tail!r}")
    chunk = config.eval_chunk_size
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"objective.eval_chunk_size must be a positive int or None, got {chunk!r}")


def estimate(model, x, y, config) -> tuple[jax.Array, jax.Array]:
    """The trained objective and the reported estimate of ``config.estimator`` on a batch.

    For ``mine`` the model's moving average is read and updated (the new state is
    stored in the model).

    Args:
      model: an :class:`~vbounds.lab.models.mi.MICritic` (``critic``, ``baseline`` and,
        for ``mine``, ``mine_state`` / ``set_mine_state``).
      x: ``[N, dx]`` first elements of the pairs.
      y: ``[N, dy]`` second elements.
      config: the ``objective`` section.

    Returns:
      ``(trained, reported)``: the value whose gradient trains the critic, and the MI
      estimate in nats.
    """
    scores = model.critic(x, y)
    name = config.estimator
    if name == "smile":
        # Song & Ermon: the JS gradient trains the critic; the clipped DV value is reported.
        return vb.mi.js(scores), vb.mi.smile(scores, config.smile_clip)
    if name == "mine":
        value, state = vb.mi.mine(scores, model.mine_state, decay=config.mine_decay)
        model.set_mine_state(state)
        return value, value
    if name == "tuba":
        value = vb.mi.tuba(scores, model.baseline(y))
    elif name == "interpolated":
        value = vb.mi.interpolated(scores, model.baseline(y), alpha=config.interpolated_alpha)
    elif name == "js":
        value = vb.mi.js_mi(scores)  # the JS gradient, the value of NWJ on the critic + 1
    else:
        value = getattr(vb.mi, name)(scores)
    return value, value


def held_out_estimate(model, x, y, config, *, chunk_size: int | None = None) -> jax.Array:
    """The reported estimate of ``config.estimator`` on a batch, through
    ``vb.mi.from_critic`` (blocks of ``chunk_size`` rows; MINE's value is DV's)."""
    bound = EVAL_BOUNDS[config.estimator]
    n = x.shape[0]
    kwargs = {"chunk_size": None if chunk_size is None else min(chunk_size, n)}
    if bound in _BASELINE:
        kwargs["log_baseline"] = model.baseline(y)
    if bound == "interpolated":
        kwargs["alpha"] = config.interpolated_alpha
    if bound == "smile":
        kwargs["clip"] = config.smile_clip
    return vb.mi.from_critic(model.critic, x, y, bound=bound, **kwargs)


def _same(a, b):
    """Whether two true-MI values are the same level (float32 means of equal values)."""
    return jnp.abs(a - b) <= 1e-5 * jnp.maximum(1.0, jnp.abs(b))


def make(config) -> Objective:
    """The ``mi_bound`` objective of an ``objective`` section.

    Args:
      config: the section, completed with :data:`DEFAULTS`.

    Returns:
      An :class:`~vbounds.lab.objectives.Objective` with the held-out evaluation and
      the staircase reports.
    """
    _check(config)

    def loss(model, batch, key):
        del key
        trained, reported = estimate(model, batch["x"], batch["y"], config)
        metrics = {"mi": jax.lax.stop_gradient(reported)}
        if "true_mi" in batch:
            true_mi = jnp.mean(batch["true_mi"])
            metrics["true_mi"] = true_mi
            if hasattr(model, "trained_mi"):
                model.trained_mi[...] = true_mi.astype(model.trained_mi[...].dtype)
        return -trained, metrics

    def evaluate(model, batch, key):
        del key
        x, y = batch["x"], batch["y"]
        n = x.shape[0]
        value = held_out_estimate(model, x, y, config, chunk_size=config.eval_chunk_size)
        outputs = {"mi": jnp.full((n,), value), "batch_share": jnp.full((n,), 1.0 / n)}
        if "true_mi" in batch:
            true_mi = batch["true_mi"]
            one_level = jnp.all(_same(true_mi, true_mi[0]))
            trained = model.trained_mi[...] if hasattr(model, "trained_mi") else true_mi[0]
            outputs["true_mi"] = true_mi
            outputs["at_trained_level"] = jnp.full((n,), one_level & _same(true_mi[0], trained))
        return jax.lax.stop_gradient(outputs)

    return Objective(
        loss=loss,
        evaluate=evaluate,
        summarize=summarize,
        report=lambda rows, path, **kw: plot_run_report(rows, path, tail=config.tail, **kw),
        sweep_report=lambda jobs, path: sweep_report(jobs, path, tail=config.tail),
    )


def summarize(outputs: Mapping) -> dict:
    """The held-out estimate at the level being trained: mean and standard error over
    the evaluation batches drawn at that level (a batch that mixes levels is left out).

    Returns:
      ``test_mi``, ``test_mi_stderr`` and, when the data carry it, ``test_true_mi`` (NaN
      when no evaluation batch lies at the trained level).
    """
    mi = np.asarray(outputs["mi"], np.float64)
    share = np.asarray(outputs["batch_share"], np.float64)
    keep = np.ones(mi.shape, bool)
    if "at_trained_level" in outputs:
        keep = np.asarray(outputs["at_trained_level"], bool)
    summary = {"test_mi": math.nan, "test_mi_stderr": math.nan}
    if "true_mi" in outputs:
        summary["test_true_mi"] = math.nan
    if not keep.any():
        return summary
    # Each batch's value is repeated on its rows: the mean over rows is the mean over
    # batches, and sum(share) counts the batches.
    num_batches = float(np.sum(share[keep]))
    mean = float(np.mean(mi[keep]))
    summary["test_mi"] = mean
    if num_batches > 1:
        variance = float(np.mean((mi[keep] - mean) ** 2)) * num_batches / (num_batches - 1)
        summary["test_mi_stderr"] = math.sqrt(variance / num_batches)
    if "true_mi" in outputs:
        summary["test_true_mi"] = float(np.mean(np.asarray(outputs["true_mi"])[keep]))
    return summary


# Reports -------------------------------------------------------------------------------


def _float(value) -> float:
    """A logged number (non-finite ones are logged as strings) as a float."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _runs(rows: Sequence[Mapping], key: str) -> list[list[Mapping]]:
    """Consecutive rows with the same ``key`` value (a level of the staircase)."""
    groups: list[list[Mapping]] = []
    for row in rows:
        value = _float(row[key])
        if groups and math.isclose(_float(groups[-1][-1][key]), value, rel_tol=1e-5, abs_tol=1e-5):
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def level_estimates(rows: Iterable[Mapping], *, tail: int) -> list[dict]:
    """The estimate at the end of each level, from the rows of ``metrics.jsonl``.

    Training rows (``mi`` and ``true_mi``, each the mean over the steps since the
    previous row) are grouped into levels by ``true_mi``. For each level: ``train_mi``,
    the mean of ``mi`` over the rows that end in the level's last ``tail`` steps
    (weighted by the steps each row covers), and ``train_mi_se``, its standard error
    from those row means (batch means: each row averages ``log_every`` steps, so the
    correlation between nearby steps is taken into account; NaN with one row). The
    level's last test row, when there is one, gives the held-out ``test_mi`` and
    ``test_mi_se``.

    Args:
      rows: the rows of a run's ``metrics.jsonl``.
      tail: steps at the end of each level that its estimate averages.

    Returns:
      One dict per level: ``true_mi``, ``end_step``, ``train_mi``, ``train_mi_se``,
      ``tail_rows``, ``test_mi``, ``test_mi_se``.
    """
    rows = sorted((dict(r) for r in rows), key=lambda r: r["step"])
    train = [r for r in rows if "mi" in r and "true_mi" in r]
    test = [r for r in rows if "test_mi" in r and "test_true_mi" in r]
    levels = []
    previous_step = 0
    for group in _runs(train, "true_mi"):
        end = group[-1]["step"]
        covered, means = [], []
        for row in group:
            steps = row["step"] - previous_step
            previous_step = row["step"]
            if row["step"] > end - tail:
                covered.append(steps)
                means.append(_float(row["mi"]))
        means = np.asarray(means)
        weights = np.asarray(covered, np.float64)
        se = math.nan
        if means.size > 1:
            se = float(np.std(means, ddof=1) / math.sqrt(means.size))
        levels.append(
            {
                "true_mi": _float(group[0]["true_mi"]),
                "end_step": end,
                "train_mi": float(np.sum(weights * means) / np.sum(weights)),
                "train_mi_se": se,
                "tail_rows": int(means.size),
                "test_mi": math.nan,
                "test_mi_se": math.nan,
            }
        )
    # The held-out value of a level: its last evaluation (matched to the levels in order).
    index = 0
    for group in _runs(test, "test_true_mi"):
        last = group[-1]
        value = _float(last["test_true_mi"])
        while index < len(levels) and not math.isclose(
            levels[index]["true_mi"], value, rel_tol=1e-5, abs_tol=1e-5
        ):
            index += 1
        if index == len(levels):
            break
        levels[index]["test_mi"] = _float(last["test_mi"])
        levels[index]["test_mi_se"] = _float(last.get("test_mi_stderr"))
        index += 1
    return levels


def _read_config(directory: str) -> dict:
    path = os.path.join(directory, "config.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _describe(config: Mapping) -> str:
    if not config:
        return ""
    estimator = config.get("objective", {}).get("estimator", "?")
    critic = config.get("model", {}).get("critic", "?")
    variant = "y^3" if config.get("data", {}).get("cubic") else "y"
    return f"{estimator}, {critic} critic, {variant}, batch {config.get('batch_size', '?')}"


def _ylim(true_values: Sequence[float]) -> tuple[float, float]:
    top = max(true_values, default=10.0)
    return -1.0, top + max(4.0, 0.4 * top)


def _on_scale(means, errors, low: float, high: float):
    """Means clipped to ``[low, high]``, their error bars (none off the scale or NaN),
    and where they went off it (drawn as triangles at the edge by :func:`_mark_off`)."""
    means = np.asarray(means, np.float64)
    errors = np.nan_to_num(np.asarray(errors, np.float64), nan=0.0)
    off = (means < low) | (means > high) | ~np.isfinite(means)
    return np.clip(np.nan_to_num(means, nan=low), low, high), np.where(off, 0.0, errors), off


def _mark_off(ax, x, means, off, high: float, **style) -> None:
    x, means = np.asarray(x), np.asarray(means)
    for marker, where in (("^", off & (means >= high)), ("v", off & (means < high))):
        if where.any():
            ax.plot(x[where], means[where], marker, ls="none", ms=7, clip_on=False, **style)


def plot_run_report(rows, path: str, *, tail: int, model=None, key=None, title: str = "") -> None:
    """A run's ``report.png``: the estimate against the true MI over the steps.

    Left: the training-batch estimate (each point a logged row's mean), the true MI and
    the held-out estimates (with standard errors) at the evaluations; ``log(batch)`` is
    dashed when ``config.json`` sits beside ``path``. Right: the estimate at the end of
    each level (:func:`level_estimates`) against the true MI. Values beyond the axes (a
    diverged estimator) are drawn at the edge, as triangles where they are means.
    """
    del model, key
    rows = [dict(r) for r in rows]
    config = _read_config(os.path.dirname(os.path.abspath(path)))
    train = [r for r in rows if "mi" in r and "true_mi" in r]
    test = [r for r in rows if "test_mi" in r]
    levels = level_estimates(rows, tail=tail)
    fig = Figure(figsize=(12, 4.2))
    ax_steps, ax_levels = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    low, high = _ylim([r["true_mi"] for r in train])
    if train:
        steps = [r["step"] for r in train]
        estimate = np.clip([_float(r["mi"]) for r in train], low, high)
        ax_steps.plot(steps, estimate, color="C0", lw=0.8, label="estimate (training batches)")
        ax_steps.step(steps, [r["true_mi"] for r in train], where="pre", color="k", label="true MI")
    if test:
        steps = [r["step"] for r in test]
        means, errors, off = _on_scale(
            [_float(r["test_mi"]) for r in test],
            [_float(r.get("test_mi_stderr")) for r in test],
            low,
            high,
        )
        ax_steps.errorbar(
            steps, means, yerr=errors, fmt="o", color="C3", ms=4, capsize=3, label="held-out"
        )
        _mark_off(ax_steps, steps, means, off, high, color="C3")
    batch = config.get("batch_size")
    for ax in (ax_steps, ax_levels):
        if batch:
            ax.axhline(math.log(batch), color="gray", ls="--", lw=0.8, label=f"log {batch}")
        ax.set_ylim(low, high)
    ax_steps.set_xlabel("step")
    ax_steps.set_ylabel("nats")
    ax_steps.legend(fontsize=7, loc="upper left")
    ax_steps.set_title("estimate over the steps")
    if levels:
        truth = [lv["true_mi"] for lv in levels]
        ax_levels.plot(truth, truth, color="k", lw=1.0, label="true MI")
        means, errors, off = _on_scale(
            [lv["train_mi"] for lv in levels], [lv["train_mi_se"] for lv in levels], low, high
        )
        ax_levels.errorbar(
            truth,
            means,
            yerr=errors,
            marker="o",
            color="C0",
            capsize=3,
            label=f"training, last {tail} steps",
        )
        _mark_off(ax_levels, truth, means, off, high, color="C0")
        held = [(t, lv["test_mi"]) for t, lv in zip(truth, levels, strict=True)]
        held = [(t, v) for t, v in held if not math.isnan(v)]
        if held:
            x, values = (np.asarray(a) for a in zip(*held, strict=True))
            values, _, off = _on_scale(values, np.zeros_like(values), low, high)
            ax_levels.plot(x, values, "s", color="C3", ms=4, label="held-out, end of level")
            _mark_off(ax_levels, x, values, off, high, color="C3")
        ax_levels.set_xlabel("true MI (nats)")
        ax_levels.legend(fontsize=7, loc="upper left")
    ax_levels.set_title("estimate at the end of each level")
    fig.suptitle(" / ".join(t for t in (title, _describe(config)) if t))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _job_dir(sweep_dir: str, job: Mapping) -> str:
    """The directory of a sweep job (``vbounds.lab.sweep`` names it by its swept keys,
    which come first in the job's dict)."""
    from vbounds.lab.sweep import job_name

    keys = [k for k in job if not k.startswith("test_") and k != "step"]
    return os.path.join(sweep_dir, job_name({k: str(job[k]) for k in keys}, keys))


def _cell(mean: float, se: float) -> str:
    def number(v):
        return f"{v:.2f}" if abs(v) < 1e3 else f"{v:.2g}"

    if math.isnan(mean):
        return ""
    return number(mean) if math.isnan(se) else f"{number(mean)} +- {number(se)}"


def sweep_report(jobs: Sequence[Mapping], path: str, *, tail: int) -> None:
    """A sweep's ``report.png`` (the estimate at the end of each level against the true
    MI: one panel per estimator, one line per critic, dashed for ``y^3``, with
    ``log(batch)``; a value off the scale is a triangle at the edge) and, beside it,
    ``staircase.md`` and ``staircase.csv``: per job and level, the training estimate of
    the last ``tail`` steps and the held-out estimate.

    The values come from each finished job's ``metrics.jsonl`` and ``config.json``.
    """
    sweep_dir = os.path.dirname(os.path.abspath(path))
    records = []
    for job in jobs:
        directory = _job_dir(sweep_dir, job)
        config = _read_config(directory)
        rows = _read_rows(os.path.join(directory, "metrics.jsonl"))
        if not config or not rows:
            continue
        swept = {k: job[k] for k in job if not k.startswith("test_") and k != "step"}
        records.append(
            {
                "swept": swept,
                "estimator": config["objective"]["estimator"],
                "critic": config["model"]["critic"],
                "variant": "cubic" if config["data"].get("cubic") else "gaussian",
                "batch_size": config["batch_size"],
                "levels": level_estimates(rows, tail=tail),
            }
        )
    if not records:
        return
    _write_tables(records, sweep_dir, tail)
    _plot_sweep(records, path)


def _read_rows(path: str) -> list[dict]:
    from vbounds.lab.metrics import read_metrics

    return read_metrics(path)


def _write_tables(records: list[dict], sweep_dir: str, tail: int) -> None:
    truth = sorted({lv["true_mi"] for r in records for lv in r["levels"]})
    head = ["critic", "variant", "estimator", *(f"MI={t:g}" for t in truth)]
    lines = [
        "# Estimate at the end of each level",
        "",
        f"Training batches: mean over the last {tail} steps of the level +- its standard error "
        "(batch means over the logged rows). Held-out: the evaluation at the end of the level "
        "(mean over held-out batches +- standard error).",
        "",
    ]
    for label, mean_key, se_key in (
        ("Training batches", "train_mi", "train_mi_se"),
        ("Held-out pairs", "test_mi", "test_mi_se"),
    ):
        lines += [f"## {label}", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for r in records:
            by_truth = {lv["true_mi"]: lv for lv in r["levels"]}
            cells = [
                _cell(by_truth[t][mean_key], by_truth[t][se_key]) if t in by_truth else ""
                for t in truth
            ]
            lines.append(
                f"| {r['critic']} | {r['variant']} | {r['estimator']} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    with open(os.path.join(sweep_dir, "staircase.md"), "w") as f:
        f.write("\n".join(lines))
    fields = ["critic", "variant", "estimator", "true_mi", "end_step", "train_mi", "train_mi_se"]
    fields += ["tail_rows", "test_mi", "test_mi_se"]
    with open(os.path.join(sweep_dir, "staircase.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            for lv in r["levels"]:
                writer.writerow({**{k: r[k] for k in ("critic", "variant", "estimator")}, **lv})


def _plot_sweep(records: list[dict], path: str) -> None:
    estimators = [e for e in ESTIMATORS if any(r["estimator"] == e for r in records)]
    critics = list(dict.fromkeys(r["critic"] for r in records))
    cols = min(4, len(estimators))
    nrows = -(-len(estimators) // cols)
    fig = Figure(figsize=(3.0 * cols, 2.8 * nrows + 0.5))
    axes = fig.subplots(nrows, cols, sharex=True, sharey=True, squeeze=False)
    truth_all = sorted({lv["true_mi"] for r in records for lv in r["levels"]})
    low, high = _ylim(truth_all)
    batches = sorted({r["batch_size"] for r in records})
    for ax in axes.flat[len(estimators) :]:
        ax.set_visible(False)
    for i, estimator in enumerate(estimators):
        ax = axes.flat[i]
        ax.plot(truth_all, truth_all, color="k", lw=1.0, label="true MI")
        for batch in batches:
            ax.axhline(math.log(batch), color="gray", ls=":", lw=0.9, label=f"log {batch}")
        for r in records:
            if r["estimator"] != estimator:
                continue
            truth = [lv["true_mi"] for lv in r["levels"]]
            means, errors, off = _on_scale(
                [lv["train_mi"] for lv in r["levels"]],
                [lv["train_mi_se"] for lv in r["levels"]],
                low,
                high,
            )
            color = f"C{critics.index(r['critic'])}"
            _mark_off(ax, truth, means, off, high, color=color)
            ax.errorbar(
                truth,
                means,
                yerr=errors,
                color=color,
                ls="--" if r["variant"] == "cubic" else "-",
                marker="o",
                ms=3,
                lw=1.0,
                capsize=2,
                label=f"{r['critic']}" + (" (y^3)" if r["variant"] == "cubic" else ""),
            )
        ax.set_title(estimator)
        ax.set_ylim(low, high)
        if i % cols == 0:
            ax.set_ylabel("estimate (nats)")
        if i // cols == nrows - 1 or i + cols >= len(estimators):
            ax.set_xlabel("true MI (nats)")
    handles, labels = {}, []
    for ax in axes.flat[: len(estimators)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    fig.legend(
        [handles[lab] for lab in labels],
        labels,
        loc="lower center",
        ncol=min(6, len(labels)),
        fontsize=8,
    )
    fig.suptitle("estimate at the end of each level (training batches, mean over the level's tail)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=100)


register_objective(
    "mi_bound",
    make,
    defaults=DEFAULTS,
    doc="a contrastive MI estimator (objective.estimator: infonce, nwj, ..., smile)",
)
