"""Smoke tests of the MI experiment scripts at tiny sizes: the Poole staircase trainer
(experiments/mi_gaussian.py) and the VIB sweep on digits (experiments/vib_digits.py)."""

import math

import numpy as np
import pytest

from experiments import mi_gaussian, vib_digits
from experiments.configs.mi_gaussian import get_config


def tiny_config():
    config = get_config()
    config.dim, config.batch_size = 4, 16
    config.levels, config.steps_per_level, config.tail = (2.0, 4.0), 10, 5
    config.critic.hidden, config.critic.embed_dim, config.critic.baseline_hidden = 16, 8, 16
    return config


def test_config_is_the_poole_protocol():
    config = get_config()
    assert (config.dim, config.batch_size, config.steps_per_level) == (20, 64, 4000)
    assert config.optimizer.learning_rate == 5e-4
    assert set(config.estimators.split(",")) == set(mi_gaussian.ESTIMATORS)
    # rho_for inverts I = -(d/2) log(1 - rho^2).
    for mi in config.levels:
        rho = mi_gaussian.rho_for(mi, config.dim)
        assert -0.5 * config.dim * math.log(1 - rho**2) == pytest.approx(mi, rel=1e-12)


def test_mi_training_is_finite_and_infonce_capped():
    # One compiled run keeps this under 20 s; the other estimators share the code path.
    config = tiny_config()
    curve = mi_gaussian.train(config, "infonce", "concat")
    assert curve.shape == (20,)
    assert np.all(np.isfinite(curve))
    assert np.all(curve <= math.log(config.batch_size) + 1e-5)
    mean, std = mi_gaussian.level_stats(curve, config)
    assert mean.shape == std.shape == (2,)


def test_vib_returns_accuracy_and_nonnegative_rate():
    results = vib_digits.train([1e-3, 1.0], steps=5, z_dim=2, hidden=16)
    assert [r["beta"] for r in results] == pytest.approx([1e-3, 1.0])
    for r in results:
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["rate"] >= 0.0
        assert math.isfinite(r["cross_entropy"]) and r["izy_lower"] <= r["entropy_y"] + 1e-6
