"""Tabulates and plots the SVGD and mean-field sweeps side by side (no training).

    python experiments/results/svgd_breast_cancer/compare.py \\
        runs/svgd_breast_cancer runs/mfvi_breast_cancer experiments/results/svgd_breast_cancer

Reads each sweep's ``summary.csv`` (one row per seed), prints a markdown table of mean +-
standard error over seeds and writes ``comparison.png``.
"""

import csv
import math
import os
import sys

import numpy as np
from matplotlib.figure import Figure

METRICS = (
    ("test_log_lik", "test log-likelihood (nats / point)"),
    ("test_accuracy", "test accuracy"),
    ("test_ece", "expected calibration error"),
)


def _rows(sweep_dir):
    with open(os.path.join(sweep_dir, "summary.csv")) as f:
        return list(csv.DictReader(f))


def main(svgd_dir, mfvi_dir, out_dir):
    methods = {"SVGD (50 particles)": _rows(svgd_dir), "mean-field ELBO": _rows(mfvi_dir)}
    stats = {}
    print("| method | seeds | " + " | ".join(m for m, _ in METRICS) + " |")
    print("| --- | --- |" + " --- |" * len(METRICS))
    for method, rows in methods.items():
        cells = []
        for metric, _ in METRICS:
            values = np.array([float(r[metric]) for r in rows])
            se = np.std(values, ddof=1) / math.sqrt(len(values))
            stats[method, metric] = (values.mean(), se)
            cells.append(f"{values.mean():.4f} ± {se:.4f}")
        print(f"| {method} | {len(rows)} | " + " | ".join(cells) + " |")
    fig = Figure(figsize=(10, 3.2))
    for ax, (metric, label) in zip(fig.subplots(1, len(METRICS)), METRICS, strict=True):
        names = list(methods)
        for i, name in enumerate(names):
            mean, se = stats[name, metric]
            ax.errorbar([i], [mean], yerr=[se], fmt="o", color=f"C{i}", capsize=4)
            # each seed, to show the spread the standard error summarises
            seeds = [float(r[metric]) for r in methods[name]]
            ax.plot([i + 0.15] * len(seeds), seeds, ".", color=f"C{i}", alpha=0.5)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(label, fontsize=9)
    fig.suptitle("Bayesian logistic regression, breast cancer (mean ± s.e. over seeds)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "comparison.png"), dpi=90)


if __name__ == "__main__":
    main(*sys.argv[1:4])
