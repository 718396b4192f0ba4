"""The Poole et al. (2019) MI staircase: each estimator, each critic, on correlated Gaussians.

``x ~ N(0, I_20)``, ``y = rho x + sqrt(1 - rho^2) eps``; the true MI steps through 2, 4, 6,
8, 10 nats (rho changes every ``steps_per_level`` steps) while one critic keeps training
(batch 64, Adam 5e-4). Writes ``report.png`` (estimate vs step against the true MI, one
panel per estimator, one row per critic) and ``results.json`` (mean estimate over the last
half of each level) to ``--workdir``.

    python -m experiments.mi_gaussian --workdir=workdirs/mi_gaussian           # full (GPU)
    python -m experiments.mi_gaussian --workdir=workdirs/mi_quick --quick      # minutes, CPU
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import vbounds as vb
from vbounds.models.critics import BaselineMLP, ConcatCritic, SeparableCritic

DIM, BATCH = 20, 64
LEVELS = (2.0, 4.0, 6.0, 8.0, 10.0)
ESTIMATORS = ("infonce", "nwj", "tuba", "interpolated", "js", "dv", "mine", "smile")
CRITICS = ("separable", "concat")


def rho_for(mi_nats: float) -> float:
    return math.sqrt(1.0 - math.exp(-2.0 * mi_nats / DIM))


def sample(key, rho, cubic: bool):
    kx, ke = jax.random.split(key)
    x = jax.random.normal(kx, (BATCH, DIM))
    y = rho * x + jnp.sqrt(1.0 - rho**2) * jax.random.normal(ke, (BATCH, DIM))
    # y -> y^3 is invertible, so the MI is unchanged; the critic must learn more.
    return x, y**3 if cubic else y


def objective(name: str, scores, log_baseline, mine_state):
    """Returns ``(training objective, reported estimate, new MINE state)``."""
    if name == "js":
        value = vb.mi.js_mi(scores)
        return value, value, mine_state
    if name == "smile":
        # Song & Ermon: the JS gradient trains the critic; the clipped DV value is reported.
        js = vb.mi.js(scores)
        return js, vb.mi.smile(scores, 5.0), mine_state
    if name == "mine":
        value, mine_state = vb.mi.mine(scores, mine_state, decay=0.99)
        return value, value, mine_state
    if name == "tuba":
        value = vb.mi.tuba(scores, log_baseline)
    elif name == "interpolated":
        value = vb.mi.interpolated(scores, log_baseline, 0.01)
    else:
        value = getattr(vb.mi, name)(scores)
    return value, value, mine_state


def train(
    estimator: str, critic_name: str, *, steps_per_level: int, hidden: int, seed: int, cubic: bool
):
    rngs = nnx.Rngs(seed)
    if critic_name == "separable":
        critic = SeparableCritic(DIM, DIM, hidden=hidden, layers=2, embed_dim=32, rngs=rngs)
    else:
        critic = ConcatCritic(DIM, DIM, hidden=hidden, layers=2, rngs=rngs)
    baseline = BaselineMLP(DIM, hidden=2 * hidden, layers=2, rngs=rngs)
    graphdef, params = nnx.split((critic, baseline))
    tx = optax.adam(5e-4)

    def loss(params, key, rho, mine_state):
        critic, baseline = nnx.merge(graphdef, params)
        x, y = sample(key, rho, cubic)
        train_value, estimate, mine_state = objective(
            estimator, critic(x, y), baseline(y), mine_state
        )
        return -train_value, (estimate, mine_state)

    def step(carry, key_rho):
        params, opt_state, mine_state = carry
        key, rho = key_rho
        grads, (estimate, mine_state) = jax.grad(loss, has_aux=True)(params, key, rho, mine_state)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, mine_state), estimate

    @jax.jit
    def run(params, keys, rhos):
        init = (params, tx.init(params), vb.mi.mine_init())
        return jax.lax.scan(step, init, (keys, rhos))[1]

    rhos = jnp.repeat(jnp.asarray([rho_for(m) for m in LEVELS]), steps_per_level)
    keys = jax.random.split(jax.random.key(seed + 1), rhos.shape[0])
    return np.asarray(run(params, keys, rhos))


def plot(curves, steps_per_level: int, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    critics = sorted({c for _, c in curves})
    estimators = [e for e in ESTIMATORS if any(e == k[0] for k in curves)]
    fig, axes = plt.subplots(
        len(critics),
        len(estimators),
        figsize=(2.6 * len(estimators), 2.4 * len(critics)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    truth = np.repeat(LEVELS, steps_per_level)
    window = max(1, steps_per_level // 20)
    for row, critic in enumerate(critics):
        for col, estimator in enumerate(estimators):
            ax = axes[row, col]
            curve = curves[(estimator, critic)]
            ax.plot(curve, lw=0.3, alpha=0.4, color="C0")
            smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
            ax.plot(np.arange(window - 1, curve.size), smooth, lw=1.0, color="C1")
            ax.plot(truth, color="k", lw=1.0)
            ax.axhline(math.log(BATCH), color="gray", ls="--", lw=0.8)
            ax.set_ylim(-1, 14)
            if row == 0:
                ax.set_title(estimator)
            if col == 0:
                ax.set_ylabel(f"{critic}\nMI (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="workdirs/mi_gaussian")
    parser.add_argument("--quick", action="store_true", help="few steps, small critics")
    parser.add_argument("--cubic", action="store_true", help="the y -> y^3 variant")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--critics", default=",".join(CRITICS))
    parser.add_argument("--steps_per_level", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    steps = args.steps_per_level or (150 if args.quick else 4000)
    hidden = 64 if args.quick else 256
    workdir = pathlib.Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    curves, results = {}, {}
    for critic in args.critics.split(","):
        for estimator in args.estimators.split(","):
            if estimator not in ESTIMATORS or critic not in CRITICS:
                raise ValueError(f"unknown estimator {estimator!r} or critic {critic!r}")
            start = time.time()
            curve = train(
                estimator,
                critic,
                steps_per_level=steps,
                hidden=hidden,
                seed=args.seed,
                cubic=args.cubic,
            )
            curves[(estimator, critic)] = curve
            per_level = curve.reshape(len(LEVELS), steps)[:, steps // 2 :].mean(axis=1)
            results[f"{estimator}/{critic}"] = dict(zip(map(str, LEVELS), per_level.tolist()))
            print(
                f"{critic:>9} {estimator:>12}: "
                + " ".join(f"{m:5.2f}" for m in per_level)
                + f"  ({time.time() - start:.0f}s)",
                flush=True,
            )
    (workdir / "results.json").write_text(json.dumps({"true_mi": LEVELS, **results}, indent=1))
    plot(curves, steps, workdir / "report.png")
    print(f"wrote {workdir / 'report.png'}")


if __name__ == "__main__":
    main()
