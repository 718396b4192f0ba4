"""The Poole et al. (2019) MI staircase: each estimator, each critic, on correlated Gaussians.

``x ~ N(0, I_d)``, ``y = rho x + sqrt(1 - rho^2) eps``; the true MI steps through the
config's levels (2, 4, 6, 8, 10 nats) while one critic keeps training. For each critic,
all the estimators train together in one jitted ``lax.scan`` (independent parameters and
Adam states, the same batches), so a job compiles once. Writes to ``--workdir``:
``report.png`` (estimate vs step against the true MI, one panel per estimator, one row per
critic), ``curves.npz`` (every step), ``results.json`` and ``results.md`` (mean +- std of
the estimate over the last ``config.tail`` steps of each level), with compile and run
times.

    python -m experiments.mi_gaussian --workdir=workdirs/mi_gaussian \
        --config=experiments/configs/mi_gaussian.py --config.cubic=True
    python -m experiments.mi_gaussian --workdir=workdirs/mi_quick --quick   # ~1 min, CPU

Through the sweep (the config's ``entry_point`` names this script), one job per critic
and variant, with a combined ``summary.md`` and ``report.png`` (estimate at the end of
each level against the true MI, the figure of Poole et al.) in the sweep directory:

    python -m experiments.sweep --config=experiments/configs/mi_gaussian.py \
        --sweep='critics=separable,concat' --sweep='cubic=False,True' --workdir=runs/mi
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import app, flags
from flax import nnx
from ml_collections import config_flags

import vbounds as vb
from vbounds.lab.models.critics import BaselineMLP, ConcatCritic, SeparableCritic

ESTIMATORS = ("infonce", "nwj", "tuba", "interpolated", "js", "dv", "mine", "smile")
CRITICS = ("separable", "concat")
_DEFAULT_CONFIG = str(pathlib.Path(__file__).parent / "configs" / "mi_gaussian.py")


def quick(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The ``--quick`` (``--config.quick=True``) variant: the same protocol at a size a CPU
    runs in about a minute."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.steps_per_level, config.tail = 150, 75
    config.critic.hidden, config.critic.baseline_hidden = 64, 128
    config.quick = False
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


def _modules(config, critic_name: str):
    c, dim = config.critic, config.dim
    rngs = nnx.Rngs(config.seed)
    if critic_name == "separable":
        kwargs = dict(hidden=c.hidden, layers=c.layers, embed_dim=c.embed_dim, rngs=rngs)
        critic = SeparableCritic(dim, dim, **kwargs)
    else:
        critic = ConcatCritic(dim, dim, hidden=c.hidden, layers=c.layers, rngs=rngs)
    return critic, BaselineMLP(dim, hidden=c.baseline_hidden, layers=c.layers, rngs=rngs)


def train_many(
    config: ml_collections.ConfigDict, estimators: Sequence[str], critic_name: str
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Trains one critic per estimator through the whole staircase, all in one jitted scan.

    Every estimator gets the critic and baseline a run of its own would (the same seed),
    its own Adam state, and the same batches; the estimators share nothing else, so this
    is the separate runs stepped side by side, compiled once.

    Returns:
      ``({estimator: estimate at every step}, {"compile_s": .., "run_s": ..})``.
    """
    estimators = tuple(estimators)
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or critic_name not in CRITICS or not estimators:
        raise ValueError(f"unknown estimators {unknown} or critic {critic_name!r}")
    graphdef, params = None, []
    for _ in estimators:
        graphdef, p = nnx.split(_modules(config, critic_name))
        params.append(p)
    params = tuple(params)
    tx = optax.adam(config.optimizer.learning_rate)
    shape = dict(batch=config.batch_size, dim=config.dim, cubic=config.cubic)

    def loss(params, estimator, x, y, mine_state):
        critic, baseline = nnx.merge(graphdef, params)
        train_value, estimate, mine_state = objective(
            estimator, critic(x, y), baseline(y), mine_state, config.bounds
        )
        return -train_value, (estimate, mine_state)

    def step(carry, key_rho):
        x, y = sample(*key_rho, **shape)
        new_carry, estimates = [], []
        for estimator, (p, opt_state, mine_state) in zip(estimators, carry, strict=True):
            grads, (estimate, mine_state) = jax.grad(loss, has_aux=True)(
                p, estimator, x, y, mine_state
            )
            updates, opt_state = tx.update(grads, opt_state, p)
            new_carry.append((optax.apply_updates(p, updates), opt_state, mine_state))
            estimates.append(estimate)
        return tuple(new_carry), jnp.stack(estimates)

    def run(params, keys, rhos):
        init = tuple((p, tx.init(p), vb.mi.mine_init()) for p in params)
        return jax.lax.scan(step, init, (keys, rhos))[1]

    rhos = jnp.repeat(
        jnp.asarray([rho_for(m, config.dim) for m in config.levels], jnp.float32),
        config.steps_per_level,
    )
    keys = jax.random.split(jax.random.key(config.seed + 1), rhos.shape[0])
    start = time.perf_counter()
    compiled = jax.jit(run).lower(params, keys, rhos).compile()
    compile_s = time.perf_counter() - start
    curves = np.asarray(jax.block_until_ready(compiled(params, keys, rhos))).T
    timing = {"compile_s": compile_s, "run_s": time.perf_counter() - start - compile_s}
    return dict(zip(estimators, curves, strict=True)), timing


def train(config: ml_collections.ConfigDict, estimator: str, critic_name: str) -> np.ndarray:
    """Trains one critic through the whole staircase; returns the estimate at every step."""
    return train_many(config, (estimator,), critic_name)[0][estimator]


def level_stats(curve: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the estimate over the last ``config.tail`` steps of each level."""
    tail = min(config.tail, config.steps_per_level)
    tail = curve.reshape(len(config.levels), config.steps_per_level)[:, -tail:]
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


def variant(config) -> str:
    return "cubic" if config.cubic else "gaussian"


def main(argv) -> None:
    del argv
    config = flags.FLAGS.config
    if flags.FLAGS.quick or config.quick:
        config = quick(config)
    workdir = pathlib.Path(flags.FLAGS.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json(indent=1))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}", flush=True)
    estimators = config.estimators.split(",")
    curves, results, timings = {}, {}, {}
    for critic in config.critics.split(","):
        by_estimator, timing = train_many(config, estimators, critic)
        timings[critic] = timing
        for estimator, curve in by_estimator.items():
            curves[(critic, estimator)] = curve
            mean, std = level_stats(curve, config)
            results[f"{critic}/{estimator}"] = dict(mean=mean.tolist(), std=std.tolist())
            print(f"{critic:>9} {estimator:>12}: " + " ".join(f"{m:5.2f}" for m in mean))
        steps = len(config.levels) * config.steps_per_level
        print(
            f"{critic:>9}: {len(estimators)} estimators x {steps} steps, compile "
            f"{timing['compile_s']:.1f}s, run {timing['run_s']:.1f}s "
            f"({1e3 * timing['run_s'] / steps:.2f} ms/step)",
            flush=True,
        )
    summary = {
        "true_mi": list(config.levels),
        "variant": variant(config),
        "batch_size": config.batch_size,
        "results": results,
        "timings": timings,
    }
    (workdir / "results.json").write_text(json.dumps(summary, indent=1))
    (workdir / "results.md").write_text(markdown(results, config))
    np.savez(workdir / "curves.npz", **{f"{c}/{e}": v for (c, e), v in curves.items()})
    plot(curves, config, workdir / "report.png")
    print(f"wrote {workdir}/report.png, results.json, results.md")


def summarize_sweep(workdir: str, points: Sequence[dict[str, str]]) -> list[dict]:
    """The sweep's summary of staircase jobs (called by ``experiments.sweep``).

    Reads each job's ``results.json`` and writes into ``workdir`` ``summary.md`` (critic,
    variant, estimator, the estimate at the end of each level against the true MI) and
    ``report.png``: the estimate at the end of each level against the true MI, one panel
    per estimator, one line per critic and variant, with the identity and ``log(batch)``.

    Returns:
      One row per (critic, variant, estimator): ``mean`` and ``std`` per level.
    """
    from vbounds.lab.training.sweep import job_name

    rows, true_mi, batch = [], None, None
    for point in points:
        path = os.path.join(workdir, job_name(point), "results.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            job = json.load(f)
        true_mi, batch = job["true_mi"], job["batch_size"]
        for name, r in job["results"].items():
            critic, estimator = name.split("/")
            rows.append(dict(critic=critic, variant=job["variant"], estimator=estimator, **r))
    lines = []
    if rows:
        head = ["critic", "variant", "estimator", *(f"MI={m:g}" for m in true_mi)]
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for r in rows:
            cells = [f"{_number(m)} +- {_number(s)}" for m, s in zip(r["mean"], r["std"])]
            lines.append(
                f"| {r['critic']} | {r['variant']} | {r['estimator']} | " + " | ".join(cells) + " |"
            )
        plot_staircase(rows, true_mi, batch, os.path.join(workdir, "report.png"))
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n" if lines else "no finished jobs\n")
    return rows


def plot_staircase(rows: Sequence[dict], true_mi, batch_size: int, path: str) -> None:
    """Estimate at the end of each level vs the true MI (Poole et al. 2019, figure 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    estimators = list(dict.fromkeys(r["estimator"] for r in rows))
    critics = list(dict.fromkeys(r["critic"] for r in rows))
    cols = min(4, len(estimators))
    nrows = -(-len(estimators) // cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(2.6 * cols, 2.4 * nrows), sharex=True, sharey=True, squeeze=False
    )
    truth = np.asarray(true_mi)
    styles = {"gaussian": "-", "cubic": "--"}
    for ax in axes.flat[len(estimators) :]:
        ax.set_visible(False)
    for i, estimator in enumerate(estimators):
        ax = axes.flat[i]
        ax.plot(truth, truth, color="k", lw=1.0, label="true MI")
        ax.axhline(math.log(batch_size), color="gray", ls=":", lw=0.8, label="log(batch)")
        for r in rows:
            if r["estimator"] != estimator:
                continue
            ax.errorbar(
                truth,
                r["mean"],
                yerr=r["std"],
                color=f"C{critics.index(r['critic'])}",
                ls=styles.get(r["variant"], "-"),
                marker="o",
                ms=3,
                lw=1.0,
                capsize=2,
                label=f"{r['critic']} ({r['variant']})",
            )
        ax.set_title(estimator)
        ax.set_ylim(-1, max(14.0, truth.max() + 2))
        if i % cols == 0:
            ax.set_ylabel("estimate (nats)")
        if i // cols == nrows - 1:
            ax.set_xlabel("true MI (nats)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    # Flags are defined here, not on import, so tests can import several experiment scripts.
    config_flags.DEFINE_config_file(
        "config", _DEFAULT_CONFIG, "Staircase config.", lock_config=True
    )
    flags.DEFINE_string("workdir", "workdirs/mi_gaussian", "Output directory.")
    flags.DEFINE_bool("quick", False, "150 steps per level, critics of 64 units (a CPU check).")
    app.run(main)
