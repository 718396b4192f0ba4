"""Flow matching in the framework: the cfm objective's loss is vb.flow.cfm_loss per
dimension on dequantised levels, its test bpd is the ODE dequantisation bound, and the
smoke config trains."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import vbounds as vb
from vbounds.lab import train_and_evaluate
from vbounds.lab.models.flow import VelocityMLP
from vbounds.lab.objectives import make_objective
from vbounds.lab.registry import lookup


def test_cfm_loss_and_evaluation_are_the_core_functions():
    model = VelocityMLP(64, hidden_sizes=(8,), rngs=nnx.Rngs(0))
    objective = make_objective(lookup("objective", "cfm").config("cfm", eval_ode_steps=3))
    levels = jax.random.randint(jax.random.key(0), (4, 64), 0, 17)
    key = jax.random.key(1)
    loss, metrics = objective.loss(model, {"x": levels}, key)
    k_u, k_t, k = jax.random.split(key, 3)
    x = 2.0 * levels / 16 - 1.0 + (jax.random.uniform(k_u, (4, 64)) - 0.5) / 8
    times = vb.diffusion.stratified_times(k_t, 4)
    expected = jax.vmap(lambda xi, ki, ti: vb.flow.cfm_loss(ki, xi, model, t=ti))(
        x, jax.random.split(k, 4), times
    )
    np.testing.assert_allclose(loss, jnp.mean(expected) / 64, rtol=1e-5)
    outputs = objective.evaluate(model, {"x": levels}, key)
    k_u, k_probe, _ = jax.random.split(key, 3)
    x = 2.0 * levels / 16 - 1.0 + (jax.random.uniform(k_u, (4, 64)) - 0.5) / 8
    log_p = vb.flow.ode_log_likelihood(
        x[0], model, num_steps=3, trace="hutchinson", key=jax.random.split(k_probe, 4)[0]
    )
    bpd = -(log_p + 64 * math.log(1 / 8)) / (64 * math.log(2))
    np.testing.assert_allclose(outputs["bpd"][0], bpd, rtol=1e-5)
    summary = objective.summarize(outputs)
    assert summary["test_bpd_se"] > 0 and np.isfinite(summary["test_cfm"])


def test_cfm_digits_smoke_trains(tmp_path):
    config = importlib.import_module("experiments.configs.cfm_digits").get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(results["test_bpd"]) and np.isfinite(results["test_cfm"])
