"""Diffusion bounds on scikit-learn's digits: VDM (Gaussian) and D3PM (discrete state).

VDM: the 17 grey levels (0..16) of each pixel are mapped to a grid in [-1, 1] and modelled with
the discretised decoder (``num_bins=17``), so the bound is on the discrete likelihood; the
denoiser (``GridDenoiser``: a per-pixel posterior over the 17 levels) is trained on the
continuous-time bound with a fixed linear or a learned (``LearnedGamma``) schedule and
evaluated in continuous time and with T = 100 and 1000 steps. D3PM: binarised digits
(pixel > 8) with uniform and absorbing noise, an MLP predicting
``p(x_0 | x_t)``, trained and evaluated on ``vb.diffusion.categorical_vlb`` (mixture form).
Writes ``results.json`` (test bits/dim per configuration and the measured seconds per training
step) and ``report.png`` (the bound per configuration and samples of each trained model);
``--only`` keeps the other family's numbers already in ``results.json``.

    python -m experiments.diffusion_digits --workdir=workdirs/diffusion_digits
    python -m experiments.diffusion_digits --only=d3pm   # one family: vdm or d3pm
    python -m experiments.diffusion_digits --quick       # a smoke run of a few steps
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from absl import app, flags
from flax import nnx
from sklearn.datasets import load_digits

import vbounds as vb
from vbounds.lab.models.denoisers import LearnedGamma
from vbounds.lab.models.layers import MLP

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

flags.DEFINE_string("workdir", "workdirs/diffusion_digits", "Output directory.")
flags.DEFINE_integer("steps", 4000, "Adam steps per configuration.")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, batches and the split.")
flags.DEFINE_bool("quick", False, "Smoke run: few steps, small networks, small test set.")
flags.DEFINE_enum("only", "all", ["all", "vdm", "d3pm"], "Run only one family of models.")
FLAGS = flags.FLAGS

LEVELS, DIM, D3PM_STEPS = 17, 64, 50
GAMMA_MIN, GAMMA_MAX = -13.3, 5.0
vd = vb.diffusion


def data(seed):
    images = load_digits().images.reshape(-1, DIM).astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(images))
    return images[order[297:]], images[order[:297]]


def to_grid(levels):
    return (2.0 * levels / (LEVELS - 1) - 1.0).astype(np.float32)


def train(loss_fn, model, steps, batches, lr=2e-3):
    graph, params, rest = nnx.split(model, nnx.Param, ...)
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, key, batch):
        def loss(p):
            return loss_fn(nnx.merge(graph, p, rest), key, batch)

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    key = jax.random.key(FLAGS.seed)
    start = None
    for i in range(steps):
        key, sub = jax.random.split(key)
        params, opt_state, value = step(params, opt_state, sub, batches(i))
        if i == 0:
            value.block_until_ready()  # the first step compiles; time the rest
            start = time.perf_counter()
    jax.block_until_ready(params)
    per_step = (time.perf_counter() - start) / max(steps - 1, 1)
    return nnx.merge(graph, params, rest), per_step


def vdm_bound(model, key, x, num_steps=None):
    net, gamma = model

    def one(k, xi, t):
        terms = vd.gaussian_vlb(
            k,
            xi,
            lambda z, s: net(z, gamma(s)),
            gamma,
            num_steps=num_steps,
            t=t,
            decoder="discretized",
            num_bins=LEVELS,
        )
        return terms.total

    k_t, k = jax.random.split(key)
    ts = vd.stratified_times(k_t, x.shape[0])
    return jax.vmap(one)(jax.random.split(k, x.shape[0]), x, ts)


def fixed_gamma():
    return lambda t: vd.linear_gamma(t, gamma_min=GAMMA_MIN, gamma_max=GAMMA_MAX)


class GridDenoiser(nnx.Module):
    """``eps_hat(z_t, gamma_t)`` through a per-pixel posterior over the 17 grey levels.

    Logits over the levels ``v_k`` of pixel ``j``: an MLP of ``(z, embedding of gamma)`` plus
    the exact Gaussian log-likelihood ``-(z_j - alpha v_k)^2 / (2 sigma^2)``; then ``x_hat`` is
    the posterior mean and ``eps_hat = (z - alpha x_hat) / sigma``. With constant logits
    ``log p_j(k)`` this is the exact denoiser of independent per-pixel marginals, and at low
    noise it snaps ``z`` to the grid exactly. A plain MLP predicting ``eps`` (even on VDM's
    Fourier features) cannot learn that snapping in a few thousand steps: it paid ~0.5
    bits/dim below gamma = -8, where the exact denoiser costs nothing, and ended at 4.2
    bits/dim, above the per-pixel baseline.
    """

    def __init__(self, hidden, *, rngs):
        self.mlp = MLP(DIM + 16, hidden, DIM * LEVELS, activation="gelu", rngs=rngs)

    def __call__(self, z, gamma):
        gamma = jnp.broadcast_to(jnp.asarray(gamma, z.dtype), z.shape[:-1])
        s = (gamma - GAMMA_MIN) / (GAMMA_MAX - GAMMA_MIN)
        angles = 1e3 * s[..., None] * jnp.exp(-math.log(1e4) * jnp.arange(8) / 7)
        h = jnp.concatenate([z, jnp.sin(angles), jnp.cos(angles)], axis=-1)
        alpha = jnp.sqrt(jax.nn.sigmoid(-gamma))[..., None]
        var = jax.nn.sigmoid(gamma)[..., None]
        grid = jnp.linspace(-1.0, 1.0, LEVELS)
        log_lik = -((z[..., None] - alpha[..., None] * grid) ** 2) / (2 * var[..., None])
        logits = self.mlp(h).reshape(*z.shape, LEVELS) + log_lik
        x_hat = jax.nn.softmax(logits, axis=-1) @ grid
        return (z - alpha * x_hat) / jnp.sqrt(var)


def vdm_samples(model, key, n=16, num_steps=100):
    """Ancestral sampling with the posterior step and the decoder's most likely level."""
    net, gamma = model
    z = jax.random.normal(key, (n, DIM))
    for i in range(num_steps, 0, -1):
        g_t, g_s = gamma(jnp.asarray(i / num_steps)), gamma(jnp.asarray((i - 1) / num_steps))
        alpha_t, sigma_t = jnp.sqrt(jax.nn.sigmoid(-g_t)), jnp.sqrt(jax.nn.sigmoid(g_t))
        x_hat = jnp.clip((z - sigma_t * net(z, g_t)) / alpha_t, -1, 1)
        mean, log_var = vd.gaussian_posterior(x_hat, z, g_s, g_t)
        key, sub = jax.random.split(key)
        z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(sub, z.shape)
    x = z / jnp.sqrt(jax.nn.sigmoid(-gamma(jnp.asarray(0.0))))
    return np.clip(np.round((np.asarray(x) + 1) * (LEVELS - 1) / 2), 0, LEVELS - 1)


class D3PMNet(nnx.Module):
    """p(x_0 | x_t) for 64 tokens: an MLP on the one-hot x_t and an embedding of t."""

    def __init__(self, classes, hidden, *, rngs):
        self.classes = classes
        self.mlp = MLP(DIM * classes + 16, hidden, DIM * classes, activation="gelu", rngs=rngs)

    def __call__(self, x_t, t):
        freqs = jnp.exp(-jnp.arange(8) * math.log(1e3) / 7)
        emb = jnp.concatenate([jnp.sin(t * freqs), jnp.cos(t * freqs)])
        h = jnp.concatenate([jax.nn.one_hot(x_t, self.classes).ravel(), emb])
        return self.mlp(h).reshape(DIM, self.classes)


def d3pm_setup(kind):
    if kind == "uniform":
        betas = 1.0 / (D3PM_STEPS - jnp.arange(1, D3PM_STEPS + 1) + 1.0)
        return vd.uniform_transitions(betas, 2), jnp.full(2, 0.5), 2
    trans = vd.absorbing_transitions(vd.absorbing_betas(D3PM_STEPS), 3)
    return trans, jnp.array([0.0, 0.0, 1.0]), 3


def d3pm_bound(model, key, x, trans, prior):
    def one(k, xi):
        return vd.categorical_vlb(k, xi, model, trans, prior).total

    return jax.vmap(one)(jax.random.split(key, x.shape[0]), x)


def d3pm_samples(model, key, trans, prior, n=16):
    """Ancestral sampling from p(x_T), then the mixture-form reverse steps p(x_{t-1} | x_t)."""
    qbar = vd.cumulative_transitions(trans)

    def step(i, carry):
        x_t, key = carry
        t = D3PM_STEPS - i
        key, sub = jax.random.split(key)
        probs = jax.vmap(lambda xi: vd.reverse_probs(xi, model(xi, t), trans[t - 1], qbar[t - 2]))(
            x_t
        )
        return jax.random.categorical(sub, jnp.log(jnp.maximum(probs, 1e-30)), axis=-1), key

    @jax.jit
    def run(key):
        k_T, k_0, k_steps = jax.random.split(key, 3)
        x = jax.random.categorical(k_T, jnp.log(jnp.maximum(prior, 1e-30)), shape=(n, DIM))
        x, _ = jax.lax.fori_loop(0, D3PM_STEPS - 1, step, (x, k_steps))
        logits = jax.vmap(lambda xi: model(xi, 1))(x)
        return jax.random.categorical(k_0, logits[..., :2], axis=-1)  # data classes only

    return np.asarray(run(key))


def evaluate(fn, key, x, repeats):
    values = [np.asarray(fn(k, x)) for k in jax.random.split(key, repeats)]
    return float(np.mean(values) / (DIM * math.log(2.0)))


def run_vdm(x_train, x_test, batches_of, steps, hidden, repeats, quick):
    """Fixed and learned schedules; returns (bits/dim, seconds per step, samples)."""
    results, timing, samples = {}, {}, {}
    for schedule in ("fixed", "learned"):
        net = GridDenoiser(hidden, rngs=nnx.Rngs(FLAGS.seed))
        gamma = (
            LearnedGamma(gamma_min=GAMMA_MIN, gamma_max=GAMMA_MAX, rngs=nnx.Rngs(1))
            if schedule == "learned"
            else fixed_gamma()
        )
        model = nnx.List([net, gamma]) if schedule == "learned" else nnx.List([net])

        def loss(m, key, batch, schedule=schedule, gamma=gamma):
            pair = (m[0], m[1]) if schedule == "learned" else (m[0], gamma)
            return jnp.mean(vdm_bound(pair, key, batch))

        model, timing[f"VDM {schedule}"] = train(loss, model, steps, batches_of(x_train))
        pair = (model[0], model[1]) if schedule == "learned" else (model[0], gamma)
        for num_steps in (None, 100, 1000):
            name = f"VDM {schedule}, T={'inf' if num_steps is None else num_steps}"
            fn = jax.jit(lambda k, x, n=num_steps, p=pair: vdm_bound(p, k, x, n))
            results[name] = evaluate(fn, jax.random.key(7), x_test, repeats)
            print(f"{name}: {results[name]:.3f} bits/dim")
        samples[f"VDM {schedule}"] = (
            vdm_samples(pair, jax.random.key(3), num_steps=20 if quick else 100),
            LEVELS,
        )
    return results, timing, samples


def run_d3pm(binary_train, binary_test, batches_of, steps, hidden, repeats):
    """Uniform and absorbing noise on binarised digits; same outputs as ``run_vdm``."""
    results, timing, samples = {}, {}, {}
    for kind in ("uniform", "absorbing"):
        trans, prior, classes = d3pm_setup(kind)
        net = D3PMNet(classes, hidden, rngs=nnx.Rngs(FLAGS.seed))

        def loss(m, key, batch, trans=trans, prior=prior):
            return jnp.mean(d3pm_bound(m, key, batch, trans, prior))

        name = f"D3PM {kind} (binary)"
        net, timing[name] = train(loss, net, steps, batches_of(binary_train))
        fn = jax.jit(lambda k, x, m=net, tr=trans, p=prior: d3pm_bound(m, k, x, tr, p))
        results[name] = evaluate(fn, jax.random.key(7), binary_test, repeats)
        print(f"{name}: {results[name]:.3f} bits/dim")
        samples[name] = (d3pm_samples(net, jax.random.key(3), trans, prior), 2)
    return results, timing, samples


def report(results, samples, path):
    """The bound per configuration (bars) and a 4x4 grid of samples per model."""
    fig, axes = plt.subplots(
        1,
        1 + len(samples),
        figsize=(6 + 3 * len(samples), 4),
        gridspec_kw={"width_ratios": [2] + [1] * len(samples)},
    )
    names = list(results)
    axes[0].barh(names, [results[n] for n in names])
    for i, n in enumerate(names):
        axes[0].text(results[n], i, f" {results[n]:.3f}", va="center", fontsize=8)
    axes[0].set_xlabel("test negative ELBO (bits/dim)")
    axes[0].invert_yaxis()
    for ax, (name, (images, levels)) in zip(axes[1:], samples.items(), strict=True):
        grid = images[:16].reshape(4, 4, 8, 8).transpose(0, 2, 1, 3).reshape(32, 32)
        ax.imshow(grid, cmap="gray_r", vmin=0, vmax=levels - 1)
        ax.set_title(f"samples: {name}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv):
    del argv
    quick = FLAGS.quick
    steps = 30 if quick else FLAGS.steps
    hidden = (64,) if quick else (256, 256)
    vdm_hidden = (64,) if quick else (128,)  # wider or deeper overfits the 1,500 images sooner
    repeats = 2 if quick else 20
    workdir = pathlib.Path(FLAGS.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    train_levels, test_levels = data(FLAGS.seed)
    if quick:
        test_levels = test_levels[:64]
    rng = np.random.default_rng(FLAGS.seed)

    def batches_of(array):
        def get(_):
            return jnp.asarray(array[rng.integers(0, len(array), FLAGS.batch_size)])

        return get

    results, timing, samples = {}, {}, {}
    previous = workdir / "results.json"
    if FLAGS.only != "all" and previous.exists():  # keep the other family's numbers
        old = json.loads(previous.read_text())
        results.update(old.get("bits_per_dim", {}))
        timing.update(old.get("seconds_per_step", {}))
    parts = []
    if FLAGS.only in ("all", "vdm"):
        x_train, x_test = to_grid(train_levels), jnp.asarray(to_grid(test_levels))
        parts.append(run_vdm(x_train, x_test, batches_of, steps, vdm_hidden, repeats, quick))
    if FLAGS.only in ("all", "d3pm"):
        binary_train = (train_levels > 8).astype(np.int32)
        binary_test = jnp.asarray(test_levels > 8, jnp.int32)
        parts.append(run_d3pm(binary_train, binary_test, batches_of, steps, hidden, repeats))
    for part_results, part_timing, part_samples in parts:
        results.update(part_results)
        timing.update(part_timing)
        samples.update(part_samples)
    for name, seconds in timing.items():
        print(f"{name}: {1e3 * seconds:.1f} ms per training step")

    summary = {
        "bits_per_dim": results,
        "seconds_per_step": timing,
        "settings": {
            "steps": steps,
            "batch_size": FLAGS.batch_size,
            "hidden_sizes": list(hidden),
            "vdm_hidden_sizes": list(vdm_hidden),
            "vdm_denoiser": "GridDenoiser (per-pixel posterior over the 17 levels)",
            "seed": FLAGS.seed,
            "eval_repeats": repeats,
            "backend": jax.default_backend(),
        },
    }
    (workdir / "results.json").write_text(json.dumps(summary, indent=2))
    report(results, samples, workdir / "report.png")
    print(f"wrote {workdir / 'results.json'} and {workdir / 'report.png'}")


if __name__ == "__main__":
    app.run(main)
