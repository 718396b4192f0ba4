"""CatFlow in the framework: the catflow objective's loss is vb.flow.catflow_loss per pixel,
the sample MMD^2 matches a hand computation, the opt-in metric leaves the D3PM evaluation's
draws unchanged, and the smoke config trains and writes the metric."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import vbounds as vb
from vbounds.lab import train_and_evaluate
from vbounds.lab.models.catflow import CatFlowMLP
from vbounds.lab.models.diffusion import DiscreteDenoiser
from vbounds.lab.objectives import make_objective
from vbounds.lab.objectives.catflow import mmd_squared
from vbounds.lab.registry import lookup


def _objective(name, **overrides):
    return make_objective(lookup("objective", name).config(name, **overrides))


def _jit(fn, model):
    """``fn(model, batch, key)`` compiled once (eager evaluation dispatches op by op)."""
    graphdef, state = nnx.split(model)
    compiled = jax.jit(lambda s, batch, key: fn(nnx.merge(graphdef, s), batch, key))
    return lambda batch, key: compiled(state, batch, key)


def test_catflow_loss_and_evaluation_are_the_core_loss():
    d = 6
    model = CatFlowMLP(d, num_classes=2, hidden_sizes=(8,), rngs=nnx.Rngs(0))
    objective = _objective("catflow", eval_repeats=2, sample_steps=3, sample_repeats=2)
    x = jax.random.bernoulli(jax.random.key(0), 0.3, (4, d)).astype(jnp.int32)
    key = jax.random.key(1)
    loss, metrics = _jit(objective.loss, model)({"x": x}, key)
    k_t, k = jax.random.split(key)
    times = vb.diffusion.stratified_times(k_t, 4)
    keys = jax.random.split(k, 4)
    one = _jit(lambda m, xb, kt: vb.flow.catflow_loss(kt[0], xb, m, num_classes=2, t=kt[1]), model)
    by_hand = [one(x[b], (keys[b], times[b])) for b in range(4)]  # one example at a time
    np.testing.assert_allclose(loss, np.mean(by_hand) / d, rtol=1e-5)
    np.testing.assert_allclose(metrics["ce_bits"], loss / math.log(2), rtol=1e-6)

    outputs = _jit(objective.evaluate, model)({"x": x}, key)
    assert outputs["sample_metric"]["samples"].shape == (4, 2, d)
    summary = objective.summarize(outputs)
    assert {"test_ce", "test_ce_bits", "test_sample_mmd2"} <= set(summary)
    np.testing.assert_allclose(summary["test_ce_bits"], summary["test_ce"] / math.log(2), 1e-6)


def test_mmd_squared_against_a_hand_computation():
    x = np.array([[0, 1, 1], [1, 1, 0], [0, 0, 0]])
    y = np.array([[1, 1, 1], [0, 1, 0]])
    s = 2.0

    def k(a, b):
        return math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b, strict=True)) / s)

    xx = sum(k(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j) / 6
    yy = sum(k(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j) / 2
    xy = sum(k(a, b) for a in x for b in y) / 6
    assert mmd_squared(x, y, scale=s) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert mmd_squared(x, y, scale=s) == pytest.approx(mmd_squared(y, x, scale=s), rel=1e-12)
    with pytest.raises(ValueError, match="scale"):
        mmd_squared(x, y, scale=0.0)
    with pytest.raises(ValueError, match="x"):
        mmd_squared(x[:, :2], y)


def test_the_opt_in_sample_metric_keeps_the_d3pm_evaluation():
    model = DiscreteDenoiser(6, num_classes=2, hidden_sizes=(8,), rngs=nnx.Rngs(0))
    x = jax.random.bernoulli(jax.random.key(0), 0.3, (3, 6)).astype(jnp.int32)
    common = dict(noise="absorbing", num_steps=4, eval_repeats=2)
    plain = _objective("d3pm", **common)
    scored = _objective("d3pm", **common, sample_metric=True, sample_repeats=2)
    key = jax.random.key(2)
    before = _jit(plain.evaluate, model)({"x": x}, key)
    after = _jit(scored.evaluate, model)({"x": x}, key)
    np.testing.assert_array_equal(before["bpd"], after["bpd"])
    samples = np.asarray(after["sample_metric"]["samples"])
    assert samples.shape == (3, 2, 6) and set(np.unique(samples)) <= {0, 1}
    summary = scored.summarize(after)
    assert summary["test_bpd"] == plain.summarize(before)["test_bpd"]
    assert np.isfinite(summary["test_sample_mmd2"])
    with pytest.raises(ValueError, match="sample_repeats"):
        _objective("mdlm", sample_metric=True, sample_repeats=0)


def test_catflow_digits_smoke_trains_and_writes_the_sample_metric(tmp_path):
    config = importlib.import_module("experiments.configs.catflow_digits").get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(results["test_ce_bits"]) and np.isfinite(results["test_sample_mmd2"])
    assert (tmp_path / "report.png").stat().st_size > 0
