"""Tables and figures of the toy2d sweeps (CFM and VDM on the 2-D toy densities).

    python experiments/results/toy2d/make_figures.py runs/toy2d_cfm runs/toy2d_vdm \\
        [runs/toy2d_vdm_learned]

reads each job's final test row (``metrics.jsonl``), prints the table of the README (mean
+- standard error over the seeds) and the per-seed numbers, and writes ``nll.png`` (each
seed's gap to the true entropy on ring8, its NLL on moons) and ``densities.png`` (for seed
0 of each density: the data, the CFM density and samples, the VDM bound's density and
samples) next to this file.
It reloads the trained models (``vbounds.lab.analysis.load_run``); no training here. A
fourth argument ``nll`` redraws ``nll.png`` only.
"""

from __future__ import annotations

import json
import math
import os
import sys

import jax
import numpy as np
from flax import nnx
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.analysis import load_run
from vbounds.lab.data.toy2d import ring8_log_prob
from vbounds.lab.objectives.toy2d import GRID_LIMIT, cfm_log_density, density_grid, vdm_bound

HERE = os.path.dirname(os.path.abspath(__file__))
DENSITIES = ("ring8", "moons")
SEEDS = (0, 1, 2)


def final_row(workdir: str) -> dict:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if "test_nll" in r][-1]


def job(sweep: str, density: str, seed: int) -> str:
    return os.path.join(sweep, f"data.density={density},seed={seed}")


def mean_se(values) -> str:
    values = np.asarray(values, np.float64)
    return f"{values.mean():.3f} ± {values.std(ddof=1) / math.sqrt(values.size):.3f}"


def table(cfm: str, vdm: str) -> dict:
    rows = {}
    print("| density | CFM, ODE 10 RK4 steps | CFM, ODE 50 RK4 steps | VDM bound | truth |")
    print("| --- | --- | --- | --- | --- |")
    for density in DENSITIES:
        c = [final_row(job(cfm, density, s)) for s in SEEDS]
        v = [final_row(job(vdm, density, s)) for s in SEEDS]
        rows[density] = (c, v)
        truth = f"{c[0]['test_true_nll']:.3f}" if "test_true_nll" in c[0] else "unknown"
        print(
            f"| {density} | {mean_se([r['test_nll_S10'] for r in c])} | "
            f"{mean_se([r['test_nll_S50'] for r in c])} | "
            f"{mean_se([r['test_nll'] for r in v])} | {truth} |"
        )
    print()
    for density, (c, v) in rows.items():
        print(f"{density}: per seed")
        for name, runs, keys in (
            ("CFM", c, ("test_nll_S10", "test_nll_S50", "test_nll_se", "test_gap", "test_gap_se")),
            (
                "VDM",
                v,
                (
                    "test_nll",
                    "test_nll_se",
                    "test_nll_mc_se",
                    "test_nll_plain",
                    "test_nll_plain_mc_se",
                    "test_gap",
                    "test_gap_se",
                ),
            ),
        ):
            for seed, r in zip(SEEDS, runs, strict=True):
                print(
                    f"  {name} seed {seed}: "
                    + ", ".join(f"{k[5:]}={r[k]:.4f}" for k in keys if k in r)
                )
        if "test_true_nll" in c[0]:
            print(f"  truth {c[0]['test_true_nll']:.4f} ± {c[0]['test_true_nll_se']:.4f}")
        s10 = np.array([r["test_nll_S10"] - r["test_nll_S50"] for r in c])
        print(f"  CFM S10 - S50 per seed: {np.round(s10, 4).tolist()}")
    return rows


def nll_figure(rows: dict, learned: dict | None = None) -> None:
    """ring8: each seed's gap to the truth (paired s.e. over the test points); moons: each
    seed's NLL (bars: VDM's Monte Carlo s.e.; every model shares the test points). VDM's
    values are the re-evaluation of ``reevaluate_vdm.py`` where it has been run."""
    reevaluated = {}
    path = os.path.join(HERE, "vdm_reevaluated.json")
    if os.path.isfile(path):
        with open(path) as f:
            reevaluated = json.load(f)
    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, len(rows))
    for ax, (density, (c, v)) in zip(axes, rows.items(), strict=True):
        gap = "test_true_nll" in c[0]
        truth = c[0].get("test_true_nll", 0.0)

        def point(r, key, se_key, truth=truth, gap=gap):
            value = r["gap"] if key == "nll" and gap and "gap" in r else r[key] - gap * truth
            return value, r.get(se_key, 0.0)

        series = [
            (
                "CFM, ODE 10 steps",
                [point(r, "test_nll_S10", "test_gap_se" if gap else "") for r in c],
            ),
            (
                "CFM, ODE 50 steps",
                [point(r, "test_nll_S50", "test_gap_se" if gap else "") for r in c],
            ),
        ]
        vdm_runs = [("fixed", v, "toy2d_vdm")]
        if learned:
            vdm_runs.append(("learned", learned[density], "toy2d_vdm_learned"))
        for label, runs, sweep in vdm_runs:
            again = reevaluated.get(sweep, {}).get(density)
            if again:  # the 1,000-draw re-evaluation
                label += f", {reevaluated[sweep]['repeats']} draws"
                points = [point(r, "nll", "gap_se" if gap else "mc_se") for r in again]
            else:
                se_key = "test_gap_se" if gap else "test_nll_mc_se"
                points = [point(r, "test_nll", se_key) for r in runs]
            series.append((f"VDM bound, {label}", points))
        for i, (_label, points) in enumerate(series):
            values, errors = zip(*points, strict=True)
            y = i + 0.15 * (np.arange(len(values)) - 1)
            ax.errorbar(values, y, xerr=errors, fmt="o", capsize=2, ms=4, color=f"C{i}")
        if gap:
            ax.axvline(0.0, color="k", ls="--", lw=1)
            ax.set_xlabel("test NLL - true entropy (nats); bars: paired s.e. over test points")
        else:
            ax.set_xlabel("test NLL (nats per point); bars: VDM's MC s.e.")
        ax.set_yticks(range(len(series)), [s[0] for s in series], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{density} (dots: seeds 0, 1, 2)")
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "nll.png"), dpi=100)


def density_figure(cfm: str, vdm: str) -> None:
    axis, grid = density_grid(100)
    columns = (
        "data (test split)",
        "CFM: exp(ODE log-lik.)",
        "CFM: ODE samples",
        "VDM: exp(-neg. ELBO)",
        "VDM: ancestral samples",
    )
    fig = Figure(figsize=(15, 3.2 * len(DENSITIES)))
    axes = fig.subplots(len(DENSITIES), len(columns))
    key = jax.random.key(0)
    for row, density in zip(axes, DENSITIES, strict=True):
        config, dataset, model = load_run(job(cfm, density, 0))
        x = dataset.x_test
        num = len(x)
        row[0].scatter(x[:, 0], x[:, 1], s=1, alpha=0.5, color="k")
        graphdef, state = nnx.split(model)
        steps = max(config.objective.eval_ode_steps)

        @jax.jit
        def cfm_outputs(s, g, k, steps=steps, graphdef=graphdef, n=num):
            velocity = nnx.merge(graphdef, s)
            x0 = jax.random.normal(k, (n, 2))
            samples = jax.vmap(lambda y: vb.flow.ode_sample(y, velocity, num_steps=50))(x0)
            return cfm_log_density(velocity, g, steps), samples

        log_p, samples = cfm_outputs(state, grid, key)
        panels = [(np.asarray(log_p), samples)]
        _, _, model = load_run(job(vdm, density, 0))
        graphdef, state = nnx.split(model)

        @jax.jit
        def vdm_outputs(s, g, k, graphdef=graphdef, n=num):
            m = nnx.merge(graphdef, s)
            bounds, _ = vdm_bound(m, g, k, 128)
            return -bounds["nll"], m.sample(k, n, 200)

        log_p, samples = vdm_outputs(state, grid, key)
        panels.append((np.asarray(log_p), samples))
        for (log_p, samples), ax_d, ax_s in zip(panels, row[1::2], row[2::2], strict=True):
            density_map = np.exp(log_p.astype(np.float64)).reshape(axis.size, axis.size)
            vmax = float(np.percentile(density_map, 99.5))
            ax_d.pcolormesh(axis, axis, density_map, cmap="magma", vmin=0, vmax=vmax)
            samples = np.asarray(samples)
            ax_s.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.5)
        if density == "ring8":
            true_map = np.exp(ring8_log_prob(grid)).reshape(axis.size, axis.size)
            row[0].contour(axis, axis, true_map, levels=4, colors="C1", linewidths=0.6)
        row[0].set_ylabel(density)
        for ax, title in zip(row, columns, strict=True):
            ax.set_xlim(-GRID_LIMIT, GRID_LIMIT)
            ax.set_ylim(-GRID_LIMIT, GRID_LIMIT)
            ax.set_aspect("equal")
            ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "densities.png"), dpi=90)


def learned_rows(sweep: str) -> dict:
    """The learned-schedule VDM sweep's final rows, printed like the table's."""
    rows = {d: [final_row(job(sweep, d, s)) for s in SEEDS] for d in DENSITIES}
    for density, runs in rows.items():
        print(f"VDM learned schedule, {density}: {mean_se([r['test_nll'] for r in runs])}")
        for seed, r in zip(SEEDS, runs, strict=True):
            keys = ("test_nll", "test_nll_mc_se", "test_nll_plain", "test_gap", "test_gap_se")
            print(f"  seed {seed}: " + ", ".join(f"{k[5:]}={r[k]:.4f}" for k in keys if k in r))
    return rows


def main(cfm: str, vdm: str, learned: str | None = None, figures: str = "all") -> None:
    rows = table(cfm, vdm)
    extra = learned_rows(learned) if learned else None
    nll_figure(rows, extra)
    if figures == "all":
        density_figure(cfm, vdm)


if __name__ == "__main__":
    main(*sys.argv[1:])
