"""The sparse-GP and SVGD families of the framework: data, models, objectives, smoke runs."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

import vbounds as vb
from experiments.configs import gp_diabetes, mfvi_breast_cancer, svgd_breast_cancer
from vbounds.lab import train_and_evaluate
from vbounds.lab.data.regression import load_breast_cancer, load_diabetes
from vbounds.lab.models.bayes_logreg import log_likelihood, make_particles
from vbounds.lab.objectives import bayes_logreg


def test_diabetes_is_standardised_on_the_training_split():
    data = load_diabetes(seed=1, num_test=90)
    assert data.x_train.shape == (352, 10) and data.x_test.shape == (90, 10)
    np.testing.assert_allclose(data.x_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.y_train.std(), 1.0, rtol=1e-5)
    other = load_diabetes(seed=2, num_test=90)
    assert not np.array_equal(data.y_test, other.y_test)
    with pytest.raises(ValueError, match="num_test"):
        load_diabetes(num_test=442)


def test_gp_diabetes_smoke_run_bound_is_below_the_exact_value(tmp_path):
    config = gp_diabetes.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    for key in ("test_rmse", "test_nll", "test_bound", "test_exact_lml"):
        assert np.isfinite(results[key]), key
    assert results["test_num_inducing"] == 4
    # Titsias' bound never exceeds the exact log marginal likelihood (float32 slack).
    assert results["test_bound"] <= results["test_exact_lml"] + 1e-4


def test_svgd_surrogate_step_is_the_svgd_transform_step():
    config = svgd_breast_cancer.get_config("smoke")
    data = load_breast_cancer()
    batch = {"x": jnp.asarray(data.x_train[:40]), "y": jnp.asarray(data.y_train[:40])}
    model = make_particles(config.model, rngs=nnx.Rngs(0), example_batch=batch)
    section = ml_collections.ConfigDict({**bayes_logreg.DEFAULTS, "bandwidth": 0.0})
    objective = bayes_logreg.make(section)

    @nnx.jit
    def surrogate_grad(model):
        grads = nnx.grad(lambda m: objective.loss(m, batch, jax.random.key(0))[0])(model)
        return grads.weights[...]

    # The same step from vb.svgd.transform on the gradient of the loss -log p(w, D).
    particles = model.weights[...]

    def neg_log_joint(w):
        prior = jnp.sum(jax.scipy.stats.norm.logpdf(w))
        return -(prior + jnp.sum(log_likelihood(w[None], batch["x"], batch["y"])))

    tx = optax.chain(vb.svgd.transform(), optax.sgd(0.1))

    @jax.jit
    def transform_step(particles):
        loss_grads = jax.vmap(jax.grad(neg_log_joint))(particles)
        return tx.update(loss_grads, tx.init(particles), particles)[0]

    updates = transform_step(particles)
    np.testing.assert_allclose(-0.1 * surrogate_grad(model), updates, rtol=1e-4, atol=1e-6)
    assert float(jnp.max(jnp.abs(updates))) > 1e-3  # a real step


def test_expected_calibration_error_by_hand():
    confidence = np.array([0.55, 0.58, 0.95, 0.92, 0.91])
    correct = np.array([1.0, 0.0, 1.0, 1.0, 1.0])
    # bins [0.5, 0.6): acc 0.5, conf 0.565; [0.9, 1.0]: acc 1, conf 0.9267.
    want = (2 * abs(0.5 - 0.565) + 3 * abs(1.0 - (0.95 + 0.92 + 0.91) / 3)) / 5
    assert abs(bayes_logreg.expected_calibration_error(confidence, correct) - want) < 1e-12


@pytest.mark.parametrize("module", [svgd_breast_cancer, mfvi_breast_cancer])
def test_breast_cancer_smoke_runs(module, tmp_path):
    results = train_and_evaluate(module.get_config("smoke"), str(tmp_path))
    assert np.isfinite(results["test_log_lik"]) and results["test_log_lik"] < 0
    assert 0.5 < results["test_accuracy"] <= 1.0  # above chance after a few steps
    assert 0.0 <= results["test_ece"] <= 1.0
