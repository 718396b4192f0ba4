"""Diffusion bounds on scikit-learn's digits: VDM (Gaussian) and D3PM (discrete state).

VDM: the 17 grey levels (0..16) of each pixel are mapped to a grid in [-1, 1] and modelled with
the discretised decoder (``num_bins=17``), so the bound is on the discrete likelihood; the
denoiser (``FourierDenoiser``) is trained on the continuous-time bound with a fixed linear or a
learned (``LearnedGamma``) schedule and evaluated in continuous time and with T = 100 and 1000
steps. D3PM: binarised digits (pixel > 8) with uniform and absorbing noise, an MLP predicting
``p(x_0 | x_t)``, trained and evaluated on ``vb.diffusion.categorical_vlb`` (mixture form).
Writes ``results.json`` and ``report.png`` (test bits/dim per configuration and VDM samples).

    python -m experiments.diffusion_digits --workdir=workdirs/diffusion_digits
    python -m experiments.diffusion_digits --quick   # a smoke run of a few steps
"""

from __future__ import annotations

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from absl import app, flags
from flax import nnx
from sklearn.datasets import load_digits

import vbounds as vb
from vbounds.models.denoisers import FourierDenoiser, LearnedGamma
from vbounds.models.layers import MLP

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

flags.DEFINE_string("workdir", "workdirs/diffusion_digits", "Output directory.")
flags.DEFINE_integer("steps", 4000, "Adam steps per configuration.")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, batches and the split.")
flags.DEFINE_bool("quick", False, "Smoke run: few steps, small networks, small test set.")
FLAGS = flags.FLAGS

LEVELS, DIM, D3PM_STEPS = 17, 64, 50
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
    for i in range(steps):
        key, sub = jax.random.split(key)
        params, opt_state, _ = step(params, opt_state, sub, batches(i))
    return nnx.merge(graph, params, rest)


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
    return lambda t: vd.linear_gamma(t, gamma_min=-13.3, gamma_max=5.0)


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


def evaluate(fn, key, x, repeats):
    values = [np.asarray(fn(k, x)) for k in jax.random.split(key, repeats)]
    return float(np.mean(values) / (DIM * math.log(2.0)))


def main(argv):
    del argv
    quick = FLAGS.quick
    steps = 30 if quick else FLAGS.steps
    hidden = (64,) if quick else (256, 256)
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

    results, samples = {}, None
    x_train, x_test = to_grid(train_levels), jnp.asarray(to_grid(test_levels))
    for schedule in ("fixed", "learned"):
        net = FourierDenoiser(DIM, hidden_sizes=hidden, rngs=nnx.Rngs(FLAGS.seed))
        gamma = LearnedGamma(rngs=nnx.Rngs(1)) if schedule == "learned" else fixed_gamma()
        model = nnx.List([net, gamma]) if schedule == "learned" else nnx.List([net])

        def loss(m, key, batch, schedule=schedule, gamma=gamma):
            pair = (m[0], m[1]) if schedule == "learned" else (m[0], gamma)
            return jnp.mean(vdm_bound(pair, key, batch))

        model = train(loss, model, steps, batches_of(x_train))
        pair = (model[0], model[1]) if schedule == "learned" else (model[0], gamma)
        for num_steps in (None, 100, 1000):
            name = f"VDM {schedule}, T={'inf' if num_steps is None else num_steps}"
            fn = jax.jit(lambda k, x, n=num_steps, p=pair: vdm_bound(p, k, x, n))
            results[name] = evaluate(fn, jax.random.key(7), x_test, repeats)
            print(f"{name}: {results[name]:.3f} bits/dim")
        if schedule == "fixed":
            samples = vdm_samples(pair, jax.random.key(3), num_steps=20 if quick else 100)

    binary_train, binary_test = (train_levels > 8).astype(np.int32), (test_levels > 8)
    for kind in ("uniform", "absorbing"):
        trans, prior, classes = d3pm_setup(kind)
        net = D3PMNet(classes, hidden, rngs=nnx.Rngs(FLAGS.seed))

        def loss(m, key, batch, trans=trans, prior=prior):
            return jnp.mean(d3pm_bound(m, key, batch, trans, prior))

        net = train(loss, net, steps, batches_of(binary_train))
        fn = jax.jit(lambda k, x, m=net, tr=trans, p=prior: d3pm_bound(m, k, x, tr, p))
        name = f"D3PM {kind} (binary)"
        results[name] = evaluate(
            fn, jax.random.key(7), jnp.asarray(binary_test, jnp.int32), repeats
        )
        print(f"{name}: {results[name]:.3f} bits/dim")

    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2, 1]})
    names = list(results)
    axes[0].barh(names, [results[n] for n in names])
    axes[0].set_xlabel("test negative ELBO (bits/dim)")
    axes[0].invert_yaxis()
    grid = samples[:16].reshape(4, 4, 8, 8).transpose(0, 2, 1, 3).reshape(32, 32)
    axes[1].imshow(grid, cmap="gray_r")
    axes[1].set_title("VDM samples (fixed schedule)")
    axes[1].axis("off")
    fig.tight_layout()
    fig.savefig(workdir / "report.png", dpi=100)
    print(f"wrote {workdir / 'report.png'}")


if __name__ == "__main__":
    app.run(main)
