"""CatFlow on binary (categorical) digits, and a sample-quality metric shared with D3PM / MDLM.

``catflow``: the one-draw CatFlow cross-entropy ``vb.flow.catflow_loss`` (Eijkelboom et al.
2024) with one time per example, stratified across the batch
(``vb.diffusion.stratified_times``), per pixel: ``ce`` in nats and ``ce_bits`` in bits.
It is a loss, not a bound on ``-log p(x)``: a flow of the simplex points has no discrete
likelihood here, so nothing is labelled a bound. The test evaluation averages
``eval_repeats`` draws per image (two stratified halves, so ``test_ce_bits_mc_se`` is the
Monte Carlo standard error of the test mean) and, for comparison with the bound-trained
discrete diffusions, scores samples.

The sample metric (``sample_metric=True``; always on for ``catflow``, opt-in for ``d3pm``,
``mdlm``, ``udlm``): the evaluation draws ``sample_repeats`` samples per test image
(``N x R`` in all) and ``test_sample_mmd2`` is the unbiased kernel MMD^2 (Gretton et al.
2012) between them and the test images, with the Gaussian kernel
``k(a, b) = exp(-||a - b||^2 / mmd_scale)`` (for binary images ``||a - b||^2`` is the
Hamming distance; the default scale, 16 pixels, is about the median distance between
digits). :func:`mmd_squared` is the one implementation; :func:`reference_metrics` gives
the floors (training images, independent per-pixel Bernoulli samples) on the same terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import nnx
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.objectives.base import Objective
from vbounds.lab.registry import register_objective
from vbounds.lab.report import job_labels, split_rows

#: The sample metric's options and defaults (also declared by d3pm / mdlm / udlm, off there).
SAMPLE_METRIC_DEFAULTS = {"sample_metric": False, "sample_repeats": 4, "mmd_scale": 16.0}
# fold_in constant of the sampling key: the evaluation's other draws are unchanged.
_SAMPLE_SALT = 0x5A3


def mmd_squared(x, y, *, scale: float = 16.0) -> float:
    """Unbiased MMD^2 between samples ``x`` ``[m, D]`` and ``y`` ``[n, D]`` (host, float64).

    .. math:: \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(x_i, x_j)
       + \\frac{1}{n(n-1)} \\sum_{i \\ne j} k(y_i, y_j)
       - \\frac{2}{mn} \\sum_{i, j} k(x_i, y_j), \\quad k(a, b) = e^{-\\|a - b\\|^2 / s}

    Its expectation is the population MMD^2, zero when both samples come from one
    distribution, so an estimate can be slightly negative.

    Args:
      x: ``[m, D]`` samples, ``m >= 2``.
      y: ``[n, D]`` samples, ``n >= 2``.
      scale: the kernel's length scale ``s`` (squared distance units), positive.

    Returns:
      The estimate (a float).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"`x` and `y` must be [m, D] and [n, D], got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"`x` and `y` need at least 2 rows each, got {len(x)} and {len(y)}")
    if not scale > 0:
        raise ValueError(f"`scale` must be positive, got {scale!r}")

    def kernel(a, b):
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.exp(-np.maximum(sq, 0.0) / scale)

    m, n = len(x), len(y)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def _check_sample_metric(config) -> None:
    if not isinstance(config.sample_metric, bool):
        raise ValueError(f"objective.sample_metric must be a bool, got {config.sample_metric!r}")
    repeats = config.sample_repeats
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"objective.sample_repeats must be a positive int, got {repeats!r}")
    scale = config.mmd_scale
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ValueError(f"objective.mmd_scale must be a positive number, got {scale!r}")


def with_sample_metric(objective: Objective, sample: Callable, config) -> Objective:
    """``objective`` with the sample metric added to its evaluation when
    ``config.sample_metric`` (else ``objective`` unchanged).

    The evaluation calls the original with the same key (its outputs are unchanged) and
    adds ``sample(model, fold_in(key, salt), B * R) -> [B * R, D]`` integer samples and the
    batch; the summary adds ``test_sample_mmd2`` (:func:`mmd_squared` of all ``N * R``
    samples against the ``N`` test images) and ``test_sample_mean`` (the samples' mean).

    Args:
      objective: an :class:`Objective` with a per-example ``evaluate`` and ``summarize``.
      sample: ``(model, key, n) -> [n, D]`` integer samples.
      config: the objective section (``sample_metric``, ``sample_repeats``, ``mmd_scale``).

    Returns:
      The :class:`Objective`.
    """
    _check_sample_metric(config)
    if not config.sample_metric:
        return objective
    evaluate, summarize = objective.evaluate, objective.summarize
    repeats, scale = config.sample_repeats, float(config.mmd_scale)

    def evaluate_with_samples(model, batch, key):
        out = evaluate(model, batch, key)
        n = batch["x"].shape[0]
        samples = sample(model, jax.random.fold_in(key, _SAMPLE_SALT), n * repeats)
        samples = jnp.asarray(samples).reshape(n, repeats, -1)
        return {**out, "sample_metric": {"samples": samples, "data": jnp.asarray(batch["x"])}}

    def summarize_with_samples(outputs):
        outputs = dict(outputs)
        extra = outputs.pop("sample_metric")
        data = np.asarray(extra["data"])
        samples = np.asarray(extra["samples"]).reshape(-1, data.shape[-1])
        return {
            **summarize(outputs),
            "test_sample_mmd2": mmd_squared(samples, data, scale=scale),
            "test_sample_mean": float(samples.mean()),
        }

    return Objective(
        loss=objective.loss,
        evaluate=evaluate_with_samples,
        summarize=summarize_with_samples,
        report=objective.report,
        sweep_report=objective.sweep_report,
    )


def reference_metrics(
    dataset, *, sample_repeats: int = 4, scale: float = 16.0, draws: int = 10, seed: int = 0
) -> dict:
    """The sample metric's floors on a dataset's test split, on the models' terms.

    ``train``: ``N * R`` training images drawn without replacement (the metric of a model
    that reproduces the data distribution, up to the train/test difference);
    ``bernoulli``: ``N * R`` images of independent pixels with the training marginals;
    ``train_flip5``: the training subset with each pixel flipped with probability 0.05 (a
    calibration: the metric of near-perfect digits with pixel noise). Each is averaged
    over ``draws`` independent draws.

    Args:
      dataset: a :class:`~vbounds.lab.data.levels.ClassDataset` (binary).
      sample_repeats: ``R``, as in the objective.
      scale: the kernel's scale, as in the objective.
      draws: independent draws of each reference.
      seed: numpy seed.

    Returns:
      ``{name: (mean, sd)}`` over the draws, for ``train``, ``bernoulli``, ``train_flip5``.
    """
    rng = np.random.default_rng(seed)
    test, train = np.asarray(dataset.x_test), np.asarray(dataset.x_train)
    count = len(test) * sample_repeats
    if count > len(train):
        raise ValueError(f"{count} samples requested, the training split has {len(train)}")
    marginal = train.mean(0)
    values = {"train": [], "bernoulli": [], "train_flip5": []}
    for _ in range(draws):
        subset = train[rng.choice(len(train), count, replace=False)]
        values["train"].append(mmd_squared(subset, test, scale=scale))
        bern = (rng.random((count, train.shape[1])) < marginal).astype(np.int32)
        values["bernoulli"].append(mmd_squared(bern, test, scale=scale))
        flipped = np.where(rng.random(subset.shape) < 0.05, 1 - subset, subset)
        values["train_flip5"].append(mmd_squared(flipped, test, scale=scale))
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1))) for k, v in values.items()}


def samples_figure(runs: dict, path: str, *, num_samples: int = 16, seed: int = 0) -> None:
    """One figure of ``num_samples`` samples of each trained run, beside test images.

    Args:
      runs: ``{label: workdir}`` of trained ``catflow``, ``d3pm``, ``mdlm`` or ``udlm`` runs
        (restored by :func:`vbounds.lab.analysis.load_run`; each samples as in its
        evaluation).
      path: the PNG to write.
      num_samples: images per panel (a square number).
      seed: PRNG seed of the samples.
    """
    from vbounds.lab.analysis import load_run
    from vbounds.lab.objectives import diffusion

    panels, dataset = [], None
    for label, workdir in runs.items():
        config, dataset, model = load_run(workdir)
        objective = config.objective
        maker = make_sampler if objective.name == "catflow" else diffusion.make_sampler
        sample = maker(objective)
        graphdef, state = nnx.split(model)
        draw = jax.jit(lambda s, k, g=graphdef, f=sample: f(nnx.merge(g, s), k, num_samples))
        panels.append((label, np.asarray(draw(state, jax.random.key(seed)))))
    if dataset is not None:
        panels.append(("test images", np.asarray(dataset.x_test[:num_samples])))
    fig = Figure(figsize=(2.6 * len(panels), 3.0))
    cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="#c8d8e8")
    for ax, (label, images) in zip(
        np.atleast_1d(fig.subplots(1, len(panels))), panels, strict=True
    ):
        ax.imshow(diffusion._sample_grid(images), cmap=cmap, vmin=0, vmax=1)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# ----------------------------------------------------------------------------- CatFlow


def _check_int(config, key: str, *, even: bool = False) -> None:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (even and value % 2):
        what = "a positive even int" if even else "a positive int"
        raise ValueError(f"objective.{key} must be {what}, got {value!r}")


def _classes(model, x) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ValueError(
            f"the catflow objective takes integer classes (data 'digits_binary'), got {x.dtype}"
        )
    if not hasattr(model, "num_classes"):
        raise ValueError("the catflow objective needs a model with `num_classes` (catflow_mlp)")
    return x


def _ce(model, x, keys, times) -> jax.Array:
    """CatFlow cross-entropies (nats per example) of ``x`` ``[B, D]`` with one key and time each."""
    return jax.vmap(
        lambda xi, ki, ti: vb.flow.catflow_loss(ki, xi, model, num_classes=model.num_classes, t=ti)
    )(x, keys, times)


def make_loss(config) -> Callable:
    """``loss(model, batch, key) -> (ce nats per pixel, {"ce", "ce_bits"})``.

    Keys: ``k_t, k = split(key)``; times ``stratified_times(k_t, B)``; example ``b`` uses
    ``split(k, B)[b]`` (its ``x_0``) and time ``b``.
    """

    def loss(model, batch, key):
        x = _classes(model, batch["x"])
        n, d = x.shape
        k_t, k = jax.random.split(key)
        times = vb.diffusion.stratified_times(k_t, n)
        value = jnp.mean(_ce(model, x, jax.random.split(k, n), times)) / d
        return value, {"ce": value, "ce_bits": value / math.log(2.0)}

    return loss


def make_evaluate(config) -> Callable:
    """Per-example ``ce`` / ``ce_bits`` (per pixel) averaged over ``eval_repeats`` draws,
    and ``ce_bits_mc_var`` (the squared difference of the two halves' means over 4)."""
    repeats = config.eval_repeats

    def evaluate(model, batch, key):
        from vbounds.lab.objectives.diffusion import eval_times

        x = _classes(model, batch["x"])
        d = x.shape[1]

        def one(xi, ki):
            k_t, k_draw = jax.random.split(ki)
            times, keys = eval_times(k_t, repeats), jax.random.split(k_draw, repeats)
            bits = _ce(model, jnp.broadcast_to(xi, (repeats, d)), keys, times) / (d * math.log(2.0))
            half = repeats // 2
            return {
                "ce": jnp.mean(bits) * math.log(2.0),
                "ce_bits": jnp.mean(bits),
                "ce_bits_mc_var": (jnp.mean(bits[:half]) - jnp.mean(bits[half:])) ** 2 / 4,
            }

        return jax.lax.stop_gradient(jax.vmap(one)(x, jax.random.split(key, x.shape[0])))

    return evaluate


def summarize(outputs) -> dict:
    """``test_ce``, ``test_ce_bits`` and ``test_ce_bits_mc_se`` (Monte Carlo s.e. of the mean)."""
    var = np.asarray(outputs["ce_bits_mc_var"], np.float64)
    return {
        "test_ce": float(np.mean(np.asarray(outputs["ce"], np.float64))),
        "test_ce_bits": float(np.mean(np.asarray(outputs["ce_bits"], np.float64))),
        "test_ce_bits_mc_se": float(np.sqrt(np.sum(var)) / len(var)),
    }


def make_sampler(config) -> Callable:
    """``sample(model, key, n) -> [n, D]``: the model's Euler flow, ``sample_steps`` steps."""
    return lambda model, key, n: model.sample(key, n, config.sample_steps)


def make_report(config) -> Callable:
    """The run's report: the cross-entropy over training and 16 flow samples."""

    def report(rows, path, *, model=None, key=None, title=""):
        from vbounds.lab.objectives.diffusion import NUM_REPORT_SAMPLES, _sample_grid

        train, test = split_rows(rows)
        fig = Figure(figsize=(11, 4.2))
        ax, ax_samples = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.7, 1]})
        points = [(r["step"], r["ce_bits"]) for r in train if "ce_bits" in r]
        if points:
            ax.plot(*zip(*points, strict=True), lw=1, alpha=0.7, label="training batches")
        tests = [(r["step"], r["test_ce_bits"]) for r in test if "test_ce_bits" in r]
        if tests:
            ax.plot(*zip(*tests, strict=True), marker="o", label="test")
            final = test[-1]
            mmd = final.get("test_sample_mmd2")
            ax.set_title(
                f"test CatFlow cross-entropy {final['test_ce_bits']:.3f} bits/pixel (not a bound)"
                + (f"; sample MMD^2 {mmd:.4f}" if mmd is not None else ""),
                fontsize=9,
            )
        ax.set_xlabel("step")
        ax.set_ylabel("CatFlow cross-entropy (bits/pixel)")
        ax.legend(fontsize=8)
        if model is not None:
            graphdef, state = nnx.split(model)
            draw = jax.jit(
                lambda s, k: nnx.merge(graphdef, s).sample(
                    k, NUM_REPORT_SAMPLES, config.sample_steps
                )
            )
            images = np.asarray(draw(state, key if key is not None else jax.random.key(0)))
            cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="#c8d8e8")
            ax_samples.imshow(_sample_grid(images), cmap=cmap, vmin=0, vmax=model.num_classes - 1)
            ax_samples.set_title(f"flow samples ({config.sample_steps} Euler steps)", fontsize=9)
        ax_samples.axis("off")
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)

    return report


def sweep_report(jobs, path: str) -> None:
    """A sweep's report: each job's test sample MMD^2 (and cross-entropy when present)."""
    if not jobs:
        return
    labels = job_labels(jobs)
    fig = Figure(figsize=(8, 1.2 + 0.45 * len(jobs)))
    ax = fig.subplots()
    y = np.arange(len(jobs))
    ax.plot([job.get("test_sample_mmd2", math.nan) for job in jobs], y, "o")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test sample MMD^2")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def make(config) -> Objective:
    """The CatFlow objective of the ``objective`` config section."""
    _check_int(config, "eval_repeats", even=True)
    _check_int(config, "sample_steps")
    objective = Objective(
        loss=make_loss(config),
        evaluate=make_evaluate(config),
        summarize=summarize,
        report=make_report(config),
        sweep_report=sweep_report,
    )
    return with_sample_metric(objective, make_sampler(config), config)


register_objective(
    "catflow",
    make,
    defaults={
        "eval_repeats": 20,
        "sample_steps": 100,
        **SAMPLE_METRIC_DEFAULTS,
        "sample_metric": True,
    },
    doc="CatFlow cross-entropy (Eijkelboom et al. 2024; a loss, not a bound); sample MMD^2",
)
