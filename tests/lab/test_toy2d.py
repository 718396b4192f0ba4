"""The 2-D toy densities and the cfm_toy2d / vdm_toy2d objectives: the data are
deterministic and standardised, the ring's closed-form density is normalised and is the
distrax mixture, the objectives' outputs are the core functions', the control variates
leave the bound's mean unchanged, and both smoke configs train and write their test NLL."""

import importlib
import json
import math
import os

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import vbounds as vb
from vbounds.lab import train_and_evaluate
from vbounds.lab.data.toy2d import (
    RING_SCALE,
    load_toy2d,
    ring8_centres,
    ring8_log_prob,
)
from vbounds.lab.models.flow import VelocityMLP
from vbounds.lab.models.toy2d import ContinuousVDM
from vbounds.lab.objectives import make_objective
from vbounds.lab.objectives.toy2d import vdm_terms_cv
from vbounds.lab.registry import lookup


@pytest.mark.parametrize("density", ["ring8", "moons"])
def test_toy2d_is_deterministic_and_standardised(density):
    a = load_toy2d(density=density, seed=3, num_train=5000, num_test=500)
    b = load_toy2d(density=density, seed=3, num_train=5000, num_test=500)
    c = load_toy2d(density=density, seed=4, num_train=5000, num_test=500)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.allclose(a.x_train, c.x_train)
    x = a.x_train.astype(np.float64)
    assert x.shape == (5000, 2) and a.x_train.dtype == np.float32
    if density == "moons":  # standardised with the training moments: exact
        np.testing.assert_allclose(x.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(x.std(0), 1.0, atol=1e-5)
        assert a.log_p_test is None and set(a.test_split()) == {"x"}
    else:  # the mixture has mean 0 and covariance I: within 5 standard errors
        n = len(x)
        assert np.all(np.abs(x.mean(0)) < 5 * x.std(0) / math.sqrt(n))
        second = x[:, :, None] * x[:, None, :]  # [n, 2, 2]
        se = second.std(0) / math.sqrt(n)
        assert np.all(np.abs(second.mean(0) - np.eye(2)) < 5 * se)
        np.testing.assert_allclose(a.test_split()["log_p"], ring8_log_prob(a.x_test), rtol=1e-5)


def test_ring8_density_integrates_to_one_and_is_the_distrax_mixture():
    axis = np.linspace(-4.0, 4.0, 401)
    xx, yy = np.meshgrid(axis, axis)
    density = np.exp(ring8_log_prob(np.stack([xx, yy], -1)))
    h = axis[1] - axis[0]
    # The trapezoid rule (spacing 0.02, components of scale 0.17; the mass beyond |x| = 4 is
    # below 1e-30) is accurate far beyond the tolerance for a smooth density.
    np.testing.assert_allclose(np.trapezoid(np.trapezoid(density, dx=h), dx=h), 1.0, atol=1e-8)
    mixture = distrax.MixtureSameFamily(
        distrax.Categorical(logits=jnp.zeros(8)),
        distrax.MultivariateNormalDiag(
            jnp.asarray(ring8_centres(), jnp.float32), jnp.full((8, 2), RING_SCALE)
        ),
    )
    points = load_toy2d(density="ring8", num_train=10, num_test=50).x_test
    np.testing.assert_allclose(
        ring8_log_prob(points), mixture.log_prob(jnp.asarray(points)), rtol=1e-5, atol=1e-5
    )


def test_toy2d_bad_arguments_are_named():
    with pytest.raises(ValueError, match="density"):
        load_toy2d(density="spiral")
    with pytest.raises(ValueError, match="num_test"):
        load_toy2d(num_test=0)


def test_cfm_toy2d_evaluation_is_the_exact_trace_ode_nll():
    model = VelocityMLP(2, hidden_sizes=(8,), rngs=nnx.Rngs(0))
    section = lookup("objective", "cfm_toy2d").config("cfm_toy2d", eval_ode_steps=(2, 3))
    objective = make_objective(section)
    data = load_toy2d(density="ring8", num_train=10, num_test=4)
    out = nnx.jit(objective.evaluate)(model, data.test_split(), jax.random.key(0))
    expected = nnx.jit(lambda m, x: -vb.flow.ode_log_likelihood(x, m, num_steps=3))(
        model, data.x_test[1]
    )
    np.testing.assert_allclose(out["nll_S3"][1], expected, rtol=1e-5)
    assert set(out) >= {"nll_S2", "nll_S3", "cfm", "true_nll"}
    np.testing.assert_array_equal(out["nll"], out["nll_S3"])
    summary = objective.summarize(out)
    gap = np.asarray(out["nll"]) + data.log_p_test
    np.testing.assert_allclose(summary["test_gap"], gap.mean(), rtol=1e-5)
    np.testing.assert_allclose(summary["test_true_nll"], -data.log_p_test.mean(), rtol=1e-5)


def test_vdm_control_variates_leave_the_bound_unchanged():
    """Same draws: the plain total is gaussian_vlb's; over many draws the corrected and
    plain estimates agree within 5 standard errors of their paired difference."""
    model = ContinuousVDM(2, hidden_sizes=(8,), rngs=nnx.Rngs(1))
    x = jnp.array([0.3, -1.2])
    keys = jax.random.split(jax.random.key(2), 4000)
    times = vb.diffusion.stratified_times(jax.random.key(3), 4000)
    terms, cv = nnx.jit(lambda m: jax.vmap(lambda k, t: vdm_terms_cv(m, x, k, t))(keys, times))(
        model
    )
    plain = sum(terms.values())
    k_eps, k_0 = jax.random.split(keys[0])
    draws = {
        "t": times[0],
        "eps": jax.random.normal(k_eps, (2,)),
        "eps_0": jax.random.normal(k_0, (2,)),
    }
    one = nnx.jit(lambda m: vb.diffusion.gaussian_vlb(keys[0], x, m.eps, m.gamma, **draws).total)(
        model
    )
    np.testing.assert_allclose(plain[0], one, rtol=1e-5)
    diff = np.asarray(cv - plain, np.float64)
    assert abs(diff.mean()) < 5 * diff.std() / math.sqrt(diff.size)
    assert np.var(np.asarray(cv)) < np.var(np.asarray(plain))


@pytest.mark.parametrize("name", ["cfm_toy2d", "vdm_toy2d"])
def test_toy2d_smoke_configs_train_and_write_the_test_nll(name, tmp_path):
    config = importlib.import_module(f"experiments.configs.{name}").get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(results["test_nll"]) and np.isfinite(results["test_gap"])
    with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert any("test_nll" in row for row in rows)
    assert os.path.isfile(os.path.join(tmp_path, "report.png"))
