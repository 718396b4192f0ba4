"""Diffusion objectives: VDM, D3PM, MDLM, UDLM and MuLAN bounds on the digits.

Each objective is the negative ELBO of ``vb.diffusion`` (an upper bound on ``-log p(x)``),
trained by its one-draw estimate and logged in bits per dimension, term by term:

- ``vdm``: ``gaussian_vlb`` with the discretised decoder over ``num_bins`` levels (data: the
  integer grey levels of ``digits_levels``, mapped to the grid ``-1 + 2k / (num_bins - 1)``),
  continuous time (``num_steps=None``) or ``T`` steps; model ``vdm``.
- ``mulan``: ``mulan_vlb`` through ``MuLAN.vlb``, same data and decoder; model ``mulan``.
- ``d3pm``: ``categorical_vlb`` with ``num_steps`` steps of uniform or absorbing noise
  (``beta_t = 1 / (T - t + 1)``, so ``x_T`` is exactly the prior), mixture parameterisation;
  model ``discrete_denoiser``; data ``digits_binary``.
- ``mdlm`` / ``udlm``: the continuous-time masked / uniform-noise bounds ``mdlm_vlb`` /
  ``udlm_vlb`` with keep probability ``alpha(t) = 1 - t`` (``linear``) or
  ``cos(pi t / 2)`` (``cosine``); model ``discrete_denoiser``.

Metrics (training batches and test split): ``bpd`` (the negative ELBO in bits per
dimension) and its terms ``prior``, ``reconstruction``, ``diffusion`` (and MuLAN's
``latent``, the KL of its auxiliary latent), all in bits per dimension. Times are
stratified across a training batch (``vb.diffusion.stratified_times``; each ``t`` is still
``U(0, 1)``, so the estimate stays unbiased). The test evaluation averages
``eval_repeats`` draws per image (two independent stratified halves of the times) and
reports ``test_bpd`` with ``test_bpd_mc_se``, the Monte Carlo standard error of the test
mean estimated from the two halves; the Gaussian families add the discrete-time bounds
``test_bpd_T<T>`` for each ``T`` in ``eval_num_steps``, on the same draws.

The run's report draws bits per dimension over training and 16 ancestral samples of the
trained model; a sweep's report the test bound of each job.

With ``sample_metric=True`` (``d3pm``, ``mdlm``, ``udlm``; off by default) the evaluation
also draws ``sample_repeats`` ancestral samples per test image and reports
``test_sample_mmd2``, the sample metric of :mod:`vbounds.lab.objectives.catflow`, on a key
of its own (the bound's draws are unchanged).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import nnx
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.models.diffusion import categorical_ancestral_sample
from vbounds.lab.objectives.base import Objective
from vbounds.lab.objectives.catflow import SAMPLE_METRIC_DEFAULTS, with_sample_metric
from vbounds.lab.registry import register_objective
from vbounds.lab.report import job_labels, split_rows

vd = vb.diffusion
NOISES = ("uniform", "absorbing")
ALPHA_SCHEDULES = ("linear", "cosine")
GAUSSIAN = ("vdm", "mulan")
#: How many samples the run's report draws (a 4 x 4 grid).
NUM_REPORT_SAMPLES = 16


def to_bits(nats: jax.typing.ArrayLike, num_dims: int) -> jax.Array:
    """Nats per example to bits per dimension."""
    return jnp.asarray(nats) / (num_dims * math.log(2.0))


def levels_to_grid(levels: jax.Array, num_bins: int) -> jax.Array:
    """Integer levels ``k`` in ``[0, num_bins)`` to the grid value ``-1 + 2k / (num_bins - 1)``."""
    if not jnp.issubdtype(jnp.asarray(levels).dtype, jnp.integer):
        raise ValueError(
            "the Gaussian diffusion objectives take integer grey levels (data 'digits_levels'), "
            f"got dtype {jnp.asarray(levels).dtype}"
        )
    return 2.0 * jnp.asarray(levels, jnp.float32) / (num_bins - 1) - 1.0


def alpha_schedule(name: str) -> Callable:
    """The keep probability ``alpha(t)`` of MDLM / UDLM: ``linear`` or ``cosine``."""
    if name == "linear":
        return lambda t: 1.0 - t
    # max(., 0): cos(pi / 2) is -4e-8 in float32, and alpha(1) must be exactly 0.
    return lambda t: jnp.maximum(jnp.cos(0.5 * math.pi * t), 0.0)


@functools.cache
def d3pm_process(noise: str, num_classes: int, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """D3PM's one-step matrices ``[T, V, V]`` and prior ``[V]`` (host constants).

    Both noise types use ``beta_t = 1 / (T - t + 1)``, which ends at ``beta_T = 1``: ``x_T``
    is exactly uniform (uniform noise, ``V = num_classes``) or exactly the mask (absorbing
    noise, ``V = num_classes + 1``, the mask last).
    """
    with jax.ensure_compile_time_eval():
        betas = vd.absorbing_betas(num_steps)
        if noise == "uniform":
            transitions = vd.uniform_transitions(betas, num_classes)
            prior = np.full(num_classes, 1.0 / num_classes, np.float32)
        else:
            transitions = vd.absorbing_transitions(betas, num_classes + 1)
            prior = np.eye(num_classes + 1, dtype=np.float32)[-1]
        return np.asarray(transitions), prior


def _with_mask(logits: jax.Array) -> jax.Array:
    """Appends the mask class with logit ``-inf`` (``x_0`` is never the mask)."""
    return jnp.concatenate([logits, jnp.full((*logits.shape[:-1], 1), -jnp.inf)], axis=-1)


# Per-example negative-ELBO terms (nats) of one draw: (model, x, key, t, num_steps) -> dict.
# ``t`` is the diffusion time to use (ignored by D3PM, whose core draws its step itself);
# ``num_steps`` selects the discrete-time Gaussian bound (None: continuous time).


def _vdm_terms(config):
    def terms(model, x, key, t, num_steps):
        value = vd.gaussian_vlb(
            key,
            x,
            model.eps,
            model.gamma,
            num_steps=num_steps,
            decoder="discretized",
            num_bins=config.num_bins,
            t=t,
        )
        return value._asdict()

    return terms


def _mulan_terms(config):
    def terms(model, x, key, t, num_steps):
        value = model.vlb(
            key, x, num_steps=num_steps, decoder="discretized", num_bins=config.num_bins, t=t
        )
        return value._asdict()

    return terms


def d3pm_logits_fn(model, noise: str, num_steps: int) -> Callable:
    """``logits_fn(x_t, i)`` of ``categorical_vlb``: the model at time ``i / T``."""

    def logits_fn(x_t, i):
        logits = model(x_t, jnp.asarray(i, jnp.float32) / num_steps)
        return _with_mask(logits) if noise == "absorbing" else logits

    return logits_fn


def _d3pm_terms(config):
    def terms(model, x, key, t, num_steps):
        del t, num_steps
        transitions, prior = d3pm_process(config.noise, model.num_classes, config.num_steps)
        value = vd.categorical_vlb(
            key,
            x,
            d3pm_logits_fn(model, config.noise, config.num_steps),
            transitions,
            prior,
            parameterization=config.parameterization,
        )
        return value._asdict()

    return terms


def _mdlm_terms(config):
    alpha = alpha_schedule(config.schedule)

    def terms(model, x, key, t, num_steps):
        del num_steps
        value = vd.mdlm_vlb(
            key,
            x,
            lambda x_t, s: _with_mask(model(x_t, s)),
            alpha,
            mask_index=model.num_classes,
            t=t,
        )
        return value._asdict()

    return terms


def _udlm_terms(config):
    alpha = alpha_schedule(config.schedule)

    def terms(model, x, key, t, num_steps):
        del num_steps
        value = vd.udlm_vlb(key, x, model, alpha, num_classes=model.num_classes, t=t)
        return value._asdict()

    return terms


_TERMS = {
    "vdm": _vdm_terms,
    "mulan": _mulan_terms,
    "d3pm": _d3pm_terms,
    "mdlm": _mdlm_terms,
    "udlm": _udlm_terms,
}


@dataclasses.dataclass(frozen=True)
class _Family:
    """What differs between the objectives: the data map, the terms, the modes, sampling."""

    name: str
    prepare: Callable  # (model, levels [B, D]) -> x for the terms
    terms: Callable  # (model, x, key, t, num_steps) -> {term: nats}
    train_num_steps: int | None
    eval_modes: tuple  # ((suffix, num_steps), ...): "" first
    sample: Callable  # (model, key, n) -> [n, D] int classes


def _check_int(config, key: str, *, allow_none: bool = False, even: bool = False) -> None:
    value = config[key]
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (even and value % 2):
        what = "a positive even int" if even else "a positive int"
        raise ValueError(
            f"objective.{key} must be {what}{' or None' if allow_none else ''}, got {value!r}"
        )


def _check(config) -> None:
    name = config.name
    _check_int(config, "eval_repeats", even=True)
    if config.eval_repeats < 2:
        raise ValueError(f"objective.eval_repeats must be >= 2, got {config.eval_repeats}")
    _check_int(config, "sample_steps")
    if name in GAUSSIAN:
        _check_int(config, "num_bins")
        if config.num_bins < 2:
            raise ValueError(f"objective.num_bins must be >= 2, got {config.num_bins}")
        _check_int(config, "num_steps", allow_none=True)
        steps = config.eval_num_steps
        if not isinstance(steps, tuple | list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in steps
        ):
            raise ValueError(
                f"objective.eval_num_steps must be a tuple of positive ints, got {steps!r}"
            )
    if name == "d3pm":
        _check_int(config, "num_steps")
        if config.noise not in NOISES:
            raise ValueError(f"objective.noise must be one of {NOISES}, got {config.noise!r}")
        if config.parameterization not in ("mixture", "d3pm"):
            raise ValueError(
                "objective.parameterization must be 'mixture' or 'd3pm', got "
                f"{config.parameterization!r}"
            )
    if name in ("mdlm", "udlm") and config.schedule not in ALPHA_SCHEDULES:
        raise ValueError(
            f"objective.schedule must be one of {ALPHA_SCHEDULES}, got {config.schedule!r}"
        )


def _gaussian_prepare(config):
    def prepare(model, levels):
        model_levels = getattr(model, "num_levels", config.num_bins)
        if model_levels != config.num_bins:
            raise ValueError(
                f"objective.num_bins={config.num_bins} differs from the model's grid "
                f"(model.num_levels={model_levels})"
            )
        return levels_to_grid(levels, config.num_bins)

    return prepare


def _discrete_prepare(model, x):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ValueError(
            f"the discrete diffusion objectives take integer classes (data 'digits_binary'), "
            f"got dtype {x.dtype}"
        )
    return x


def make_sampler(config) -> Callable:
    """``sample(model, key, n) -> [n, D]`` integer classes: ancestral samples of the model.

    D3PM runs its ``T`` steps; MDLM / UDLM discretise the continuous-time process on
    ``sample_steps`` steps; VDM / MuLAN call the model's own sampler (``sample_steps``).
    """
    name = config.name
    if name in GAUSSIAN:
        return lambda model, key, n: model.sample(key, n, config.sample_steps)

    def sample(model, key, n):
        if name == "d3pm":
            transitions, prior = d3pm_process(config.noise, model.num_classes, config.num_steps)
            logits_fn = d3pm_logits_fn(model, config.noise, config.num_steps)
            parameterization, last_step = config.parameterization, "predict"
        else:  # the continuous-time process discretised on sample_steps steps
            steps = config.sample_steps
            with jax.ensure_compile_time_eval():
                betas = vd.betas_from_alpha(alpha_schedule(config.schedule), steps)
                if name == "mdlm":
                    transitions = vd.absorbing_transitions(betas, model.num_classes + 1)
                    prior = jnp.eye(model.num_classes + 1)[-1]
                else:
                    transitions = vd.uniform_transitions(betas, model.num_classes)
                    prior = jnp.full(model.num_classes, 1.0 / model.num_classes)

            def logits_fn(x_t, i):
                logits = model(x_t, jnp.asarray(i, jnp.float32) / steps)
                return _with_mask(logits) if name == "mdlm" else logits

            # UDLM's bound is the limit of the joint-then-normalise ("d3pm") reverse step.
            parameterization = "mixture" if name == "mdlm" else "d3pm"
            last_step = "posterior"
        return jax.vmap(
            lambda k: categorical_ancestral_sample(
                k,
                logits_fn,
                jnp.asarray(transitions),
                jnp.asarray(prior),
                model.data_dim,
                parameterization=parameterization,
                last_step=last_step,
            )
        )(jax.random.split(key, n))

    return sample


def _family(config) -> _Family:
    name = config.name
    gaussian = name in GAUSSIAN
    modes = (("", None),)
    if gaussian:
        modes += tuple((f"_T{s}", s) for s in config.eval_num_steps)
    return _Family(
        name=name,
        prepare=_gaussian_prepare(config) if gaussian else _discrete_prepare,
        terms=_TERMS[name](config),
        train_num_steps=config.num_steps if gaussian else None,
        eval_modes=modes,
        sample=make_sampler(config),
    )


def _bits_metrics(terms: dict, num_dims: int) -> dict:
    """``{term: bits/dim}`` and their sum ``bpd``."""
    bits = {k: to_bits(v, num_dims) for k, v in terms.items()}
    return {"bpd": sum(bits.values()), **bits}


def make_loss(family: _Family) -> Callable:
    """``loss(model, batch, key) -> (mean bpd, metrics)`` on a batch of integer data.

    Keys: ``k_t, k = split(key)``; the times are ``stratified_times(k_t, B)`` and example
    ``b`` uses ``split(k, B)[b]`` with time ``b``.
    """

    def loss(model, batch, key):
        x = family.prepare(model, batch["x"])
        n, num_dims = x.shape[0], math.prod(x.shape[1:])
        k_t, k = jax.random.split(key)
        times = vd.stratified_times(k_t, n)
        steps = family.train_num_steps
        terms = jax.vmap(lambda xi, ki, ti: family.terms(model, xi, ki, ti, steps))(
            x, jax.random.split(k, n), times
        )
        metrics = jax.tree.map(jnp.mean, _bits_metrics(terms, num_dims))
        return metrics["bpd"], metrics

    return loss


def eval_times(key: jax.Array, repeats: int) -> jax.Array:
    """Two independent stratified halves of ``repeats`` times (for the Monte Carlo error)."""
    k_a, k_b = jax.random.split(key)
    half = repeats // 2
    return jnp.concatenate([vd.stratified_times(k_a, half), vd.stratified_times(k_b, half)])


def make_evaluate(family: _Family, repeats: int) -> Callable:
    """Per-example test outputs: each bound averaged over ``repeats`` draws.

    Example ``b`` of the batch draws with ``key_b = split(key, B)[b]``: times
    ``eval_times(split(key_b)[0], R)`` and keys ``split(split(key_b)[1], R)``, the same
    draws for every evaluation mode (continuous time and each ``T``). Outputs ``bpd``,
    its terms, ``bpd_T<T>``, and for each bound ``<name>_mc_var``: the squared difference
    of the two halves' means over 4, an unbiased estimate of the variance of the
    example's mean.
    """

    def evaluate(model, batch, key):
        x = family.prepare(model, batch["x"])
        num_dims = math.prod(x.shape[1:])

        def one(xi, ki):
            k_t, k_draw = jax.random.split(ki)
            times, keys = eval_times(k_t, repeats), jax.random.split(k_draw, repeats)
            out = {}
            for suffix, num_steps in family.eval_modes:
                terms = jax.vmap(lambda kr, tr, s=num_steps: family.terms(model, xi, kr, tr, s))(
                    keys, times
                )
                bits = _bits_metrics(terms, num_dims)
                total = bits["bpd"]
                half = repeats // 2
                out[f"bpd{suffix}"] = jnp.mean(total)
                out[f"bpd{suffix}_mc_var"] = (
                    jnp.mean(total[:half]) - jnp.mean(total[half:])
                ) ** 2 / 4
                if not suffix:
                    out.update({k: jnp.mean(v) for k, v in bits.items() if k != "bpd"})
            return out

        out = jax.vmap(one)(x, jax.random.split(key, x.shape[0]))
        return jax.lax.stop_gradient(out)

    return evaluate


def summarize(outputs) -> dict:
    """``test_<name>``: the test mean of each output; ``test_<name>_mc_se`` its Monte Carlo
    standard error (``sqrt(sum of the examples' variances) / N``)."""
    summary = {}
    for name, values in outputs.items():
        if name.endswith("_mc_var"):
            continue
        values = np.asarray(values, np.float64)
        summary[f"test_{name}"] = float(np.mean(values))
        if f"{name}_mc_var" in outputs:
            var = np.asarray(outputs[f"{name}_mc_var"], np.float64)
            summary[f"test_{name}_mc_se"] = float(np.sqrt(np.sum(var)) / len(var))
    return summary


def _bound_keys(test_row: dict) -> list[str]:
    keys = [k for k in test_row if k.startswith("test_bpd") and not k.endswith("_mc_se")]
    return sorted(keys, key=lambda k: (k != "test_bpd", k))


def _sample_grid(images: np.ndarray, side: int = 8) -> np.ndarray:
    """A square grid of ``side x side`` images, separated by 1-pixel lines of NaN."""
    n = int(math.isqrt(len(images)))
    framed = np.full((n, n, side + 1, side + 1), np.nan)
    framed[:, :, 1:, 1:] = images[: n * n].reshape(n, n, side, side)
    grid = framed.transpose(0, 2, 1, 3).reshape(n * (side + 1), n * (side + 1))
    return np.pad(grid, ((0, 1), (0, 1)), constant_values=np.nan)


def make_report(family: _Family, config) -> Callable:
    """The run's report: bits per dimension over training and 16 ancestral samples."""

    def report(rows, path, *, model=None, key=None, title=""):
        train, test = split_rows(rows)
        fig = Figure(figsize=(11, 4.2))
        ax, ax_samples = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.7, 1]})
        train_points = [(r["step"], r["bpd"]) for r in train if "bpd" in r]
        if train_points:
            ax.plot(*zip(*train_points, strict=True), lw=1, alpha=0.7, label="training batches")
        final = test[-1] if test else {}
        for name in _bound_keys(final):
            points = [(r["step"], r[name]) for r in test if name in r]
            label = name.replace("test_bpd", "test") + (
                " (continuous time)" if name == "test_bpd" and len(family.eval_modes) > 1 else ""
            )
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("negative ELBO (bits/dim)")
        if test:
            lo = min([r[k] for r in test for k in _bound_keys(r)] + [p[1] for p in train_points])
            ax.set_ylim(lo - 0.1, max(lo + 1.5, 1.5 * lo))
            se = final.get("test_bpd_mc_se", float("nan"))
            bpd = final["test_bpd"]
            ax.set_title(f"test negative ELBO {bpd:.3f} ± {se:.3f} (MC s.e.) bits/dim")
        ax.legend(fontsize=8)
        if model is not None:
            graphdef, state = nnx.split(model)
            draw = jax.jit(
                lambda s, k: family.sample(nnx.merge(graphdef, s), k, NUM_REPORT_SAMPLES)
            )
            images = np.asarray(draw(state, key if key is not None else jax.random.key(0)))
            levels = getattr(model, "num_levels", None) or model.num_classes
            cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="#c8d8e8")
            ax_samples.imshow(_sample_grid(images), cmap=cmap, vmin=0, vmax=levels - 1)
            steps = config.num_steps if family.name == "d3pm" else config.sample_steps
            ax_samples.set_title(f"ancestral samples ({steps} steps)", fontsize=9)
        ax_samples.axis("off")
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)

    return report


def sweep_report(jobs, path: str) -> None:
    """A sweep's report: each job's test bounds (bits/dim, Monte Carlo error bars)."""
    if not jobs:
        return
    labels = job_labels(jobs)
    names = _bound_keys(jobs[0])
    fig = Figure(figsize=(8, 1.2 + 0.45 * len(jobs)))
    ax = fig.subplots()
    for offset, name in enumerate(names):
        y = np.arange(len(jobs)) + 0.2 * (offset - (len(names) - 1) / 2)
        x = [job.get(name, math.nan) for job in jobs]
        err = [job.get(f"{name}_mc_se", 0.0) for job in jobs]
        ax.errorbar(x, y, xerr=err, fmt="o", capsize=3, label=name.replace("test_bpd", "bpd"))
    ax.set_yticks(np.arange(len(jobs)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test negative ELBO (bits/dim)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def make(config) -> Objective:
    """The diffusion objective ``config.name`` names.

    Args:
      config: the ``objective`` section, completed with its declared defaults.

    Returns:
      An :class:`Objective` (loss in bits/dim, per-example evaluation, report, sweep report).
    """
    _check(config)
    family = _family(config)
    objective = Objective(
        loss=make_loss(family),
        evaluate=make_evaluate(family, config.eval_repeats),
        summarize=summarize,
        report=make_report(family, config),
        sweep_report=sweep_report,
    )
    if config.name not in GAUSSIAN:  # opt-in sample MMD^2 (objective.sample_metric)
        objective = with_sample_metric(objective, family.sample, config)
    return objective


_EVAL = {"eval_repeats": 20, "sample_steps": 100}
_GAUSSIAN_DEFAULTS = {
    "num_bins": 17,
    "num_steps": None,
    "eval_num_steps": (100, 1000),
    **_EVAL,
}
_DEFAULTS = {
    "vdm": _GAUSSIAN_DEFAULTS,
    "mulan": _GAUSSIAN_DEFAULTS,
    "d3pm": {
        "noise": "uniform",
        "num_steps": 50,
        "parameterization": "mixture",
        **_EVAL,
        **SAMPLE_METRIC_DEFAULTS,  # the sample MMD^2 of the catflow objective, off
    },
    "mdlm": {"schedule": "linear", **_EVAL, **SAMPLE_METRIC_DEFAULTS},
    "udlm": {"schedule": "linear", **_EVAL, **SAMPLE_METRIC_DEFAULTS},
}
_DOCS = {
    "vdm": "VDM's negative ELBO, discretised decoder (Kingma et al. 2021), bits/dim",
    "mulan": "MuLAN's negative ELBO with its auxiliary-latent KL (Sahoo et al. 2024), bits/dim",
    "d3pm": "D3PM's T-step negative ELBO, uniform or absorbing noise (Austin et al. 2021)",
    "mdlm": "continuous-time masked diffusion negative ELBO (Sahoo et al. 2024), bits/dim",
    "udlm": "continuous-time uniform-noise diffusion negative ELBO (Schiff et al. 2024)",
}
for _name, _defaults in _DEFAULTS.items():
    register_objective(_name, make, defaults=dict(_defaults), doc=_DOCS[_name])
