"""Conditional flow matching on the digits' grey levels, with ODE likelihoods in bits/dim.

``cfm``: the one-draw CFM loss ``vb.flow.cfm_loss`` on the straight path (times stratified
over the batch) of uniformly dequantised data: level ``k`` maps to ``-1 + 2k / (L - 1)``
plus ``U(-w/2, w/2)``, ``w = 2 / (L - 1)``. The test evaluation estimates each image's
``-log P(k) <= -E_u log p(x + u) - d log w`` (the dequantisation bound) by
``vb.flow.ode_log_likelihood`` with one dequantisation draw and one Hutchinson probe per
image and ``eval_ode_steps`` RK4 steps: ``test_bpd`` in bits per dimension, comparable with
the ``vdm`` objective's bound, and ``test_bpd_se`` the standard error of the test mean
(images, dequantisation and probes together). Unlike the VDM bound it carries the ODE
solver's error, which is not of known sign.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import nnx
from matplotlib.figure import Figure

import vbounds as vb
from vbounds.lab.models.diffusion import to_levels
from vbounds.lab.objectives.base import Objective
from vbounds.lab.objectives.diffusion import (
    NUM_REPORT_SAMPLES,
    _check_int,
    _sample_grid,
    levels_to_grid,
    sweep_report,
)
from vbounds.lab.registry import register_objective
from vbounds.lab.report import split_rows


def _dequantised(levels, key, num_bins):
    width = 2.0 / (num_bins - 1)
    grid = levels_to_grid(levels, num_bins)
    return grid + width * (jax.random.uniform(key, grid.shape) - 0.5), width


def make_loss(config):
    """``loss(model, batch, key) -> (mean CFM loss per dimension, metrics)``."""

    def loss(model, batch, key):
        k_u, k_t, k = jax.random.split(key, 3)
        x, _ = _dequantised(batch["x"], k_u, config.num_bins)
        n, d = x.shape
        times = vb.diffusion.stratified_times(k_t, n)
        values = jax.vmap(lambda xi, ki, ti: vb.flow.cfm_loss(ki, xi, model, t=ti))(
            x, jax.random.split(k, n), times
        )
        value = jnp.mean(values) / d
        return value, {"cfm": value}

    return loss


def make_evaluate(config):
    """Per-example ``bpd`` (the ODE estimate of the dequantisation bound) and ``cfm``."""

    def evaluate(model, batch, key):
        k_u, k_probe, k_cfm = jax.random.split(key, 3)
        x, width = _dequantised(batch["x"], k_u, config.num_bins)
        n, d = x.shape
        log_p = jax.vmap(
            lambda xi, ki: vb.flow.ode_log_likelihood(
                xi,
                model,
                num_steps=config.eval_ode_steps,
                trace="hutchinson",
                key=ki,
            )
        )(x, jax.random.split(k_probe, n))
        bpd = -(log_p + d * math.log(width)) / (d * math.log(2.0))
        cfm = jax.vmap(lambda xi, ki: vb.flow.cfm_loss(ki, xi, model))(
            x, jax.random.split(k_cfm, n)
        )
        return jax.lax.stop_gradient({"bpd": bpd, "cfm": cfm / d})

    return evaluate


def summarize(outputs) -> dict:
    """Test means, and ``test_bpd_se``: the standard error of the mean over the images."""
    bpd = np.asarray(outputs["bpd"], np.float64)
    return {
        "test_bpd": float(bpd.mean()),
        "test_bpd_se": float(bpd.std(ddof=1) / math.sqrt(bpd.size)) if bpd.size > 1 else 0.0,
        "test_cfm": float(np.mean(np.asarray(outputs["cfm"], np.float64))),
    }


def make_report(config):
    """The run's report: the CFM loss over training and 16 ODE samples."""

    def report(rows, path, *, model=None, key=None, title=""):
        train, test = split_rows(rows)
        fig = Figure(figsize=(11, 4.2))
        ax, ax_samples = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.7, 1]})
        points = [(r["step"], r["cfm"]) for r in train if "cfm" in r]
        if points:
            ax.plot(*zip(*points, strict=True), lw=1, alpha=0.7, label="training batches")
        tests = [(r["step"], r["test_cfm"]) for r in test if "test_cfm" in r]
        if tests:
            ax.plot(*zip(*tests, strict=True), marker="o", label="test")
            final = test[-1]
            ax.set_title(
                f"test {final['test_bpd']:.3f} ± {final.get('test_bpd_se', float('nan')):.3f} "
                "bits/dim (ODE, dequantised)"
            )
        ax.set_xlabel("step")
        ax.set_ylabel("CFM loss per dimension")
        ax.legend(fontsize=8)
        if model is not None:
            graphdef, state = nnx.split(model)

            def draw(s, k):
                velocity = nnx.merge(graphdef, s)
                x0 = jax.random.normal(k, (NUM_REPORT_SAMPLES, velocity.data_dim))
                x1 = jax.vmap(
                    lambda y: vb.flow.ode_sample(y, velocity, num_steps=config.sample_steps)
                )(x0)
                return to_levels(x1, config.num_bins)

            images = np.asarray(jax.jit(draw)(state, key if key is not None else jax.random.key(0)))
            cmap = matplotlib.colormaps["gray_r"].with_extremes(bad="#c8d8e8")
            ax_samples.imshow(_sample_grid(images), cmap=cmap, vmin=0, vmax=config.num_bins - 1)
            ax_samples.set_title(f"ODE samples ({config.sample_steps} RK4 steps)", fontsize=9)
        ax_samples.axis("off")
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)

    return report


def make(config) -> Objective:
    """The CFM objective of the ``objective`` config section."""
    _check_int(config, "num_bins")
    if config.num_bins < 2:
        raise ValueError(f"objective.num_bins must be >= 2, got {config.num_bins}")
    _check_int(config, "eval_ode_steps")
    _check_int(config, "sample_steps")
    return Objective(
        loss=make_loss(config),
        evaluate=make_evaluate(config),
        summarize=summarize,
        report=make_report(config),
        sweep_report=sweep_report,
    )


register_objective(
    "cfm",
    make,
    defaults={"num_bins": 17, "eval_ode_steps": 20, "sample_steps": 20},
    doc="conditional flow matching (Lipman et al. 2023); ODE bits/dim of dequantised data",
)
