"""The VIB family against exact answers: the stratified digits split, the closed-form rate
of a hand-set encoder, the loss at beta = 0 and its beta term, accuracy from averaged
predictive probabilities, the test summary, the sweep's information plane, and the smoke
config trains through the one loop."""

import json
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from experiments.configs import vib_digits
from vbounds.lab import read_metrics, train_and_evaluate
from vbounds.lab.data import load_dataset
from vbounds.lab.models import build_model
from vbounds.lab.models.vib import VIB
from vbounds.lab.objectives import make_objective
from vbounds.lab.objectives import vib as vib_objective

MIN_SCALE = 1e-4  # the Gaussian head's floor on the scale


def _objective(**overrides):
    return make_objective(ml_collections.ConfigDict({"name": "vib", **overrides}))


def test_digits_classification_is_the_stratified_75_25_split():
    data = load_dataset(ml_collections.ConfigDict({"name": "digits_classification"}))
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )
    assert data.x_train.shape == (1347, 64) and data.x_test.shape == (450, 64)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    np.testing.assert_allclose(data.x_test, x_test, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, y_test)
    np.testing.assert_array_equal(data.y_train, y_train)
    # Continuous pixels in [0, 1], every class in both splits in the same proportions.
    assert data.x_train.max() == 1.0 and len(np.unique(data.x_test)) == 17
    assert not data.binarize and data.num_classes == 10
    counts = np.bincount(data.y_test, minlength=10) / np.bincount(y, minlength=10)
    assert np.all(np.abs(counts - 0.25) < 0.02)
    other = load_dataset(ml_collections.ConfigDict({"name": "digits_classification", "seed": 1}))
    assert not np.array_equal(other.y_test, data.y_test)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.001, 0.999, float("nan"), True])
def test_a_bad_test_fraction_is_named(fraction):
    config = ml_collections.ConfigDict({"name": "digits_classification"})
    config.test_fraction = fraction
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset(config)


def _hand_set_model():
    """x_dim 3, one hidden ReLU layer set to the identity (inputs are positive), so
    ``loc = x W_loc + b_loc`` and ``scale = softplus(x W_raw + b_raw) + 1e-4``."""
    model = VIB(3, z_dim=2, hidden=3, layers=1, num_classes=3, rngs=nnx.Rngs(0))
    hidden, out = model.encoder.net.layers
    hidden.kernel[...] = jnp.eye(3)
    hidden.bias[...] = jnp.zeros(3)
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(3, 4)), rng.normal(size=4)
    out.kernel[...] = jnp.asarray(w, jnp.float32)
    out.bias[...] = jnp.asarray(b, jnp.float32)
    x = rng.uniform(0.1, 1.0, size=(5, 3))
    return model, x, w, b


def _closed_form_kl(x, w, b):
    h = x @ w + b
    loc, raw = h[:, :2], h[:, 2:]
    scale = np.log1p(np.exp(raw)) + MIN_SCALE
    return 0.5 * np.sum(scale**2 + loc**2 - 1.0 - 2.0 * np.log(scale), axis=1)


def test_rate_is_the_closed_form_gaussian_kl():
    model, x, w, b = _hand_set_model()
    expected = _closed_form_kl(x, w, b)
    assert np.all(expected > 0.1)
    batch = {"x": jnp.asarray(x, jnp.float32), "y": jnp.array([0, 1, 2, 0, 1])}
    objective = _objective(beta=0.5, num_samples=3, eval_num_samples=4)
    _, metrics = objective.loss(model, batch, jax.random.key(0))
    np.testing.assert_allclose(metrics["rate"], expected.mean(), rtol=1e-5)
    outputs = objective.evaluate(model, batch, jax.random.key(1))
    np.testing.assert_allclose(outputs["rate"], expected, rtol=1e-5)
    assert not any("bound" in k for k in metrics)


def test_at_beta_zero_the_loss_is_the_cross_entropy_and_beta_adds_beta_times_rate():
    model, x, _, _ = _hand_set_model()
    # A decoder that ignores z: log q(y|z) = log_softmax(bias), whatever the draws.
    logits = np.array([0.3, -1.2, 0.7])
    model.decoder.kernel[...] = jnp.zeros((2, 3))
    model.decoder.bias[...] = jnp.asarray(logits, jnp.float32)
    y = np.array([0, 1, 2, 2, 1])
    batch = {"x": jnp.asarray(x, jnp.float32), "y": jnp.asarray(y)}
    log_softmax = logits - np.log(np.sum(np.exp(logits)))
    expected_ce = -np.mean(log_softmax[y])
    key = jax.random.key(3)
    loss0, metrics0 = _objective(beta=0.0, num_samples=2).loss(model, batch, key)
    np.testing.assert_allclose(loss0, expected_ce, rtol=1e-6)
    np.testing.assert_allclose(metrics0["cross_entropy"], expected_ce, rtol=1e-6)
    # Same key, same draws: the beta term is beta times the rate.
    model_ce = _hand_set_model()[0]
    model_ce.decoder.kernel[...] = jnp.asarray(np.random.default_rng(4).normal(size=(2, 3)))
    loss_a, m_a = _objective(beta=0.0, num_samples=2).loss(model_ce, batch, key)
    loss_b, m_b = _objective(beta=0.25, num_samples=2).loss(model_ce, batch, key)
    np.testing.assert_allclose(loss_a, m_a["cross_entropy"], rtol=1e-6)
    np.testing.assert_allclose(loss_b - loss_a, 0.25 * m_b["rate"], rtol=1e-5)


def test_accuracy_averages_predictive_probabilities_over_z():
    # Two examples, three draws, two classes. Example 0: averaging the probabilities
    # gives class 0 (0.603) where averaging log-probabilities would give class 1.
    # Example 1: the averaged probability gives class 0 (0.597) where a majority vote
    # over the draws gives class 1.
    p0 = np.array([[0.9, 0.4], [0.9, 0.4], [0.01, 0.99]])  # [S, N] probability of class 0
    probs = np.stack([p0, 1.0 - p0], axis=-1)  # [S, N, 2]
    log_probs = jnp.asarray(np.log(probs), jnp.float32)
    assert np.argmax(np.log(probs).mean(0)[0]) == 1
    assert np.bincount(np.argmax(probs[:, 1], axis=-1)).argmax() == 1
    got = vib_objective.correct(log_probs, jnp.array([0, 0]))
    np.testing.assert_array_equal(got, [1.0, 1.0])
    np.testing.assert_array_equal(vib_objective.correct(log_probs, jnp.array([1, 1])), [0, 0])


def test_evaluate_accuracy_matches_numpy_on_a_tiny_batch():
    config = vib_digits.get_config("smoke")
    data = load_dataset(config.data)
    batch = {k: v[:7] for k, v in data.test_split().items()}
    model = build_model(config.model, example_batch=batch, seed=2)
    objective = _objective(beta=1e-3, eval_num_samples=5)
    key = jax.random.key(5)
    outputs = objective.evaluate(model, batch, key)
    # The draws of the evaluation, then the accuracy in numpy from the class probabilities.
    _, _, log_probs = vib_objective.terms(model, batch["x"], batch["y"], key, 5)
    probs = np.exp(np.asarray(log_probs, np.float64))
    assert probs.shape == (5, 7, 10)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    expected = (np.argmax(probs.mean(axis=0), axis=-1) == batch["y"]).astype(float)
    np.testing.assert_array_equal(outputs["correct"], expected)
    summary = objective.summarize(jax.tree.map(np.asarray, outputs))
    assert summary["test_accuracy"] == pytest.approx(expected.mean())


def test_summary_is_the_barber_agakov_bound_with_the_label_entropy():
    outputs = {
        "correct": np.array([1.0, 0.0, 1.0, 1.0]),
        "rate": np.array([2.0, 4.0, 6.0, 8.0]),
        "cross_entropy": np.array([0.1, 0.5, 0.2, 0.4]),
        "label": np.array([0, 0, 1, 2]),
    }
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    summary = vib_objective.summarize(outputs)
    assert summary["test_accuracy"] == 0.75
    assert summary["test_rate"] == pytest.approx(5.0)
    assert summary["test_cross_entropy"] == pytest.approx(0.3)
    assert summary["test_entropy_y"] == pytest.approx(entropy, rel=1e-12)
    assert summary["test_izy_lower"] == pytest.approx(entropy - 0.3, rel=1e-6)


@pytest.mark.parametrize(
    "key, value",
    [("beta", -0.1), ("beta", float("inf")), ("num_samples", 0), ("eval_num_samples", -2)],
)
def test_a_bad_hyperparameter_is_named(key, value):
    with pytest.raises(ValueError, match=f"objective.{key}"):
        _objective(**{key: value})


def _job(beta, seed, accuracy, rate, izy):
    return {
        "objective.beta": beta,
        "seed": seed,
        "test_accuracy": accuracy,
        "test_rate": rate,
        "test_cross_entropy": 2.0 - izy,
        "test_izy_lower": izy,
        "test_entropy_y": 2.0,
        "step": 10,
    }


def test_sweep_report_groups_seeds_by_beta(tmp_path):
    jobs = [
        _job("0.1", "0", 0.9, 3.0, 1.5),
        _job("1e-3", "0", 0.98, 20.0, 1.9),
        _job("0.1", "1", 0.8, 5.0, 1.3),
        _job("0.1", "2", 0.85, 4.0, 1.4),
    ]
    rows = vib_objective.info_plane(jobs)
    assert [r["beta"] for r in rows] == [1e-3, 0.1]
    small, large = rows
    assert small["n"] == 1 and math.isnan(small["test_accuracy_se"])
    assert large["n"] == 3
    assert large["test_accuracy"] == pytest.approx(0.85)
    assert large["test_accuracy_se"] == pytest.approx(0.05 / math.sqrt(3))
    assert large["test_rate"] == pytest.approx(4.0)
    assert large["test_rate_se"] == pytest.approx(1.0 / math.sqrt(3))
    path = tmp_path / "report.png"
    vib_objective.sweep_report(jobs, str(path))
    assert path.stat().st_size > 0
    table = (tmp_path / "info_plane.md").read_text()
    assert "| 0.1 | 3 | 0.850 +- 0.029 | 4.00 +- 0.58 |" in table


def test_sweep_report_reads_beta_from_the_job_config(tmp_path):
    # A seed-only sweep: beta is not a swept key, so it comes from each job's config.json.
    jobs = []
    for seed in ("0", "1"):
        os.makedirs(tmp_path / f"seed={seed}")
        (tmp_path / f"seed={seed}" / "config.json").write_text(
            json.dumps({"objective": {"beta": 0.03}})
        )
        job = _job("0.03", seed, 0.9, 6.0, 2.0)
        del job["objective.beta"]
        jobs.append(job)
    vib_objective.sweep_report(jobs, str(tmp_path / "report.png"))
    assert "| 0.03 | 2 |" in (tmp_path / "info_plane.md").read_text()


def test_smoke_config_trains(tmp_path):
    config = vib_digits.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    assert results["step"] == config.num_steps
    assert 0.0 <= results["test_accuracy"] <= 1.0
    assert results["test_rate"] > 0
    assert results["test_izy_lower"] == pytest.approx(
        results["test_entropy_y"] - results["test_cross_entropy"], rel=1e-5
    )
    train = [r for r in read_metrics(str(tmp_path / "metrics.jsonl")) if "loss" in r]
    assert {"loss", "cross_entropy", "rate", "accuracy"} <= set(train[-1])
    assert (tmp_path / "report.png").stat().st_size > 0
