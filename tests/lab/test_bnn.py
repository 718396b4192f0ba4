"""The Bayesian digits classifier: the calibration metric and a smoke run of each estimator."""

import numpy as np
import pytest

from experiments.configs import bnn_digits
from vbounds.lab import train_and_evaluate
from vbounds.lab.objectives.bnn import expected_calibration_error


def test_expected_calibration_error_against_hand_computed_bins():
    confidence = np.array([0.95, 0.92, 0.55, 0.52, 0.3])
    correct = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    # Bins of width 0.1: {0.95, 0.92} acc 0.5 conf 0.935; {0.55, 0.52} acc 1 conf 0.535;
    # {0.3} acc 0 conf 0.3.
    expected = (2 * abs(0.5 - 0.935) + 2 * abs(1.0 - 0.535) + 0.3) / 5
    assert np.isclose(expected_calibration_error(confidence, correct, 10), expected)
    # A perfectly calibrated predictor: within each bin, accuracy equals confidence.
    assert expected_calibration_error(np.full(4, 0.75), np.array([1.0, 1, 1, 0]), 15) == 0.0


@pytest.mark.parametrize("estimator", ["flipout", "map"])
def test_smoke_training(tmp_path, estimator):
    config = bnn_digits.get_config("smoke")
    config.objective.estimator = estimator
    results = train_and_evaluate(config, str(tmp_path))
    for key in ("test_nll", "test_accuracy", "test_ece"):
        assert np.isfinite(results[key]), key
    assert 0.0 <= results["test_ece"] <= 1.0 and 0.0 <= results["test_accuracy"] <= 1.0
