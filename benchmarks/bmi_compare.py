"""vbounds' estimate_mi beside bmi's neural estimators on bmi's own tasks.

bmi (``benchmark-mi``, Czyz et al., Beyond Normal: On the Evaluation of Mutual Information
Estimators, NeurIPS 2023) ships the tasks and the InfoNCE, NWJ, DV and MINE estimators
this script runs. Both libraries get the same samples of each task (``task.sample(n,
seed)``), the same concat MLP critic widths, minibatch size, learning rate (Adam) and
step budget, and half of the pairs held out. What differs is the readout: bmi reports
the highest estimate over its test evaluations (the checkpoint is chosen on the pairs
it is reported on), `estimate_mi` chooses the checkpoint on a validation share of the
training half and reports the bound on the untouched test half.

bmi pins jax < 0.5, so it lives in its own environment (see benchmarks/README.md):

    .venv-bmi/bin/python -m benchmarks.bmi_compare --steps 1000 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

#: Estimators: bmi's class name and estimate_mi's bound.
ESTIMATORS = {
    "infonce": ("InfoNCEEstimator", "infonce"),
    "nwj": ("NWJEstimator", "nwj"),
    "dv": ("DonskerVaradhanEstimator", "dv"),
    "mine": ("MINEEstimator", "mine"),
}


def tasks():
    """bmi's tasks named in the benchmark (bmi's own constructors and parameters)."""
    from bmi.benchmark.task_list import BINORMAL_BASE, BISTUDENT_BASE
    from bmi.benchmark.tasks import multinormal
    from bmi.benchmark.tasks.half_cube import transform_half_cube_task
    from bmi.benchmark.tasks.spiral import transform_spiral_task

    return {
        "normal 1v1": BINORMAL_BASE,
        "normal 5x5 sparse": multinormal.task_multinormal_sparse(5, 5),
        "half-cube 1v1": transform_half_cube_task(BINORMAL_BASE),
        "spiral 3x3": transform_spiral_task(multinormal.task_multinormal_2pair(3, 3)),
        "Student-t 1v1 (df 1)": BISTUDENT_BASE,
        "normal 25x25 (2 pairs)": multinormal.task_multinormal_2pair(25, 25),
    }


def run_bmi(name, x, y, *, seed, steps, batch, hidden, lr, every):
    import bmi

    cls = getattr(bmi.estimators, ESTIMATORS[name][0])
    estimator = cls(
        batch_size=batch,
        max_n_steps=steps,
        train_test_split=0.5,
        test_every_n_steps=every,
        learning_rate=lr,
        hidden_layers=hidden,
        seed=seed,
        verbose=False,
    )
    start = time.perf_counter()
    result = estimator.estimate_with_info(x, y)
    seconds = time.perf_counter() - start
    ran = result.additional_information.get("n_training_steps", steps) or steps
    return float(result.mi_estimate), seconds / ran


def run_vbounds(name, x, y, *, seed, steps, batch, hidden, lr, every):
    from vbounds.lab import estimate_mi

    start = time.perf_counter()
    result = estimate_mi(
        x,
        y,
        bound=ESTIMATORS[name][1],
        critic="concat",
        hidden=hidden,
        batch_size=batch,
        learning_rate=lr,
        max_steps=steps,
        test_fraction=0.5,
        eval_every=every,
        patience=max(2, steps // every),  # as bmi: no stopping before the budget
        mine_decay=0.9,  # bmi's MINE smoothing
        seed=seed,
    )
    seconds = time.perf_counter() - start
    return result.mi, seconds / result.steps_run


def run_vbounds_bmi_readout(name, x, y, *, seed, steps, batch, hidden, lr, every):
    """estimate_mi trained on the whole training half (no validation split), read out as
    bmi does: the highest of its evaluations on the test half (``curve["eval_mi"]``)."""
    from vbounds.lab import estimate_mi

    start = time.perf_counter()
    result = estimate_mi(
        x,
        y,
        bound=ESTIMATORS[name][1],
        critic="concat",
        hidden=hidden,
        batch_size=batch,
        learning_rate=lr,
        max_steps=steps,
        test_fraction=0.5,
        eval_every=every,
        early_stopping=False,
        mine_decay=0.9,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    return float(result.curve["eval_mi"].max()), seconds / result.steps_run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", default="16,8")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument(
        "--bmi-readout",
        action="store_true",
        help="also run estimate_mi without a validation split, read out as bmi (max on test)",
    )
    parser.add_argument("--tasks", default="", help="comma-separated task names (all: empty)")
    args = parser.parse_args(argv)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = tasks()
    if args.tasks:
        chosen = {k: v for k, v in chosen.items() if k in args.tasks.split(",")}
    settings = dict(steps=args.steps, batch=args.batch, hidden=hidden, lr=args.lr)
    settings["every"] = args.every
    libs = {"bmi": run_bmi, "vbounds": run_vbounds}
    if args.bmi_readout:
        libs["vbounds, bmi's readout"] = run_vbounds_bmi_readout
    head = ["task", "true MI", "estimator", *libs, *(f"{lib} ms/step" for lib in libs)]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for task_name, task in chosen.items():
        for name in args.estimators.split(","):
            values = {lib: [] for lib in libs}
            per_step = {lib: [] for lib in libs}
            for seed in seeds:
                x, y = task.sample(args.samples, seed=seed)
                x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
                for lib, run in libs.items():
                    value, seconds = run(name, x, y, seed=seed, **settings)
                    values[lib].append(value)
                    per_step[lib].append(seconds)
            cells = []
            for lib in libs:
                v = np.asarray(values[lib])
                se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
                cells.append(f"{v.mean():.3f} +- {se:.3f}")
            times = [f"{1e3 * np.median(per_step[lib]):.2f}" for lib in libs]
            print(
                f"| {task_name} | {task.mutual_information:.3f} | {name} | "
                + " | ".join(cells + times)
                + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
