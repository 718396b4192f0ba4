"""The sparse-GP family of the framework: diabetes data, model, objective, config smoke run."""

import numpy as np
import pytest

from experiments.configs import gp_diabetes
from vbounds.lab import train_and_evaluate
from vbounds.lab.data.regression import load_diabetes


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
