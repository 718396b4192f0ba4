"""CFM and VDM on continuous low-dimensional data (the 2-D toy densities), in nats.

- ``cfm_toy2d``: the one-draw loss ``vb.flow.cfm_loss`` on the straight path from
  ``N(0, I)`` to the data (times stratified over the batch); model ``velocity_mlp``. The
  test evaluation is the negative log-likelihood ``-log p(x)`` of each test point by
  ``vb.flow.ode_log_likelihood`` with the exact trace of the Jacobian (cheap in 2-D) and RK4,
  at each step count of ``eval_ode_steps``: ``test_nll_S<n>``; ``test_nll`` is the one at
  the largest count. It carries the ODE solver's error, of unknown sign (the difference
  between the step counts shows its size); it is not a bound.
- ``vdm_toy2d``: the continuous-time negative ELBO ``vb.diffusion.gaussian_vlb`` with the
  Gaussian decoder ``N(x; z_0 / alpha_0, sigma_0^2 / alpha_0^2)``, an upper bound on
  ``-log p(x)`` of the diffusion model; model ``vdm_continuous``. The test evaluation
  averages ``eval_repeats`` draws per point (two independent stratified halves of the
  times): ``test_nll_plain``, the plain one-draw estimate averaged, and ``test_nll``, the
  same draws with two zero-mean control variates subtracted (:func:`vdm_terms_cv`: an
  estimate of the same bound with a far smaller Monte Carlo error); each with
  ``_mc_se``, the Monte Carlo standard error of the test mean (from the halves), and the
  mean terms ``test_prior``, ``test_reconstruction``, ``test_diffusion`` (plain).

Both report ``test_nll_se``, the standard error of the test mean over the test points (for
VDM it includes the Monte Carlo noise). When the test split carries the true log-density
``log_p`` (``toy2d`` with ``density="ring8"``) they add ``test_true_nll``, the test mean of
``-log p_true`` (the floor: the cross-entropy exceeds it by ``KL(p_true || p_model)`` in
expectation), and ``test_gap = test_nll - test_true_nll`` with its paired standard error
``test_gap_se``.

The run's report: the learning curves, a heat-map of the model's density on a grid (CFM:
``exp`` of the exact-trace ODE log-likelihood; VDM: ``exp(-negative ELBO)``, a lower bound
on the density, averaged over ``grid_repeats`` draws in the exponent) and samples (ODE,
``sample_steps`` RK4 steps; ancestral, ``sample_steps`` steps). Every quantity is in nats per
example (not per dimension).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.objectives.base import Objective
from vbounds.lab.objectives.diffusion import _check_int, eval_times
from vbounds.lab.registry import register_objective
from vbounds.lab.report import job_labels, split_rows

vd = vb.diffusion
#: The square ``[-GRID_LIMIT, GRID_LIMIT]^2`` of the report's heat-map (standardised data).
GRID_LIMIT = 2.5


def _real(x):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating) or x.ndim != 2:
        raise ValueError(
            f"the toy2d objectives take real data [batch, dim] (data 'toy2d'), got {x.dtype} "
            f"of shape {x.shape}"
        )
    return x


def _steps_tuple(config, key: str) -> tuple:
    steps = config[key]
    if (
        not isinstance(steps, tuple | list)
        or not steps
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in steps)
    ):
        raise ValueError(
            f"objective.{key} must be a non-empty tuple of positive ints, got {steps!r}"
        )
    return tuple(sorted(set(steps)))


def _truth(batch) -> dict:
    """``true_nll`` (the test point's ``-log p_true``) when the split carries ``log_p``."""
    if "log_p" not in batch:
        return {}
    return {"true_nll": -jnp.asarray(batch["log_p"], jnp.float32)}


def _mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else 0.0
    return float(values.mean()), float(se)


def summarize(outputs) -> dict:
    """Test means, their standard errors over the points, the MC error, the truth and gap."""
    summary = {}
    for name, values in outputs.items():
        if name.endswith("_mc_var"):
            continue
        mean, se = _mean_se(values)
        summary[f"test_{name}"] = mean
        if name.startswith("nll") or name == "true_nll":
            summary[f"test_{name}_se"] = se
        if f"{name}_mc_var" in outputs:
            var = np.asarray(outputs[f"{name}_mc_var"], np.float64)
            summary[f"test_{name}_mc_se"] = float(np.sqrt(np.sum(var)) / len(var))
    if "true_nll" in outputs:
        gap = np.asarray(outputs["nll"], np.float64) - np.asarray(outputs["true_nll"], np.float64)
        summary["test_gap"], summary["test_gap_se"] = _mean_se(gap)
    return summary


# --------------------------------------------------------------------------- CFM


def cfm_log_density(model, x, num_steps: int):
    """``[N]`` exact-trace RK4 ODE log-densities of the points ``x [N, D]``."""
    return jax.vmap(
        lambda xi: vb.flow.ode_log_likelihood(xi, model, num_steps=num_steps, trace="exact")
    )(x)


def make_cfm_loss(config):
    """``loss(model, batch, key) -> (mean CFM loss per example, metrics)``."""

    def loss(model, batch, key):
        x = _real(batch["x"])
        k_t, k = jax.random.split(key)
        n = x.shape[0]
        times = vd.stratified_times(k_t, n)
        values = jax.vmap(lambda xi, ki, ti: vb.flow.cfm_loss(ki, xi, model, t=ti))(
            x, jax.random.split(k, n), times
        )
        value = jnp.mean(values)
        return value, {"cfm": value}

    return loss


def make_cfm_evaluate(config):
    """Per-point ``nll_S<n>`` for each ODE step count, ``nll`` (the largest), ``cfm``."""
    steps = _steps_tuple(config, "eval_ode_steps")

    def evaluate(model, batch, key):
        x = _real(batch["x"])
        out = {}
        for s in steps:
            out[f"nll_S{s}"] = -cfm_log_density(model, x, s)
        out["nll"] = out[f"nll_S{steps[-1]}"]
        out["cfm"] = jax.vmap(lambda xi, ki: vb.flow.cfm_loss(ki, xi, model))(
            x, jax.random.split(key, x.shape[0])
        )
        out.update(_truth(batch))
        return jax.lax.stop_gradient(out)

    return evaluate


def _cfm_density_and_samples(config):
    steps = _steps_tuple(config, "eval_ode_steps")[-1]

    def compute(model, grid, key):
        log_p = cfm_log_density(model, grid, steps)
        x0 = jax.random.normal(key, (config.num_report_samples, grid.shape[1]))
        x1 = jax.vmap(lambda y: vb.flow.ode_sample(y, model, num_steps=config.sample_steps))(x0)
        return log_p, x1

    return (
        compute,
        f"exp(ODE log-likelihood), {steps} RK4 steps",
        (f"ODE samples ({config.sample_steps} RK4 steps)"),
    )


# --------------------------------------------------------------------------- VDM


def _vdm_terms(model, x, key, t):
    return vd.gaussian_vlb(key, x, model.eps, model.gamma, decoder="gaussian", t=t)._asdict()


def vdm_terms_cv(model, x, key, t):
    """One draw of the negative ELBO's terms and its control-variate-corrected total.

    ``gaussian_vlb`` at the draws ``eps, eps_0 ~ N(0, I)`` (``k_eps, k_0 = split(key)``),
    and ``nll_cv = total - 0.5 sum(gamma'(t) alpha_t^2 (eps^2 - 1)) - 0.5 sum(eps_0^2 - 1)``.
    Both corrections have mean zero given ``t`` (``E eps^2 = 1``), so ``nll_cv`` estimates the
    same bound; they remove most of the noise of the squared noise in the diffusion term
    ``0.5 gamma' ||eps - eps_hat||^2`` at low noise (where ``eps_hat`` is near 0;
    ``alpha_t^2 = sigmoid(-gamma_t)`` fades the correction out at high noise, where
    ``eps_hat`` is near ``eps``) and all of that of the Gaussian decoder's term
    ``0.5 sum(log 2 pi + gamma_0 + eps_0^2)``.
    """
    k_eps, k_0 = jax.random.split(key)
    eps = jax.random.normal(k_eps, x.shape, x.dtype)
    eps_0 = jax.random.normal(k_0, x.shape, x.dtype)
    terms = vd.gaussian_vlb(
        key, x, model.eps, model.gamma, decoder="gaussian", t=t, eps=eps, eps_0=eps_0
    )._asdict()
    t = jnp.asarray(t, x.dtype)
    gamma, dgamma = jax.jvp(model.gamma, (t,), (jnp.ones_like(t),))
    weight = jnp.broadcast_to(0.5 * dgamma * jax.nn.sigmoid(-gamma), x.shape)
    correction = jnp.sum(weight * (eps**2 - 1.0)) + 0.5 * jnp.sum(eps_0**2 - 1.0)
    return terms, sum(terms.values()) - correction


def make_vdm_loss(config):
    """``loss(model, batch, key) -> (mean negative ELBO per example, metrics)``."""

    def loss(model, batch, key):
        x = _real(batch["x"])
        n = x.shape[0]
        k_t, k = jax.random.split(key)
        times = vd.stratified_times(k_t, n)
        terms = jax.vmap(lambda xi, ki, ti: _vdm_terms(model, xi, ki, ti))(
            x, jax.random.split(k, n), times
        )
        metrics = {k: jnp.mean(v) for k, v in terms.items()}
        metrics["nll"] = sum(metrics.values())
        return metrics["nll"], metrics

    return loss


def vdm_bound(model, x, key, repeats: int):
    """The negative ELBO of each point of ``x [N, D]`` over ``repeats`` draws.

    Times: two stratified halves (``eval_times``). Returns ``(bounds, terms)``: ``bounds``
    holds ``nll`` (the control-variate estimate, :func:`vdm_terms_cv`) and ``nll_plain``
    (the plain ``gaussian_vlb`` total) on the same draws, each with ``<name>_mc_var``, the
    variance of the point's mean estimated from the two halves; ``terms`` the mean terms.
    """

    def one(xi, ki):
        k_t, k_draw = jax.random.split(ki)
        times, keys = eval_times(k_t, repeats), jax.random.split(k_draw, repeats)
        terms, total_cv = jax.vmap(lambda kr, tr: vdm_terms_cv(model, xi, kr, tr))(keys, times)
        half = repeats // 2
        out = {}
        for name, total in (("nll", total_cv), ("nll_plain", sum(terms.values()))):
            out[name] = jnp.mean(total)
            out[f"{name}_mc_var"] = (jnp.mean(total[:half]) - jnp.mean(total[half:])) ** 2 / 4
        return out, {k: jnp.mean(v) for k, v in terms.items()}

    return jax.vmap(one)(x, jax.random.split(key, x.shape[0]))


def make_vdm_evaluate(config):
    """Per-point ``nll`` (the negative ELBO over ``eval_repeats`` draws), its terms, MC var."""

    def evaluate(model, batch, key):
        x = _real(batch["x"])
        bounds, terms = vdm_bound(model, x, key, config.eval_repeats)
        out = {**bounds, **terms}
        out.update(_truth(batch))
        return jax.lax.stop_gradient(out)

    return evaluate


def _vdm_density_and_samples(config):
    def compute(model, grid, key):
        k_grid, k_sample = jax.random.split(key)
        bounds, _ = vdm_bound(model, grid, k_grid, config.grid_repeats)
        samples = model.sample(k_sample, config.num_report_samples, config.sample_steps)
        return -bounds["nll"], samples

    return (
        compute,
        f"exp(-negative ELBO), {config.grid_repeats} draws per point",
        (f"ancestral samples ({config.sample_steps} steps)"),
    )


# --------------------------------------------------------------------------- reports


def density_grid(size: int, limit: float = GRID_LIMIT) -> tuple[np.ndarray, np.ndarray]:
    """The axis ``[size]`` and the points ``[size * size, 2]`` (row-major in ``y``) of the grid."""
    axis = np.linspace(-limit, limit, size, dtype=np.float32)
    xx, yy = np.meshgrid(axis, axis)
    return axis, np.stack([xx.ravel(), yy.ravel()], axis=-1)


def make_report(config, train_key: str, density_and_samples):
    """Learning curves, the density heat-map on the grid, and samples."""
    compute, density_label, sample_label = density_and_samples(config)

    def report(rows, path, *, model=None, key=None, title=""):
        train, test = split_rows(rows)
        fig = Figure(figsize=(14, 4.3))
        ax, ax_density, ax_samples = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.4, 1, 1]})
        points = [(r["step"], r[train_key]) for r in train if train_key in r]
        if points:
            ax.plot(*zip(*points, strict=True), lw=1, alpha=0.7, label=f"training {train_key}")
        tests = [(r["step"], r[f"test_{train_key}"]) for r in test if f"test_{train_key}" in r]
        if tests:
            ax.plot(*zip(*tests, strict=True), marker="o", label=f"test {train_key}")
        ax.set_xlabel("step")
        ax.set_ylabel(f"{train_key} (nats per point)")
        if test:
            final = test[-1]
            line = f"test NLL {final['test_nll']:.3f} ± {final.get('test_nll_se', math.nan):.3f}"
            if "test_true_nll" in final:
                line += f" (truth {final['test_true_nll']:.3f})"
            ax.set_title(line, fontsize=10)
            if train_key != "nll":
                twin = ax.twinx()
                nll = [(r["step"], r["test_nll"]) for r in test if "test_nll" in r]
                twin.plot(*zip(*nll, strict=True), "s--", color="C3", label="test NLL (ODE)")
                twin.set_ylabel("test NLL (nats)", color="C3")
            else:
                lo = min(p[1] for p in points + tests)
                ax.set_ylim(lo - 0.2, lo + 3.0)
        if points or tests:
            ax.legend(fontsize=8)
        for a in (ax_density, ax_samples):
            a.set_xlim(-GRID_LIMIT, GRID_LIMIT)
            a.set_ylim(-GRID_LIMIT, GRID_LIMIT)
            a.set_aspect("equal")
        if model is not None:
            graphdef, state = nnx.split(model)
            axis, grid = density_grid(config.grid_size)
            fn = jax.jit(lambda s, g, k: compute(nnx.merge(graphdef, s), g, k))
            log_p, samples = fn(state, grid, key if key is not None else jax.random.key(0))
            density = np.exp(np.asarray(log_p, np.float64)).reshape(axis.size, axis.size)
            # The colour scale stops at the 99.5th percentile: a few noisy grid points of a
            # Monte Carlo bound would otherwise set it.
            vmax = float(np.nanpercentile(density, 99.5))
            ax_density.pcolormesh(
                axis, axis, density, cmap="magma", shading="auto", vmin=0.0, vmax=vmax
            )
            ax_density.set_title(density_label, fontsize=9)
            samples = np.asarray(samples)
            ax_samples.scatter(samples[:, 0], samples[:, 1], s=1, alpha=0.5)
            ax_samples.set_title(sample_label, fontsize=9)
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=90)

    return report


def sweep_report(jobs, path: str) -> None:
    """A sweep's report: each job's test NLL (nats) with its standard error, and the truth."""
    if not jobs:
        return
    labels = job_labels(jobs)
    fig = Figure(figsize=(8, 1.2 + 0.4 * len(jobs)))
    ax = fig.subplots()
    y = np.arange(len(jobs))
    x = [job.get("test_nll", math.nan) for job in jobs]
    err = [job.get("test_nll_se", 0.0) for job in jobs]
    ax.errorbar(x, y, xerr=err, fmt="o", capsize=3, label="test NLL")
    truth = [job.get("test_true_nll", math.nan) for job in jobs]
    if np.any(np.isfinite(truth)):
        ax.plot(truth, y, "k|", ms=14, label="true entropy (test mean of -log p)")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test NLL (nats per point)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --------------------------------------------------------------------------- factories


def _check_common(config) -> None:
    _check_int(config, "sample_steps")
    _check_int(config, "grid_size")
    _check_int(config, "num_report_samples")


def make_cfm(config) -> Objective:
    """The ``cfm_toy2d`` objective of the ``objective`` config section."""
    _check_common(config)
    _steps_tuple(config, "eval_ode_steps")
    return Objective(
        loss=make_cfm_loss(config),
        evaluate=make_cfm_evaluate(config),
        summarize=summarize,
        report=make_report(config, "cfm", _cfm_density_and_samples),
        sweep_report=sweep_report,
    )


def make_vdm(config) -> Objective:
    """The ``vdm_toy2d`` objective of the ``objective`` config section."""
    _check_common(config)
    for key in ("eval_repeats", "grid_repeats"):
        _check_int(config, key, even=True)
        if config[key] < 2:
            raise ValueError(f"objective.{key} must be >= 2, got {config[key]}")
    return Objective(
        loss=make_vdm_loss(config),
        evaluate=make_vdm_evaluate(config),
        summarize=summarize,
        report=make_report(config, "nll", _vdm_density_and_samples),
        sweep_report=sweep_report,
    )


_REPORT = {"sample_steps": 100, "grid_size": 80, "num_report_samples": 2000}
register_objective(
    "cfm_toy2d",
    make_cfm,
    defaults={"eval_ode_steps": (10, 50), **_REPORT},
    doc="conditional flow matching on continuous data; exact-trace ODE test NLL in nats",
)
register_objective(
    "vdm_toy2d",
    make_vdm,
    defaults={"eval_repeats": 200, "grid_repeats": 64, **_REPORT},
    doc="VDM's continuous-time negative ELBO, Gaussian decoder, continuous data; nats",
)
