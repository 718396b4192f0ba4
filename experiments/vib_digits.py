"""Deep variational information bottleneck (Alemi et al. 2017) on scikit-learn's digits.

A stochastic encoder ``q(z|x) = N(mu(x), diag sigma(x)^2)`` and a softmax decoder
``q(y|z)`` trained on ``vb.mi.vib_loss`` for each beta of a sweep. On the fixed test split
it records the accuracy (predictive probabilities averaged over z samples), the rate
``E KL(q(z|x) || N(0, I))`` (``vb.mi.kl_rate``, an upper bound on ``I(x; z)``) and the
Barber-Agakov lower bound ``I(z; y) >= H(y) - CE`` (``vb.mi.barber_agakov``). Writes
``info_plane.png``, ``results.json`` and ``results.md`` to ``--workdir``.

    python -m experiments.vib_digits --workdir=workdirs/vib_digits
"""

from __future__ import annotations

import json
import pathlib
import time

import distrax
import jax
import jax.numpy as jnp
import optax
from absl import app, flags
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import vbounds as vb
from vbounds.lab.models.layers import MLP

NUM_CLASSES, EVAL_SAMPLES = 10, 12


def digits(seed: int = 0):
    """Pixels scaled to [0, 1]; a stratified 75/25 split fixed by ``seed``."""
    x, y = load_digits(return_X_y=True)
    split = train_test_split(x / 16.0, y, test_size=0.25, random_state=seed, stratify=y)
    x_train, x_test, y_train, y_test = (jnp.asarray(a) for a in split)
    return (x_train.astype(jnp.float32), y_train), (x_test.astype(jnp.float32), y_test)


class VIB(nnx.Module):
    """MLP encoder to a diagonal Gaussian over z, linear softmax decoder (as Alemi et al.)."""

    def __init__(self, x_dim: int, *, z_dim: int = 8, hidden: int = 256, rngs: nnx.Rngs):
        self.encoder = MLP(x_dim, (hidden, hidden), 2 * z_dim, activation="relu", rngs=rngs)
        self.decoder = nnx.Linear(z_dim, NUM_CLASSES, rngs=rngs)

    def posterior(self, x):
        mean, raw_scale = jnp.split(self.encoder(x), 2, axis=-1)
        return distrax.MultivariateNormalDiag(mean, jax.nn.softplus(raw_scale) + 1e-4)

    def terms(self, x, y, key, num_samples: int):
        """``log q(y|z)`` for ``num_samples`` z per example ``[S, N]``, KL ``[N]``, logits."""
        q = self.posterior(x)
        prior = distrax.MultivariateNormalDiag(jnp.zeros_like(q.loc))
        z = q.sample(seed=key, sample_shape=num_samples)
        logits = jax.nn.log_softmax(self.decoder(z))
        log_lik = jnp.take_along_axis(logits, y[None, :, None], axis=-1)[..., 0]
        return log_lik, q.kl_divergence(prior), logits


def train(betas, *, steps: int, seed: int = 0, data=None, z_dim: int = 8, hidden: int = 256):
    """Trains one VIB per beta (vmapped: one compiled program); returns their test metrics.

    Every beta starts from the same initialisation and sees the same minibatches.
    """
    (x_train, y_train), (x_test, y_test) = data or digits()
    model = VIB(x_train.shape[1], z_dim=z_dim, hidden=hidden, rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    tx = optax.adam(1e-3)

    def loss(params, key, beta):
        kb, kz = jax.random.split(key)
        # With replacement: randint compiles far faster than choice's permutation.
        idx = jax.random.randint(kb, (128,), 0, x_train.shape[0])
        log_lik, kl, _ = nnx.merge(graphdef, params).terms(x_train[idx], y_train[idx], kz, 1)
        return jnp.mean(vb.mi.vib_loss(log_lik, kl, beta))

    def fit_and_evaluate(beta):
        def step(carry, key):
            params, opt_state = carry
            grads = jax.grad(loss)(params, key, beta)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        keys = jax.random.split(jax.random.key(seed + 1), steps)
        (trained, _), _ = jax.lax.scan(step, (params, tx.init(params)), keys)
        log_lik, kl, logits = nnx.merge(graphdef, trained).terms(
            x_test, y_test, jax.random.key(seed + 2), EVAL_SAMPLES
        )
        # Predictive probabilities averaged over z samples, as in Alemi et al.
        predictive = jax.nn.logsumexp(logits, axis=0)
        p_y = jnp.bincount(y_test, length=NUM_CLASSES) / y_test.shape[0]
        entropy_y = -jnp.sum(jnp.where(p_y > 0, p_y * jnp.log(p_y), 0.0))
        return dict(
            accuracy=jnp.mean(jnp.argmax(predictive, -1) == y_test),
            rate=vb.mi.kl_rate(kl),
            cross_entropy=-jnp.mean(log_lik),
            izy_lower=vb.mi.barber_agakov(jnp.mean(log_lik, axis=0), entropy_y),
            entropy_y=entropy_y,
        )

    betas = jnp.asarray(betas, jnp.float32)
    metrics = jax.jit(jax.vmap(fit_and_evaluate))(betas)
    return [
        dict(beta=float(b), **{k: float(v[i]) for k, v in metrics.items()})
        for i, b in enumerate(betas)
    ]


def markdown(results: list[dict]) -> str:
    rows = [
        "| beta | test accuracy | rate E KL (nats) >= I(x;z) | CE (nats) | I(z;y) >= H(y) - CE |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        rows.append(
            f"| {r['beta']:g} | {r['accuracy']:.3f} | {r['rate']:.2f} | "
            f"{r['cross_entropy']:.3f} | {r['izy_lower']:.3f} |"
        )
    return "\n".join(rows) + "\n"


def plot(results: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rate = [r["rate"] for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    panels = [("accuracy", "test accuracy"), ("izy_lower", "I(z;y) >= H(y) - CE (nats)")]
    for ax, (key, label) in zip(axes, panels):
        ax.plot(rate, [r[key] for r in results], "o-")
        for r in results:
            ax.annotate(
                f"{r['beta']:.0e}",
                (r["rate"], r[key]),
                xytext=(2, -4),
                textcoords="offset points",
                fontsize=6,
                rotation=-45,
            )
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("rate E KL(q(z|x) || N(0,I)) >= I(x;z) (nats)")
        ax.set_ylabel(label)
    axes[1].axhline(results[0]["entropy_y"], color="gray", ls="--", lw=0.8, label="H(y)")
    axes[1].legend(loc="lower right")
    fig.suptitle("VIB on digits: information plane (labels: beta)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv) -> None:
    del argv
    f = flags.FLAGS
    workdir = pathlib.Path(f.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    results = train([float(b) for b in f.betas], steps=f.steps, seed=f.seed)
    for r in results:
        print(
            f"beta={r['beta']:8.0e}  acc={r['accuracy']:.3f}  rate={r['rate']:6.2f}  "
            f"I(z;y)>={r['izy_lower']:.3f}",
            flush=True,
        )
    print(f"{len(results)} betas, {f.steps} steps each: {time.time() - start:.0f}s")
    (workdir / "results.json").write_text(json.dumps(results, indent=1))
    (workdir / "results.md").write_text(markdown(results))
    plot(results, workdir / "info_plane.png")
    print(f"wrote {workdir}/info_plane.png, results.json, results.md")


if __name__ == "__main__":
    # Flags are defined here, not on import, so tests can import several experiment scripts.
    flags.DEFINE_string("workdir", "workdirs/vib_digits", "Output directory.")
    flags.DEFINE_list(
        "betas", ["1e-4", "3e-4", "1e-3", "3e-3", "1e-2", "3e-2", "0.1", "0.3", "1"], "The sweep."
    )
    flags.DEFINE_integer("steps", 1500, "Adam steps per beta (minibatches of 128).")
    flags.DEFINE_integer("seed", 0, "Seed of the initialisation and the minibatches.")
    app.run(main)
