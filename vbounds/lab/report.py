"""Run reports: ``report.png`` of a run, and the summary table of its final test metrics.

Figures are drawn on a ``matplotlib.figure.Figure`` directly: nothing here touches
pyplot's global backend, so importing the framework in a notebook changes nothing there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from matplotlib.figure import Figure


def split_rows(rows: Iterable[Mapping]) -> tuple[list[dict], list[dict]]:
    """The training rows (with ``loss``) and the test rows (with a ``test_*`` key)."""
    rows = [dict(r) for r in rows]
    train = [r for r in rows if "loss" in r]
    test = [r for r in rows if any(k.startswith("test_") for k in r)]
    return train, test


def job_labels(jobs: list[Mapping]) -> list[str]:
    """One label per sweep job from its swept values (``"seed=0, noise=uniform"``).

    The swept keys are those of a job's summary that are neither ``step`` nor a ``test_``
    metric; each is shown by its last dotted component.
    """
    if not jobs:
        return []
    swept = [k for k in jobs[0] if not k.startswith("test_") and k != "step"]
    return [", ".join(f"{k.split('.')[-1]}={job[k]}" for k in swept) or "job" for job in jobs]


def _numeric_keys(rows: list[dict], skip=("step", "wall_time")) -> list[str]:
    keys = []
    for row in rows:
        for k, v in row.items():
            if k not in skip and k not in keys and isinstance(v, int | float):
                keys.append(k)
    return keys


def _curves(ax, rows: list[dict], keys: list[str], **style) -> None:
    for key in keys:
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
        if points:
            ax.plot(*zip(*points, strict=True), label=key, **style)
    ax.set_xlabel("step")
    if keys:
        ax.legend(fontsize=7)


def plot_learning_curves(rows, path: str, *, model=None, key=None, title: str = "") -> None:
    """The default report: every logged training metric and every test metric over steps.

    Args:
      rows: the rows of ``metrics.jsonl``.
      path: output image path (PNG).
      model: unused (the signature of every report).
      key: unused.
      title: figure title.
    """
    del model, key
    train, test = split_rows(rows)
    fig = Figure(figsize=(11, 4))
    ax_train, ax_test = fig.subplots(1, 2)
    _curves(ax_train, train, _numeric_keys(train))
    ax_train.set_title("training batches")
    test_keys = [k for k in _numeric_keys(test) if k.startswith("test_")]
    _curves(ax_test, test, test_keys, marker="o")
    ax_test.set_title("test split")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_vae_report(rows, path: str, *, model=None, key=None, title: str = "") -> None:
    """The latent-variable-model report: the objective and the test ``log p(x)`` over steps.

    Left: the trained objective and the ELBO on training batches. Right: the test
    importance-sampled ``log p(x)``, the test ELBO and the trained objective, with the
    final values in the title (the objective is called a bound only when it is one).
    """
    del model, key
    train, test = split_rows(rows)
    fig = Figure(figsize=(11, 4))
    ax_train, ax_test = fig.subplots(1, 2)
    label = "bound" if train and "bound" in train[-1] else "objective (not a bound)"
    _curves(ax_train, train, [k for k in ("objective", "elbo") if train and k in train[0]])
    ax_train.set_title(f"training batches: {label}")
    ax_train.set_ylabel("nats")
    keys = ["test_log_likelihood", "test_elbo", "test_objective"]
    _curves(ax_test, test, [k for k in keys if test and k in test[-1]], marker="o")
    if test and "test_log_likelihood" in test[-1]:
        final = test[-1]
        ax_test.set_title(
            f"test: log p(x) = {final['test_log_likelihood']:.2f}, "
            f"ELBO = {final.get('test_elbo', float('nan')):.2f} nats"
        )
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def format_table(results: Mapping, *, keys: Iterable[str] | None = None) -> str:
    """A two-column markdown table of the final test metrics."""
    keys = [k for k in results if k.startswith("test_")] if keys is None else list(keys)
    lines = ["| metric | value |", "| --- | --- |"]
    for k in keys:
        if k in results:
            v = results[k]
            lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    return "\n".join(lines)
