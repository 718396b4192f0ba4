"""The shapes dataset, the ``tcvae`` objective and its config (smoke training)."""

import math

import numpy as np
import pytest

from experiments.configs import multimodal_digits, tcvae_shapes
from vbounds.lab import train_and_evaluate
from vbounds.lab.data import shapes


def test_shapes_renders_every_factor_combination_once():
    images, factors = shapes.render_all(size=16, num_scales=3, num_rotations=4, num_positions=6)
    assert images.shape == (1296, 256) and factors.shape == (1296, 5)
    assert len({tuple(f) for f in factors}) == 1296
    assert set(np.unique(images)) <= {0.0, 1.0}
    data = shapes.load_shapes()
    assert len(data.x_train) == shapes.train_size() == 972 and len(data.x_test) == 324
    # The split is a partition of the rendered set.
    rows = {tuple(f) for f in data.factors_train} | {tuple(f) for f in data.factors_test}
    assert len(rows) == 1296


def test_render_exact_cases():
    # A square of half-size 0.8 * 5 = 4 centred between pixels covers 8 x 8 pixel centres.
    square = shapes.render(0, 5.0, 0.0, 8.0, 8.0, 16)
    assert square.sum() == 64
    np.testing.assert_array_equal(shapes.render(0, 5.0, math.pi / 2, 8.0, 8.0, 16), square)
    # The ellipse (semi-axes 4 and 2) by enumeration of the pixel centres.
    c = np.arange(16) + 0.5 - 8.0
    expected = np.sum(((c[None, :] / 4.0) ** 2 + (c[:, None] / 2.0) ** 2) <= 1.0)
    assert shapes.render(1, 4.0, 0.0, 8.0, 8.0, 16).sum() == expected
    # The triangle (circumradius 5, area 32.5) lies inside the square of the same centre.
    tri = shapes.render(2, 5.0, 0.0, 8.0, 8.0, 16)
    assert 20 < tri.sum() < 45


def test_bad_shapes_config_names_the_key():
    with pytest.raises(ValueError, match="num_scales"):
        shapes.load_shapes(num_scales=1)
    with pytest.raises(ValueError, match="test_fraction"):
        shapes.load_shapes(test_fraction=1.5)


def test_tcvae_shapes_smoke_training(tmp_path):
    config = tcvae_shapes.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    for name in ("test_elbo", "test_kl", "test_index_code_mi", "test_total_correlation"):
        assert math.isfinite(results[name]), name
    assert 0.0 <= results["test_mig"] <= 1.0
    # With the whole test split in the batch the MI estimate is at most log N.
    assert results["test_index_code_mi"] <= math.log(324) + 1e-6


def test_multimodal_digits_smoke_training(tmp_path):
    config = multimodal_digits.get_config("smoke")
    config.objective.method = "moe"  # the DReG path; poe and mopoe share the PoE code
    results = train_and_evaluate(config, str(tmp_path))
    for name in ("test_elbo", "test_iwae"):
        assert math.isfinite(results[name]) and results[name] < 0.0, name
    for name in ("test_coherence_image_to_label", "test_coherence_label_to_image"):
        assert 0.0 <= results[name] <= 1.0, name
