"""Sweeps: a grid of config overrides, one ``experiments.main`` process per point, a summary.

Each job is ``python -m experiments.main --config=<file> --workdir=<sweep>/<job>
--config.<key>=<value> ...`` (the fixed overrides, then the point's), so a model or
objective named by import path reaches the user's code in the job too. A rerun of the
sweep resumes each job from its checkpoints.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure

from vbounds.lab.metrics import read_metrics

ENTRY_POINT = "experiments.main"


def split_values(values: str) -> list[str]:
    """Splits ``"1,5,(64,64),[1,2]"`` on the commas outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", ""
    for char in values:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0 and not quote:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_sweep(specs: Iterable[str]) -> list[dict[str, str]]:
    """Expands ``"key=v1,v2"`` specs into the grid of their combinations.

    Args:
      specs: strings ``"a.b=v1,v2,..."``; several specs form a Cartesian product. A value
        may be a tuple, ``"model.hidden_sizes=(64,64),(128,128)"``: commas inside
        brackets or quotes do not split.

    Returns:
      One ``{key: value}`` dict per grid point (values as strings, for ``--config.key``).
    """
    axes = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ValueError(f"sweep spec must look like 'a.b=v1,v2', got {spec!r}")
        axes.append([(key, v) for v in split_values(values)])
    keys = [axis[0][0] for axis in axes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"sweep specs name a key twice: {keys}")
    return [dict(point) for point in itertools.product(*axes)]


def varying_keys(points: Sequence[dict[str, str]]) -> list[str]:
    """The keys that take more than one value over the grid."""
    keys = list(points[0]) if points else []
    return [k for k in keys if len({p[k] for p in points}) > 1]


def job_name(point: dict[str, str], keys: Sequence[str] | None = None) -> str:
    """A directory-safe name of a grid point from its ``keys`` (default: all of them),
    e.g. ``objective.num_samples=5,seed=0``; ``default`` when there are none."""
    keys = list(point) if keys is None else keys
    name = ",".join(f"{k}={point[k]}" for k in keys)
    return name.replace("/", "_").replace(" ", "") or "default"


def job_command(
    config_path: str, workdir: str, point: dict[str, str], overrides: Sequence[str] = ()
) -> list[str]:
    """The command line of one grid point (fixed overrides first, then the point's)."""
    return [
        sys.executable,
        "-m",
        ENTRY_POINT,
        f"--config={config_path}",
        f"--workdir={workdir}",
        *overrides,
        *(f"--config.{k}={v}" for k, v in point.items()),
    ]


def run_sweep(
    config_path: str,
    workdir: str,
    points: Sequence[dict[str, str]],
    *,
    parallel: int = 1,
    overrides: Sequence[str] = (),
) -> list[int]:
    """Runs every grid point as a local process, ``parallel`` at a time.

    Each job writes into ``workdir/<job_name>`` (a rerun resumes it) and its output
    into ``log.txt`` there.

    Args:
      config_path: the base config file.
      workdir: the sweep's directory.
      points: the grid (:func:`parse_sweep`).
      parallel: jobs run at once.
      overrides: ``--config.a.b=v`` arguments given to every job.

    Returns:
      The jobs' exit codes, in grid order.
    """
    if parallel < 1:
        raise ValueError(f"parallel must be a positive int, got {parallel}")
    keys = varying_keys(points)
    running: list[tuple[int, subprocess.Popen, object]] = []
    codes: dict[int, int] = {}
    for index, point in enumerate(points):
        _wait_while_full(running, codes, limit=parallel)
        job_dir = os.path.join(workdir, job_name(point, keys))
        os.makedirs(job_dir, exist_ok=True)
        log = open(os.path.join(job_dir, "log.txt"), "a")
        print(f"[{index + 1}/{len(points)}] {job_name(point, keys)}", flush=True)
        proc = subprocess.Popen(
            job_command(config_path, job_dir, point, overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        running.append((index, proc, log))
    _wait_while_full(running, codes, limit=1)
    return [codes[i] for i in range(len(points))]


def _wait_while_full(running: list, codes: dict, *, limit: int) -> None:
    """Reaps finished jobs until fewer than ``limit`` run (waits on the oldest)."""
    while len(running) >= limit:
        finished = [item for item in running if item[1].poll() is not None] or running[:1]
        for item in finished:
            index, proc, log = item
            codes[index] = proc.wait()
            log.close()
            running.remove(item)


def final_results(job_dir: str) -> dict | None:
    """The last test-evaluation row of a job's ``metrics.jsonl`` (``None`` if none)."""
    rows = [
        r
        for r in read_metrics(os.path.join(job_dir, "metrics.jsonl"))
        if any(k.startswith("test_") for k in r)
    ]
    return rows[-1] if rows else None


def job_error(job_dir: str) -> str:
    """The last line of a job's ``log.txt`` that reads like an error (for the summary)."""
    path = os.path.join(job_dir, "log.txt")
    if not os.path.exists(path):
        return "no log"
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    errors = [line for line in lines if "Error" in line or line.startswith("error")]
    return (errors or lines or ["empty log"])[-1][:300]


def summarize_sweep(
    workdir: str,
    points: Sequence[dict[str, str]],
    *,
    group_out: str = "seed",
    codes: Sequence[int] | None = None,
    sweep_report=None,
) -> list[dict]:
    """Writes ``summary.csv`` (one row per job), ``summary.md`` and ``summary.png`` (mean
    and standard error over ``group_out``, e.g. seeds) into ``workdir``.

    A job without a final test row, or whose exit code is non-zero, is listed in
    ``summary.md`` with its error instead of silently dropping out. ``sweep_report``
    (the objective's, when it has one) draws ``report.png`` from the finished jobs.

    Returns:
      The grouped rows: the varying keys other than ``group_out``, ``n``, and for each
      test metric its mean and, with more than one job, its standard error.
    """
    keys = varying_keys(points)
    jobs, failed = [], []
    for index, point in enumerate(points):
        job_dir = os.path.join(workdir, job_name(point, keys))
        result = final_results(job_dir)
        code = codes[index] if codes is not None else 0
        if result is None or code:
            failed.append((job_name(point, keys), code, job_error(job_dir)))
            continue
        metrics = {k: v for k, v in result.items() if k.startswith("test_")}
        jobs.append({**{k: point[k] for k in keys}, **metrics, "step": result["step"]})
    group_keys = [k for k in keys if k != group_out]
    metric_names = list(dict.fromkeys(k for job in jobs for k in job if k.startswith("test_")))
    if jobs:
        with open(os.path.join(workdir, "summary.csv"), "w", newline="") as f:
            fields = [*keys, *metric_names, "step"]
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(jobs)
    groups: dict[tuple, list[dict]] = {}
    for job in jobs:
        groups.setdefault(tuple(job[k] for k in group_keys), []).append(job)
    grouped = []
    for values, members in groups.items():
        row = dict(zip(group_keys, values, strict=True))
        row["n"] = len(members)
        for metric in metric_names:
            data = np.array(
                [m[metric] for m in members if isinstance(m.get(metric), int | float)], float
            )
            if data.size:
                row[metric] = float(np.mean(data))
                if data.size > 1:
                    row[f"{metric}_se"] = float(np.std(data, ddof=1) / math.sqrt(data.size))
        grouped.append(row)
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write(format_grouped(grouped, group_keys, metric_names, failed))
    if grouped:
        plot_grouped(grouped, group_keys, metric_names, os.path.join(workdir, "summary.png"))
    if jobs and sweep_report is not None:
        sweep_report(jobs, os.path.join(workdir, "report.png"))
    return grouped


def _cell(row: dict, metric: str) -> str:
    if metric not in row:
        return ""
    if f"{metric}_se" in row:
        return f"{row[metric]:.2f} +- {row[metric + '_se']:.2f}"
    return f"{row[metric]:.2f}"


def format_grouped(grouped, keys, metrics, failed=()) -> str:
    """A markdown table of grouped results (``mean +- se``; the mean alone for one job),
    followed by the failed jobs and their errors."""
    header = [*keys, "n", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in grouped:
        cells = [str(row[k]) for k in keys] + [str(row["n"])]
        lines.append("| " + " | ".join(cells + [_cell(row, m) for m in metrics]) + " |")
    if failed:
        lines += ["", f"**{len(failed)} job(s) failed:**", ""]
        lines += [f"- `{name}` (exit {code}): {error}" for name, code, error in failed]
    return "\n".join(lines) + "\n"


def plot_grouped(grouped, keys, metrics, path: str) -> None:
    """Each grouped point's test metrics with standard-error bars, one panel per metric."""
    labels = [", ".join(f"{k.split('.')[-1]}={row[k]}" for k in keys) or "all" for row in grouped]
    metrics = metrics[:6]
    fig = Figure(figsize=(4.5 * len(metrics), 4))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        means = [row.get(metric, math.nan) for row in grouped]
        errors = [row.get(f"{metric}_se", 0.0) for row in grouped]
        ax.errorbar(range(len(grouped)), means, yerr=errors, fmt="o", capsize=4)
        ax.set_xticks(range(len(grouped)), labels, rotation=30, ha="right")
        ax.set_ylabel(metric)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
