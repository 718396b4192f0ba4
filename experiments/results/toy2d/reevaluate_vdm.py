"""Re-evaluates the trained VDM runs' test bound with more draws per test point.

    python experiments/results/toy2d/reevaluate_vdm.py runs/toy2d_vdm 1000

reloads each job of the sweep (``vbounds.lab.analysis.load_run``), evaluates the negative
ELBO of every test point over ``repeats`` fresh draws (the evaluation of ``vdm_toy2d``,
``vbounds.lab.objectives.toy2d.vdm_bound``, with its control variates), and prints the
test mean, its Monte Carlo standard error, the gap to the truth where known, and the mean
+- standard error over the seeds; it keeps them in ``vdm_reevaluated.json`` beside this
file, under the sweep directory's name, for ``make_figures.py``.
"""

from __future__ import annotations

import json
import math
import os
import sys

import jax
import numpy as np
from flax import nnx

from vbounds.lab.analysis import load_run
from vbounds.lab.objectives.toy2d import vdm_bound

HERE = os.path.dirname(os.path.abspath(__file__))
#: Where the results are kept, by the sweep directory's name (``make_figures.py`` reads it).
OUTPUT = os.path.join(HERE, "vdm_reevaluated.json")
DENSITIES = ("ring8", "moons")
SEEDS = (0, 1, 2)


def evaluate(workdir: str, repeats: int, chunk: int = 500) -> dict:
    _, dataset, model = load_run(workdir)
    graphdef, state = nnx.split(model)
    fn = jax.jit(lambda s, x, k: vdm_bound(nnx.merge(graphdef, s), x, k, repeats)[0])
    key = jax.random.key(12345)
    x = dataset.x_test
    parts = [
        fn(state, x[i : i + chunk], jax.random.fold_in(key, i)) for i in range(0, len(x), chunk)
    ]
    nll = np.concatenate([np.asarray(p["nll"], np.float64) for p in parts])
    var = np.concatenate([np.asarray(p["nll_mc_var"], np.float64) for p in parts])
    out = {"nll": nll.mean(), "mc_se": math.sqrt(var.sum()) / len(var)}
    if dataset.log_p_test is not None:
        gap = nll + dataset.log_p_test
        out["gap"] = gap.mean()
        out["gap_se"] = gap.std(ddof=1) / math.sqrt(len(gap))
    return out


def main(sweep: str, repeats: str) -> None:
    results = {}
    for density in DENSITIES:
        runs = [evaluate(f"{sweep}/data.density={density},seed={s}", int(repeats)) for s in SEEDS]
        for seed, r in zip(SEEDS, runs, strict=True):
            print(f"{density} seed {seed}: " + ", ".join(f"{k}={v:.4f}" for k, v in r.items()))
        for key in ("nll", "gap"):
            if key in runs[0]:
                v = np.array([r[key] for r in runs])
                print(f"{density} {key}: {v.mean():.4f} ± {v.std(ddof=1) / math.sqrt(len(v)):.4f}")
        results[density] = [{k: float(v) for k, v in r.items()} for r in runs]
    saved = {}
    if os.path.isfile(OUTPUT):
        with open(OUTPUT) as f:
            saved = json.load(f)
    saved[os.path.basename(os.path.normpath(sweep))] = {"repeats": int(repeats), **results}
    with open(OUTPUT, "w") as f:
        json.dump(saved, f, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
