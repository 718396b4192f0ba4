"""The Poole et al. (2019) MI staircase: each estimator, each critic, on correlated Gaussians.

``x ~ N(0, I_d)``, ``y = rho x + sqrt(1 - rho^2) eps``; the true MI steps through the
config's levels (2, 4, 6, 8, 10 nats) while one critic keeps training. Each (estimator,
critic) run is one jitted ``lax.scan``. Writes to ``--workdir``: ``report.png`` (estimate
vs step against the true MI, one panel per estimator, one row per critic), ``curves.npz``
(every step), ``results.json`` and ``results.md`` (mean +- std of the estimate over the
last ``config.tail`` steps of each level).

    python -m experiments.mi_gaussian --workdir=workdirs/mi_gaussian \
        --config=experiments/configs/mi_gaussian.py --config.cubic=True
    python -m experiments.mi_gaussian --workdir=workdirs/mi_quick --quick   # ~1 min, CPU
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags
from flax import nnx
from ml_collections import config_flags

import vbounds as vb
from vbounds.models.critics import BaselineMLP, ConcatCritic, SeparableCritic

ESTIMATORS = ("infonce", "nwj", "tuba", "interpolated", "js", "dv", "mine", "smile")
CRITICS = ("separable", "concat")
_DEFAULT_CONFIG = str(pathlib.Path(__file__).parent / "configs" / "mi_gaussian.py")


def quick(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The ``--quick`` variant: the same protocol at a size a CPU runs in about a minute."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.steps_per_level, config.tail = 150, 75
    config.critic.hidden, config.critic.baseline_hidden = 64, 128
    return config


def rho_for(mi_nats: float, dim: int) -> float:
    """Correlation giving ``I(x; y) = -(d/2) log(1 - rho^2) = mi_nats``."""
    return math.sqrt(1.0 - math.exp(-2.0 * mi_nats / dim))


def sample(key, rho, *, batch: int, dim: int, cubic: bool):
    kx, ke = jax.random.split(key)
    x = jax.random.normal(kx, (batch, dim))
    y = rho * x + jnp.sqrt(1.0 - rho**2) * jax.random.normal(ke, (batch, dim))
    return x, y**3 if cubic else y


def objective(name: str, scores, log_baseline, mine_state, bounds):
    """Returns ``(training objective, reported estimate, new MINE state)``."""
    if name == "js":
        value = vb.mi.js_mi(scores)  # JS gradient, value of NWJ on the shifted critic
    elif name == "smile":
        # Song & Ermon: the JS gradient trains the critic; the clipped DV value is reported.
        return vb.mi.js(scores), vb.mi.smile(scores, bounds.smile_clip), mine_state
    elif name == "mine":
        value, mine_state = vb.mi.mine(scores, mine_state, decay=bounds.mine_decay)
    elif name == "tuba":
        value = vb.mi.tuba(scores, log_baseline)
    elif name == "interpolated":
        value = vb.mi.interpolated(scores, log_baseline, bounds.interpolated_alpha)
    else:
        value = getattr(vb.mi, name)(scores)
    return value, value, mine_state


def train(config: ml_collections.ConfigDict, estimator: str, critic_name: str) -> np.ndarray:
    """Trains one critic through the whole staircase; returns the estimate at every step."""
    if estimator not in ESTIMATORS or critic_name not in CRITICS:
        raise ValueError(f"unknown estimator {estimator!r} or critic {critic_name!r}")
    c, dim = config.critic, config.dim
    rngs = nnx.Rngs(config.seed)
    if critic_name == "separable":
        kwargs = dict(hidden=c.hidden, layers=c.layers, embed_dim=c.embed_dim, rngs=rngs)
        critic = SeparableCritic(dim, dim, **kwargs)
    else:
        critic = ConcatCritic(dim, dim, hidden=c.hidden, layers=c.layers, rngs=rngs)
    modules = (critic, BaselineMLP(dim, hidden=c.baseline_hidden, layers=c.layers, rngs=rngs))
    graphdef, params = nnx.split(modules)
    tx = optax.adam(config.optimizer.learning_rate)
    shape = dict(batch=config.batch_size, dim=dim, cubic=config.cubic)

    def loss(params, key, rho, mine_state):
        critic, baseline = nnx.merge(graphdef, params)
        x, y = sample(key, rho, **shape)
        train_value, estimate, mine_state = objective(
            estimator, critic(x, y), baseline(y), mine_state, config.bounds
        )
        return -train_value, (estimate, mine_state)

    def step(carry, key_rho):
        params, opt_state, mine_state = carry
        grads, (estimate, mine_state) = jax.grad(loss, has_aux=True)(params, *key_rho, mine_state)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, mine_state), estimate

    @jax.jit
    def run(params, keys, rhos):
        init = (params, tx.init(params), vb.mi.mine_init())
        return jax.lax.scan(step, init, (keys, rhos))[1]

    rhos = jnp.repeat(jnp.asarray([rho_for(m, dim) for m in config.levels]), config.steps_per_level)
    keys = jax.random.split(jax.random.key(config.seed + 1), rhos.shape[0])
    return np.asarray(run(params, keys, rhos))


def level_stats(curve: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the estimate over the last ``config.tail`` steps of each level."""
    tail = curve.reshape(len(config.levels), config.steps_per_level)[:, -config.tail :]
    return tail.mean(axis=1), tail.std(axis=1)


def _number(v: float) -> str:
    return f"{v:.2f}" if abs(v) < 1e3 else f"{v:.1e}"


def markdown(results: dict, config) -> str:
    head = "| critic | estimator | " + " | ".join(f"MI={m:g}" for m in config.levels) + " |"
    rows = [head, "|" + " --- |" * (len(config.levels) + 2)]
    for name, r in results.items():
        critic, estimator = name.split("/")
        cells = [f"{_number(m)} +- {_number(s)}" for m, s in zip(r["mean"], r["std"])]
        rows.append(f"| {critic} | {estimator} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def plot(curves: dict, config, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    critics = list(dict.fromkeys(c for c, _ in curves))
    estimators = list(dict.fromkeys(e for _, e in curves))
    fig, axes = plt.subplots(
        len(critics),
        len(estimators),
        figsize=(2.2 * len(estimators), 2.1 * len(critics)),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    truth = np.repeat(config.levels, config.steps_per_level)
    window = max(1, config.steps_per_level // 20)
    for (critic, estimator), curve in curves.items():
        row, col = critics.index(critic), estimators.index(estimator)
        ax = axes[row, col]
        ax.plot(curve, lw=0.3, alpha=0.4, color="C0")
        smooth = np.convolve(curve, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, curve.size), smooth, lw=1.0, color="C1")
        ax.plot(truth, color="k", lw=1.0)
        ax.axhline(math.log(config.batch_size), color="gray", ls="--", lw=0.8)
        ax.set_ylim(-1, 14)
        if row == 0:
            ax.set_title(estimator)
        if col == 0:
            ax.set_ylabel(f"{critic}\nMI (nats)")
    fig.suptitle(("y = (rho x + noise)^3" if config.cubic else "y = rho x + noise"), y=1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv) -> None:
    del argv
    config = quick(flags.FLAGS.config) if flags.FLAGS.quick else flags.FLAGS.config
    workdir = pathlib.Path(flags.FLAGS.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json(indent=1))
    curves, results = {}, {}
    for critic in config.critics.split(","):
        for estimator in config.estimators.split(","):
            start = time.time()
            curve = curves[(critic, estimator)] = train(config, estimator, critic)
            mean, std = level_stats(curve, config)
            seconds = time.time() - start
            results[f"{critic}/{estimator}"] = dict(
                mean=mean.tolist(), std=std.tolist(), seconds=seconds
            )
            print(
                f"{critic:>9} {estimator:>12}: "
                + " ".join(f"{m:5.2f}" for m in mean)
                + f"  ({seconds:.0f}s)",
                flush=True,
            )
    summary = {"true_mi": list(config.levels), "results": results}
    (workdir / "results.json").write_text(json.dumps(summary, indent=1))
    (workdir / "results.md").write_text(markdown(results, config))
    np.savez(workdir / "curves.npz", **{f"{c}/{e}": v for (c, e), v in curves.items()})
    plot(curves, config, workdir / "report.png")
    print(f"wrote {workdir}/report.png, results.json, results.md")


if __name__ == "__main__":
    # Flags are defined here, not on import, so tests can import several experiment scripts.
    config_flags.DEFINE_config_file(
        "config", _DEFAULT_CONFIG, "Staircase config.", lock_config=True
    )
    flags.DEFINE_string("workdir", "workdirs/mi_gaussian", "Output directory.")
    flags.DEFINE_bool("quick", False, "150 steps per level, critics of 64 units (a CPU check).")
    app.run(main)
