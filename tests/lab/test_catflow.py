"""CatFlow in the framework: the catflow objective's loss is vb.flow.catflow_loss per pixel,
the sample MMD^2 matches a hand computation, the opt-in metric passes an evaluation's
outputs and key through unchanged (opt-in for D3PM / MDLM / UDLM), and the smoke config trains
and writes the metric."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import vbounds as vb
from vbounds.lab import train_and_evaluate
from vbounds.lab.data.levels import ClassDataset
from vbounds.lab.models.catflow import CatFlowMLP
from vbounds.lab.objectives import make_objective
from vbounds.lab.objectives.base import Objective
from vbounds.lab.objectives.catflow import mmd_squared, reference_metrics, with_sample_metric
from vbounds.lab.objectives.diffusion import eval_times
from vbounds.lab.registry import lookup


def _objective(name, **overrides):
    return make_objective(lookup("objective", name).config(name, **overrides))


def _jit(fn, model):
    """``fn(model, batch, key)`` compiled once (eager evaluation dispatches op by op)."""
    graphdef, state = nnx.split(model)
    compiled = jax.jit(lambda s, batch, key: fn(nnx.merge(graphdef, s), batch, key))
    return lambda batch, key: compiled(state, batch, key)


def test_catflow_loss_is_the_core_loss_per_pixel():
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

    # The test evaluation: image b averages eval_repeats draws (two stratified halves).
    plain = _objective("catflow", eval_repeats=2, sample_metric=False)
    outputs = _jit(plain.evaluate, model)({"x": x}, key)
    k_t, k_draw = jax.random.split(jax.random.split(key, 4)[1])
    times, keys = eval_times(k_t, 2), jax.random.split(k_draw, 2)
    draws = [one(x[1], (keys[r], times[r])) / d for r in range(2)]
    np.testing.assert_allclose(outputs["ce"][1], np.mean(draws), rtol=1e-5)
    mc_var = (draws[0] - draws[1]) ** 2 / 4 / math.log(2) ** 2
    np.testing.assert_allclose(outputs["ce_bits_mc_var"][1], mc_var, rtol=1e-4, atol=1e-12)


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


def test_the_sample_metric_passes_the_evaluation_through_with_its_key():
    seen = []

    def evaluate(model, batch, key):
        seen.append(key)
        return {"value": batch["x"].sum(1)}

    def sample(model, key, n):
        return jax.random.bernoulli(key, 0.5, (n, 3)).astype(jnp.int32)

    config = lookup("objective", "mdlm").config("mdlm", sample_metric=True, sample_repeats=2)
    base = Objective(loss=None, evaluate=evaluate, summarize=lambda o: {"v": o["value"].sum()})
    scored = with_sample_metric(base, sample, config)
    x, key = jnp.array([[0, 1, 1], [1, 0, 0], [1, 1, 1]]), jax.random.key(3)
    outputs = scored.evaluate(None, {"x": x}, key)
    assert len(seen) == 1 and (jax.random.key_data(seen[0]) == jax.random.key_data(key)).all()
    np.testing.assert_array_equal(outputs["value"], [2, 1, 3])
    samples = np.asarray(sample(None, jax.random.fold_in(key, 0x5A3), 6)).reshape(3, 2, 3)
    np.testing.assert_array_equal(outputs["sample_metric"]["samples"], samples)
    summary = scored.summarize(outputs)
    assert summary["v"] == 6
    assert summary["test_sample_mmd2"] == mmd_squared(samples.reshape(6, 3), x, scale=16.0)
    assert with_sample_metric(base, sample, lookup("objective", "mdlm").config("mdlm")) is base
    with pytest.raises(ValueError, match="sample_repeats"):
        _objective("mdlm", sample_metric=True, sample_repeats=0)


@pytest.mark.parametrize("name", ["d3pm", "mdlm", "udlm"])
def test_the_discrete_diffusions_add_the_metric_only_when_asked(name):
    # Off by default (existing runs unchanged); the evaluation itself runs in the committed
    # catflow_digits results (compiling D3PM's here would cost ~10 s).
    assert lookup("objective", name).config(name).sample_metric is False
    plain, scored = _objective(name), _objective(name, sample_metric=True)
    assert plain.evaluate.__name__ == "evaluate"
    assert scored.evaluate.__name__ == "evaluate_with_samples"


def test_catflow_digits_smoke_trains_and_writes_the_sample_metric(tmp_path):
    config = importlib.import_module("experiments.configs.catflow_digits").get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(results["test_ce_bits"]) and np.isfinite(results["test_sample_mmd2"])
    assert (tmp_path / "report.png").stat().st_size > 0


def test_reference_metrics_are_zero_for_a_constant_dataset():
    # Every kernel value is 1 when all images are equal, so each unbiased MMD^2 is 1 + 1 - 2.
    ones = np.ones((6, 4), np.int32)
    dataset = ClassDataset(ones, ones[:2], 2)
    floors = reference_metrics(dataset, sample_repeats=2, draws=2)
    assert floors["train"] == (0.0, 0.0) and floors["bernoulli"] == (0.0, 0.0)
    with pytest.raises(ValueError, match="training split"):
        reference_metrics(dataset, sample_repeats=4)
