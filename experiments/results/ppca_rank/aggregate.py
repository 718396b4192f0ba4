"""Aggregates the PPCA rank sweeps under runs/: the table per (N, rank) and the report.

Usage, from the repository root, after the sweeps of README.md::

    python experiments/results/ppca_rank/aggregate.py \
        experiments/results/ppca_rank/report.png 2,3,4

writes ``report.png`` and ``selected_rank.md`` (the rank each criterion selects among the
listed ranks) and prints the markdown tables of README.md.
"""

import glob
import math
import os
import sys

import numpy as np

from vbounds.lab.objectives.ppca import sweep_report
from vbounds.lab.sweep import final_results


def _cell(values, digits=3):
    values = np.asarray(values, np.float64)
    if values.size == 1:
        return f"{values.mean():.{digits}f}"
    se = values.std(ddof=1) / math.sqrt(values.size)
    return f"{values.mean():.{digits}f} +- {se:.{digits}f}"


def main(path: str, ranks: set[int]) -> None:
    jobs = []
    for job_dir in sorted(glob.glob("runs/ppca_rank*/*/")):
        result = final_results(job_dir)
        if not result or int(result["test_rank"]) not in ranks:
            continue
        swept = dict(kv.split("=") for kv in os.path.basename(job_dir.rstrip("/")).split(","))
        metrics = {k: v for k, v in result.items() if k.startswith("test_")}
        jobs.append({"data.seed": swept["data.seed"], **metrics})
    sweep_report(jobs, path)
    groups = {}
    for job in jobs:
        groups.setdefault((int(job["test_num_train"]), int(job["test_rank"])), []).append(job)
    print("| N | rank | n | ELBO / N | max log-lik / N | held-out log-lik | KL(q(W) || p(W)) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (n, rank), members in sorted(groups.items()):
        cells = [
            _cell([j["test_elbo"] / n for j in members]),
            _cell([j["test_max_loglik"] / n for j in members]),
            _cell([j["test_heldout_loglik"] for j in members]),
            _cell([j["test_kl"] for j in members], 1),
        ]
        print(f"| {n} | {rank} | {len(members)} | " + " | ".join(cells) + " |")
    print()
    with open(os.path.join(os.path.dirname(path), "selected_rank.md")) as f:
        print(f.read())


if __name__ == "__main__":
    main(sys.argv[1], {int(r) for r in sys.argv[2].split(",")})
