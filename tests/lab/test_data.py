"""Data sets: the digits split, batch order, binarisation, the exact linear-Gaussian
likelihood, and the IDX / npz loaders on files written here."""

import gzip
import os

import jax
import ml_collections
import numpy as np
import pytest

from vbounds.lab import data


def _write_idx(path, array, *, compress):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += np.array(array.shape, dtype=">u4").tobytes()
    raw = header + array.tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if compress else raw)


def test_digits_split_is_fixed_and_scaled():
    a, b = data.load_digits(), data.load_digits()
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert a.x_train.shape == (1797 - data.digits.NUM_TEST, 64)
    assert a.x_test.shape == (data.digits.NUM_TEST, 64)
    assert 0.0 <= a.x_train.min() and a.x_train.max() == 1.0
    assert set(np.unique(a.x_test)) == {0.0, 1.0}
    grey = data.load_digits(binarize=False)
    assert grey.likelihood == "gaussian" and len(np.unique(grey.x_test)) > 2
    other = data.load_digits(seed=1)
    assert not np.array_equal(other.y_test, a.y_test)


def test_batch_order_is_a_function_of_seed_and_step():
    n, b = 50, 10
    epoch = np.concatenate(
        [data.batch_indices(seed=3, step=s, num_examples=n, batch_size=b) for s in range(5)]
    )
    np.testing.assert_array_equal(np.sort(epoch), np.arange(n))
    again = data.batch_indices(seed=3, step=7, num_examples=n, batch_size=b)
    np.testing.assert_array_equal(
        again, data.batch_indices(seed=3, step=7, num_examples=n, batch_size=b)
    )
    next_epoch = data.batch_indices(seed=3, step=5, num_examples=n, batch_size=b)
    assert not np.array_equal(next_epoch, epoch[:b])
    with pytest.raises(ValueError, match="batch_size"):
        data.batch_indices(seed=0, step=0, num_examples=5, batch_size=6)


def test_dynamic_binarisation_has_the_grey_level_as_mean():
    x = np.full((20000,), 0.3, np.float32)
    draws = np.asarray(data.binarize(jax.random.key(0), x))
    assert set(np.unique(draws)) == {0.0, 1.0}
    se = np.sqrt(0.3 * 0.7 / x.size)
    assert abs(draws.mean() - 0.3) < 4.5 * se


def test_linear_gaussian_log_likelihood_matches_quadrature():
    ds = data.load_linear_gaussian(data_dim=3, latent_dim=1, noise_scale=0.7, num_test=20)
    w, b = data.linear_gaussian_parameters(data_dim=3, latent_dim=1)
    # p(x) = int N(x; w z + b, s^2 I) N(z; 0, 1) dz by the trapezoid rule over z.
    z = np.linspace(-10, 10, 20001)
    x = ds.x_test.astype(np.float64)
    resid = x[:, None, :] - (z[:, None] * w[:, 0] + b)[None]
    log_integrand = (
        -0.5 * np.sum(resid**2, -1) / 0.49
        - 3 * np.log(0.7 * np.sqrt(2 * np.pi))
        - 0.5 * z**2
        - 0.5 * np.log(2 * np.pi)
    )
    quadrature = np.log(np.trapezoid(np.exp(log_integrand), z, axis=1))
    np.testing.assert_allclose(ds.true_log_likelihood, quadrature, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_loader_reads_written_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = {
        s: rng.integers(0, 256, size=(n, 4, 3), dtype=np.uint8)
        for s, n in [("train", 6), ("t10k", 2)]
    }
    labels = {s: rng.integers(0, 10, size=len(images[s])).astype(">i4") for s in images}
    suffix = ".gz" if compress else ""
    for split in images:
        _write_idx(
            tmp_path / f"{split}-images-idx3-ubyte{suffix}", images[split], compress=compress
        )
        _write_idx(
            tmp_path / f"{split}-labels-idx1-ubyte{suffix}", labels[split], compress=compress
        )
    ds = data.load_mnist(str(tmp_path), binarize=False)
    np.testing.assert_allclose(ds.x_train, images["train"].reshape(6, 12) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, labels["t10k"])
    assert ds.num_classes == int(labels["train"].max()) + 1
    binary = data.load_dataset(
        ml_collections.ConfigDict({"name": "fashion_mnist", "path": str(tmp_path)})
    )
    assert binary.likelihood == "bernoulli" and set(np.unique(binary.x_test)) <= {0.0, 1.0}


def test_idx_loader_rejects_a_non_idx_file(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(str(path))


def test_npz_loader(tmp_path):
    path = tmp_path / "set.npz"
    x_train = np.arange(24, dtype=np.uint8).reshape(4, 2, 3)
    np.savez(path, x_train=x_train, x_test=x_train[:2], y_train=np.arange(4))
    ds = data.load_npz(str(path))
    np.testing.assert_allclose(ds.x_train, x_train.reshape(4, 6) / 255.0, rtol=1e-6)
    assert ds.y_test is None and ds.num_classes == 4
    np.savez(tmp_path / "bad.npz", x_train=x_train)
    with pytest.raises(ValueError, match="x_test"):
        data.load_npz(str(tmp_path / "bad.npz"))


def test_missing_files_name_what_is_expected_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as err:
        data.load_mnist(str(tmp_path))
    assert str(tmp_path) in str(err.value)
    missing = os.path.join(tmp_path, "nope.npz")
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        data.load_dataset(ml_collections.ConfigDict({"name": "npz", "path": missing}))
    with pytest.raises(ValueError, match="data.path"):
        data.load_dataset(ml_collections.ConfigDict({"name": "mnist", "path": ""}))
    with pytest.raises(ValueError, match="valid names: digits"):
        data.load_dataset(ml_collections.ConfigDict({"name": "cifar"}))
