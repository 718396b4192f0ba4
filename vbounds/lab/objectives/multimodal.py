"""Multimodal VAE objectives (``vb.multimodal``) as one objective, ``multimodal``.

With the ``multimodal_vae`` model (image and label experts and decoders), ``method``
selects how the experts are combined and which bound is trained:

- ``"poe"``: MVAE, ``vb.multimodal.mvae_elbo``: PoE ELBOs of (image, label), image alone
  and label alone, summed;
- ``"moe"``: MMVAE, ``vb.multimodal.moe_elbo`` with ``num_samples`` importance samples
  per stratum (IWAE) and the DReG gradient for the encoders;
- ``"mopoe"``: ``vb.multimodal.mopoe_elbo``, the mean over the three subsets.

The test evaluation reports, per example then averaged:

- ``test_elbo``: the method's own single-sample bound on ``log p(image, label)`` with its
  joint posterior (PoE of both; the mixture of the two experts; the MoPoE average);
- ``test_iwae``: an importance-sampled lower bound on ``log p(image, label)`` with
  ``eval_num_samples`` draws from the joint posterior (the mixture for ``"moe"``, the PoE
  of both experts otherwise) - comparable across methods;
- ``test_coherence_image_to_label``: the label decoded (argmax) at the posterior mean
  given the image alone equals the true label;
- ``test_coherence_label_to_image``: the image decoded at the posterior mean given the
  label alone is closest (squared distance of pixel probabilities) to the mean test
  image of that label among the ten class means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.objectives.base import Objective, per_example
from vbounds.lab.registry import register_objective

METHODS = ("poe", "moe", "mopoe")

#: Declared hyperparameters of ``multimodal``.
DEFAULTS = {"method": "mopoe", "num_samples": 1, "eval_num_samples": 64}

_IMAGE_ONLY = np.array([True, False])
_LABEL_ONLY = np.array([False, True])


def _check(config) -> None:
    if config.method not in METHODS:
        raise ValueError(f"objective.method must be one of {METHODS}, got {config.method!r}")
    for key in ("num_samples", "eval_num_samples"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"objective.{key} must be a positive int, got {value!r}")


def _conditional_mean(method, means, log_vars, mask):
    """The posterior mean given one modality: its expert (mixture) or its PoE with the prior."""
    if method == "moe":
        return means[int(np.argmax(mask))]
    return vb.multimodal.product_of_experts(means, log_vars, mask=jnp.asarray(mask)).mean


def summarize(outputs) -> dict:
    """Test metrics over the split (see the module docstring)."""
    x, y = np.asarray(outputs["x"]), np.asarray(outputs["y"])
    classes = np.unique(y)
    templates = np.stack([x[y == c].mean(0) for c in classes])
    generated = np.asarray(outputs["generated"])
    distance = ((generated[:, None, :] - templates[None]) ** 2).sum(-1)
    nearest = classes[np.argmin(distance, axis=1)]
    return {
        "test_elbo": float(np.mean(outputs["elbo"])),
        "test_iwae": float(np.mean(outputs["iwae"])),
        "test_coherence_image_to_label": float(np.mean(outputs["image_to_label"])),
        "test_coherence_label_to_image": float(np.mean(nearest == y)),
    }


def make(config) -> Objective:
    """The ``multimodal`` objective of an ``objective`` section."""
    _check(config)
    method, k, k_eval = config.method, int(config.num_samples), int(config.eval_num_samples)

    def train_bound(model, example, key):
        means, log_vars = model.experts(example["x"], example["y"])

        def log_likelihood(z):
            return model.log_likelihood(example["x"], example["y"], z)

        if method == "poe":
            value = vb.multimodal.mvae_elbo(key, log_likelihood, means, log_vars, num_samples=k)
        elif method == "moe":
            value = vb.multimodal.moe_elbo(
                key, log_likelihood, means, log_vars, num_samples=k, dreg=True
            )
        else:
            value = vb.multimodal.mopoe_elbo(key, log_likelihood, means, log_vars, num_samples=k)
        return value, {"objective": jax.lax.stop_gradient(value)}

    def evaluate_one(model, example, key):
        x, y = example["x"], example["y"]
        means, log_vars = model.experts(x, y)

        def log_likelihood(z):
            return model.log_likelihood(x, y, z)

        key_elbo, key_iwae = jax.random.split(key)
        if method == "moe":
            elbo = vb.multimodal.moe_elbo(key_elbo, log_likelihood, means, log_vars, bound="elbo")
            iwae = vb.multimodal.moe_elbo(
                key_iwae, log_likelihood, means, log_vars, num_samples=k_eval
            )
        else:
            if method == "poe":
                elbo = vb.multimodal.poe_elbo(key_elbo, log_likelihood, means, log_vars)
            else:
                elbo = vb.multimodal.mopoe_elbo(key_elbo, log_likelihood, means, log_vars)
            iwae = vb.multimodal.poe_elbo(
                key_iwae, log_likelihood, means, log_vars, num_samples=k_eval, bound="iwae"
            )
        z_x = _conditional_mean(method, means, log_vars, _IMAGE_ONLY)
        z_y = _conditional_mean(method, means, log_vars, _LABEL_ONLY)
        return {
            "elbo": elbo,
            "iwae": iwae,
            "image_to_label": (jnp.argmax(model.label_log_probs(z_x)) == y).astype(jnp.float32),
            "generated": model.image_probs(z_y),
            "x": (x > 0.5).astype(jnp.float32),
            "y": y,
        }

    def evaluate(model, batch, key):
        keys = jax.random.split(key, batch["x"].shape[0])
        outputs = jax.vmap(lambda ex, kk: evaluate_one(model, ex, kk))(batch, keys)
        return jax.lax.stop_gradient(outputs)

    return Objective(
        loss=per_example(train_bound),
        evaluate=evaluate,
        summarize=summarize,
        sweep_report=sweep_report,
    )


_PANELS = (
    ("test_iwae", "test IWAE, K = 64 (nats)"),
    ("test_elbo", "test ELBO, own bound (nats)"),
    ("test_coherence_image_to_label", "coherence image -> label"),
    ("test_coherence_label_to_image", "coherence label -> image"),
)


def sweep_report(jobs: Sequence[Mapping], path: str) -> None:
    """A sweep's ``report.png``: each test metric per method, mean ± standard error over
    the jobs of that method (seeds), every job as a dot."""
    methods = [m for m in METHODS if any(j.get("objective.method") == m for j in jobs)]
    if not methods:
        return
    fig = Figure(figsize=(13, 3.4))
    for ax, (metric, title) in zip(fig.subplots(1, len(_PANELS)), _PANELS, strict=True):
        for i, method in enumerate(methods):
            values = np.array(
                [float(j[metric]) for j in jobs if j.get("objective.method") == method], float
            )
            se = values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else 0.0
            ax.errorbar(i, values.mean(), yerr=se, fmt="o", color=f"C{i}", ms=7, capsize=4)
            ax.plot(np.full(values.size, i + 0.15), values, "k.", ms=4)
        ax.set_xticks(range(len(methods)), methods)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.5, len(methods) - 0.5)
        if "coherence" in metric:
            ax.set_ylim(0, 1.05)
    fig.suptitle("multimodal VAEs on digits (image, label): mean ± SE over seeds, dots: runs")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


register_objective(
    "multimodal",
    make,
    defaults=DEFAULTS,
    doc="multimodal VAE bounds (vb.multimodal): MVAE (poe), MMVAE (moe), MoPoE; coherence",
)
