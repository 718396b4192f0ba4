"""Run outputs: the metrics log, the report figure and the summary table."""

import json
import os
from collections.abc import Iterable, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Headline test metrics, in table order.
TEST_METRICS = ("test_log_likelihood", "test_bound", "test_elbo", "test_active_units")


class MetricsLog:
    """Appends one JSON object per logged step to ``metrics.jsonl``.

    On resume the rows after the restored step are dropped, so a resumed run's log is
    the uninterrupted run's log.
    """

    def __init__(self, path: str, *, resume_step: int, enabled: bool = True):
        """Opens the log.

        Args:
          path: the ``metrics.jsonl`` path.
          resume_step: rows with ``step`` above it are discarded (0 for a fresh run).
          enabled: false on processes other than the first (nothing is written).
        """
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        kept = [row for row in read_metrics(path) if row["step"] <= resume_step]
        with open(path, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in kept)

    def write(self, row: Mapping) -> None:
        """Appends ``row`` (which must hold ``step``)."""
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(dict(row)) + "\n")


def read_metrics(path: str) -> list[dict]:
    """Reads a ``metrics.jsonl`` file (an empty list when it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_report(rows: Iterable[Mapping], path: str, *, title: str = "") -> None:
    """Draws the learning curves and the final test bounds into ``path`` (a PNG).

    Args:
      rows: the rows of ``metrics.jsonl``.
      path: output image path.
      title: figure title (e.g. the model and objective).
    """
    rows = list(rows)
    train = [r for r in rows if "loss" in r]
    test = [r for r in rows if "test_log_likelihood" in r]
    fig, (ax_train, ax_test) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        steps = [r["step"] for r in train]
        ax_train.plot(steps, [-r["loss"] for r in train], label="-loss (objective)")
        if "elbo" in train[0]:
            ax_train.plot(steps, [r["elbo"] for r in train], label="ELBO (train batch)", alpha=0.7)
        ax_train.set_xlabel("step")
        ax_train.set_ylabel("nats")
        ax_train.set_title("training")
        ax_train.legend()
    if test:
        steps = [r["step"] for r in test]
        for key, label in (("test_log_likelihood", "log p(x) (IS)"), ("test_bound", "bound")):
            ax_test.plot(steps, [r[key] for r in test], marker="o", label=label)
        final = test[-1]
        ax_test.set_title(
            f"test: final log p(x) = {final['test_log_likelihood']:.2f} nats, "
            f"bound = {final['test_bound']:.2f}"
        )
        ax_test.set_xlabel("step")
        ax_test.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_table(results: Mapping[str, float], *, keys: Iterable[str] = TEST_METRICS) -> str:
    """A two-column markdown table of the final test metrics (nats)."""
    lines = ["| metric | value |", "| --- | --- |"]
    lines += [
        f"| {k} | {results[k]:.3f} |"
        if isinstance(results[k], float)
        else f"| {k} | {results[k]} |"
        for k in keys
        if k in results
    ]
    return "\n".join(lines)


def plot_grouped(grouped, keys, path: str) -> None:
    """Plots each grouped sweep point's test metrics with standard-error bars."""
    labels = [", ".join(f"{k.split('.')[-1]}={row[k]}" for k in keys) or "all" for row in grouped]
    metrics = [m for m in ("test_log_likelihood", "test_bound") if m in grouped[0]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        means = [row[metric] for row in grouped]
        errors = [row.get(f"{metric}_se", 0.0) for row in grouped]
        errors = [0.0 if e != e else e for e in errors]  # nan (one seed) draws no bar
        ax.errorbar(range(len(grouped)), means, yerr=errors, fmt="o", capsize=4)
        ax.set_xticks(range(len(grouped)), labels, rotation=30, ha="right")
        ax.set_ylabel(f"{metric} (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
