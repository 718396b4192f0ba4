"""PAC-Bayes with backprop in the framework: the Gaussian-weight MLP's KL against the
closed form, the bounded cross-entropy, the certificate's two steps, the bound-set split,
the objective's value against vb.pac_bayes, and the smoke config trains through the loop."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import vbounds as vb
from experiments.configs import pbb_digits
from vbounds.lab import train_and_evaluate
from vbounds.lab.data import load_dataset
from vbounds.lab.models import build_model
from vbounds.lab.objectives import make_objective
from vbounds.lab.objectives import pac_bayes as pbb


def _model(prior_scale=0.05, seed=0):
    config = ml_collections.ConfigDict(
        {"name": "gaussian_mlp", "hidden": 5, "layers": 1, "prior_scale": prior_scale}
    )
    batch = {"x": np.zeros((4, 3), np.float32), "y": np.arange(4) % 10}
    return build_model(config, example_batch=batch, seed=seed)


def test_kl_is_zero_at_the_prior_and_the_gaussian_closed_form_elsewhere():
    model = _model()
    # the posterior starts at the prior (softplus of the stored rho rounds sigma_0)
    assert float(model.kl()) == pytest.approx(0.0, abs=1e-8)
    layer = model.layers[0]
    layer.w_loc[...] = layer.w_loc[...] + 0.1
    layer.w_rho[...] = jnp.full(layer.w_rho.shape, 0.5)
    sigma, sigma0 = math.log1p(math.exp(0.5)), 0.05
    # KL(N(m + 0.1, s^2) || N(m, s0^2)) per weight, 3 x 5 weights; biases untouched
    per_weight = math.log(sigma0 / sigma) + (sigma**2 + 0.01) / (2 * sigma0**2) - 0.5
    assert float(model.kl()) == pytest.approx(15 * per_weight, rel=1e-5)


def test_a_layer_draws_its_weights_from_the_posterior():
    """x @ w + b with independent Gaussian weights: mean x @ mu + mu_b, variance
    sum_i x_i^2 sigma^2 + sigma_b^2 (here every sigma is the prior's 0.5)."""
    layer = _model(prior_scale=0.5).layers[0]
    x = jnp.array([[1.0, -2.0, 0.5]])
    draws = jax.vmap(lambda k: layer(x, k))(jax.random.split(jax.random.key(0), 4000))[:, 0]
    sigma = float(jax.nn.softplus(layer.w_rho[...][0, 0]))
    std = math.sqrt(float(jnp.sum(x**2)) * sigma**2 + sigma**2)
    mean = layer(x, None)[0]
    se = std / math.sqrt(draws.shape[0])
    assert np.all(np.abs(np.asarray(jnp.mean(draws, axis=0) - mean)) < 4.5 * se)
    np.testing.assert_allclose(jnp.std(draws, axis=0), std, rtol=4.5 / math.sqrt(2 * 4000))


def test_bounded_cross_entropy_is_rescaled_and_clipped():
    logits = jnp.log(jnp.array([[0.5, 0.5], [1e-6, 1.0 - 1e-6]]))
    got = pbb.bounded_cross_entropy(logits, jnp.array([0, 0]), 1e-4)
    np.testing.assert_allclose(got, [math.log(2) / math.log(1e4), 1.0], rtol=1e-5)


def test_the_certificate_composes_the_monte_carlo_and_the_pac_bayes_kl_inversions():
    got = pbb.certificate(0.1, 20.0, n=1000, m=500, delta=0.025, mc_delta=0.01)
    emp_upper = vb.pac_bayes.kl_inverse(0.1, math.log(2 / 0.01) / 500)
    assert float(emp_upper) > 0.1
    assert got == pytest.approx(float(vb.pac_bayes.maurer(emp_upper, 20.0, 1000, 0.025)))
    assert got > float(vb.pac_bayes.maurer(0.1, 20.0, 1000, 0.025))


def test_certificate_data_splits_prior_set_bound_set_and_test_images():
    config = ml_collections.ConfigDict({"name": "digits_certificate", "prior_steps": 10})
    data = load_dataset(config)
    plain = load_dataset(ml_collections.ConfigDict({"name": "digits_classification"}))
    # the training images, divided: 673 for the prior, 674 for the bound, disjoint
    assert (len(data.prior_rows), data.num_bound) == (673, 674)
    assert sorted(np.concatenate([data.prior_rows, data.bound_rows])) == list(range(1347))
    split = data.test_split()
    assert int(split["bound_set"].sum()) == 674 and len(split["x"]) == 674 + 450
    np.testing.assert_array_equal(split["x"][:674], plain.x_train[data.bound_rows])
    np.testing.assert_array_equal(split["y"][674:], plain.y_test)
    prior_sets = {tuple(row) for row in plain.x_train[data.prior_rows]}
    for step, phase in ((9, 1.0), (10, 0.0)):
        batch = data.train_batch(seed=0, step=step, batch_size=16)
        assert np.all(batch["prior_phase"] == phase)
        in_prior = [tuple(row) in prior_sets for row in batch["x"]]
        assert all(in_prior) if phase else not any(in_prior)
    with pytest.raises(ValueError, match="data.prior_steps"):
        load_dataset(ml_collections.ConfigDict({"name": "digits_certificate", "prior_steps": 0}))


def test_prior_phase_batches_learn_the_prior_by_cross_entropy():
    model = _model()
    objective = make_objective(ml_collections.ConfigDict({"name": "pac_bayes_bound"}))
    batch = {"x": jnp.ones((4, 3)), "y": jnp.array([0, 1, 2, 3]), "prior_phase": jnp.ones(4)}
    layer = model.layers[0]
    layer.w_loc[...] = layer.w_loc[...] + 0.1
    value, metrics = objective.loss(model, batch, jax.random.key(0))
    log_p = jax.nn.log_softmax(model(batch["x"]))
    assert float(value) == pytest.approx(-float(jnp.mean(log_p[jnp.arange(4), batch["y"]])))
    # the prior moved onto the posterior means: nothing left between them
    np.testing.assert_array_equal(layer.prior_w[...], layer.w_loc[...])
    assert float(model.kl()) == pytest.approx(0.0, abs=1e-8)
    assert float(metrics["prior_phase"]) == 1.0


def test_the_loss_is_the_named_bound_of_the_batch_risk():
    model = _model()
    batch = {"x": jnp.ones((4, 3)), "y": jnp.array([0, 1, 2, 3]), "prior_phase": jnp.zeros(4)}
    key = jax.random.key(1)
    for bound in ("quad", "classic", "kl"):
        objective = make_objective(
            ml_collections.ConfigDict({"name": "pac_bayes_bound", "bound": bound, "num_train": 500})
        )
        value, metrics = objective.loss(model, batch, key)
        reference = pbb.BOUNDS[bound](metrics["bce"], metrics["kl"], 500, 0.025)
        assert float(value) == pytest.approx(float(reference), rel=1e-6)
    # trainable through the kl inverse's implicit gradient
    grads = jax.grad(lambda m: objective.loss(m, batch, key)[0])(model)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_a_wrong_num_train_is_named():
    with pytest.raises(ValueError, match="objective.bound"):
        make_objective(ml_collections.ConfigDict({"name": "pac_bayes_bound", "bound": "x"}))
    objective = make_objective(
        ml_collections.ConfigDict({"name": "pac_bayes_bound", "num_train": 3})
    )
    outputs = {k: np.zeros(4) for k in ("error", "bce", "mean_error", "kl")}
    outputs["bound_set"] = np.array([1.0, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="objective.num_train=3"):
        objective.summarize(outputs)


def test_smoke_config_trains(tmp_path):
    config = pbb_digits.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    assert results["step"] == config.num_steps
    assert results["test_kl"] > 0
    # the certificate bounds the Monte Carlo bound-set risk from above, and is a risk
    assert results["test_train_error"] < results["test_certified_error"] <= 1.0
    assert results["test_train_bce"] < results["test_certified_bce"] <= 1.0
    assert 0.0 <= results["test_error"] <= 1.0
