"""Sweeps: a grid of config overrides, one process per point, a summary.

Each point runs the config's ``entry_point`` module (``experiments.main`` when the config
has none), e.g. ``experiments.mi_gaussian`` for the MI staircase.
"""

import csv
import importlib.util
import itertools
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence

import numpy as np

from vbounds.training.report import TEST_METRICS, plot_grouped, read_metrics


def parse_sweep(specs: Iterable[str]) -> list[dict[str, str]]:
    """Expands ``"key=v1,v2"`` specs into the grid of their combinations.

    Args:
      specs: strings ``"a.b=v1,v2,..."``; several specs form a Cartesian product.

    Returns:
      One ``{key: value}`` dict per grid point (values as strings, for ``--config.key``).
    """
    axes = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ValueError(f"sweep spec must look like 'a.b=v1,v2', got {spec!r}")
        axes.append([(key, v.strip()) for v in values.split(",") if v.strip()])
    keys = [axis[0][0] for axis in axes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"sweep specs name a key twice: {keys}")
    return [dict(point) for point in itertools.product(*axes)]


def job_name(point: dict[str, str]) -> str:
    """A directory-safe name for a grid point, e.g. ``objective.num_samples=5,seed=0``."""
    return ",".join(f"{k}={v}" for k, v in point.items()).replace("/", "_") or "default"


DEFAULT_ENTRY_POINT = "experiments.main"


def entry_point(config_path: str) -> str:
    """The module a config's jobs run: its ``entry_point`` field, else ``experiments.main``."""
    spec = importlib.util.spec_from_file_location("_sweep_config", config_path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load a config from {config_path!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.get_config().get("entry_point", DEFAULT_ENTRY_POINT))


def job_command(
    config_path: str,
    workdir: str,
    point: dict[str, str],
    entry: str = DEFAULT_ENTRY_POINT,
) -> list[str]:
    """The command line of one grid point: ``python -m <entry> --config=.. --workdir=..``."""
    overrides = [f"--config.{k}={v}" for k, v in point.items()]
    return [
        sys.executable,
        "-m",
        entry,
        f"--config={config_path}",
        f"--workdir={workdir}",
        *overrides,
    ]


def run_sweep(
    config_path: str,
    workdir: str,
    points: Sequence[dict[str, str]],
    *,
    parallel: int = 1,
    entry: str = DEFAULT_ENTRY_POINT,
) -> list[int]:
    """Runs every grid point as a local process (``python -m entry``), ``parallel`` at a time.

    Each job writes into ``workdir/<job_name>`` (a rerun resumes it) and its output
    into ``log.txt`` there.

    Returns:
      The jobs' exit codes, in grid order.
    """
    if parallel < 1:
        raise ValueError(f"parallel must be a positive int, got {parallel}")
    running: list[tuple[int, subprocess.Popen, object]] = []
    codes: dict[int, int] = {}
    for index, point in enumerate(points):
        _wait_while_full(running, codes, limit=parallel)
        job_dir = os.path.join(workdir, job_name(point))
        os.makedirs(job_dir, exist_ok=True)
        log = open(os.path.join(job_dir, "log.txt"), "a")
        print(f"[{index + 1}/{len(points)}] {job_name(point)}", flush=True)
        proc = subprocess.Popen(
            job_command(config_path, job_dir, point, entry), stdout=log, stderr=subprocess.STDOUT
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
    rows = [r for r in read_metrics(os.path.join(job_dir, "metrics.jsonl")) if TEST_METRICS[0] in r]
    return rows[-1] if rows else None


def summarize_sweep(
    workdir: str, points: Sequence[dict[str, str]], *, group_out: str = "seed"
) -> list[dict]:
    """Writes ``summary.csv`` (one row per job) and ``summary.md`` / ``summary.png``
    (mean and standard error over ``group_out``, e.g. seeds) into ``workdir``.

    Returns:
      The grouped rows: the swept values other than ``group_out``, ``n``, and for each
      test metric its mean and standard error (``nan`` with one job).
    """
    jobs = []
    for point in points:
        result = final_results(os.path.join(workdir, job_name(point)))
        if result is not None:
            jobs.append(
                {
                    **point,
                    **{k: result[k] for k in TEST_METRICS if k in result},
                    "step": result["step"],
                }
            )
    keys = [k for k in (points[0] if points else {}) if k != group_out]
    if jobs:
        with open(os.path.join(workdir, "summary.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(jobs[0]))
            writer.writeheader()
            writer.writerows(jobs)
    groups: dict[tuple, list[dict]] = {}
    for job in jobs:
        groups.setdefault(tuple(job[k] for k in keys), []).append(job)
    grouped = []
    for values, members in groups.items():
        row = dict(zip(keys, values, strict=True))
        row["n"] = len(members)
        for metric in TEST_METRICS:
            data = np.array([m[metric] for m in members if metric in m], dtype=float)
            if data.size:
                row[metric] = float(np.mean(data))
                row[f"{metric}_se"] = (
                    float(np.std(data, ddof=1) / math.sqrt(data.size))
                    if data.size > 1
                    else math.nan
                )
        grouped.append(row)
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write(format_grouped(grouped, keys))
    if grouped:
        plot_grouped(grouped, keys, os.path.join(workdir, "summary.png"))
    return grouped


def format_grouped(grouped: Sequence[dict], keys: Sequence[str]) -> str:
    """A markdown table of grouped sweep results, ``mean +- se`` per test metric."""
    metrics = [m for m in TEST_METRICS if any(m in row for row in grouped)]
    header = [*keys, "n", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in grouped:
        cells = [str(row[k]) for k in keys] + [str(row["n"])]
        cells += [f"{row[m]:.2f} +- {row[m + '_se']:.2f}" if m in row else "" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
