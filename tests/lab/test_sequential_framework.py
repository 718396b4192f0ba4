"""The sequential family in the framework: pendulum data, latent SSM, ELBO/IWAE/FIVO."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb
from vbounds.lab import train_and_evaluate
from vbounds.lab.data.pendulum import NoisyPendulum
from vbounds.lab.models.ssm import LatentSSM
from vbounds.lab.objectives.sequential import sequence_bound


def test_pendulum_data_is_a_pure_function_of_its_settings():
    data = NoisyPendulum(num_train=16, num_test=4, num_steps=7).validate()
    a = data.train_batch(seed=1, step=3, batch_size=4)["x"]
    b = NoisyPendulum(num_train=16, num_test=4, num_steps=7).train_batch(
        seed=1, step=3, batch_size=4
    )["x"]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 7, 2) and data.test_split()["x"].shape == (4, 7, 2)
    # Noise-free observations lie on the unit circle.
    clean = NoisyPendulum(num_train=4, num_test=4, noise=1e-9).test_split()["x"]
    np.testing.assert_allclose(np.sum(clean**2, axis=-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="num_steps"):
        NoisyPendulum(num_steps=0).validate()


def test_sequence_bounds_agree_with_the_core_on_one_step():
    # With one time step, IWAE, FIVO (nothing to resample) and the core's IWAE of the
    # same draw coincide; the ELBO of K draws is below their IWAE on average.
    from flax import nnx

    model = LatentSSM(2, z_dim=2, hidden=8, rngs=nnx.Rngs(0))
    x = jnp.array([[0.3, 0.9]])
    key = jax.random.key(0)
    kw = dict(num_particles=8, resampling="systematic", ess_threshold=0.5)
    iwae = sequence_bound(model, x, key, bound="iwae", **kw)
    fivo = sequence_bound(model, x, key, bound="fivo", **kw)
    np.testing.assert_allclose(iwae, fivo, rtol=1e-6)
    prior, proposal, emission = model.callables(x)
    out = vb.sequential.fivo(
        key,
        x,
        prior=prior,
        proposal=proposal,
        emission=emission,
        initial_state=jnp.zeros(2),
        num_particles=8,
    )
    np.testing.assert_allclose(iwae, vb.iwae(out.log_weights), rtol=1e-6)


def test_ssm_pendulum_smoke_trains(tmp_path):
    module = importlib.import_module("experiments.configs.ssm_pendulum")
    config = module.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    for name in ("test_log_likelihood", "test_elbo", "test_iwae", "test_fivo"):
        assert np.isfinite(results[name]), name
    # The particle filter's estimate with many particles is above the 1-draw-per-particle
    # ELBO on average (its expectation is log p(x) minus a smaller gap).
    assert results["test_log_likelihood"] > results["test_elbo"]


def test_latent_sde_smoke_trains_and_draws_posterior_paths(tmp_path):
    module = importlib.import_module("experiments.configs.latent_sde")
    config = module.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    for name in ("test_elbo", "test_log_likelihood", "test_path_kl", "test_initial_kl"):
        assert np.isfinite(results[name]), name
    # The ELBO is its terms: log-likelihood minus the two KLs (means over paths).
    np.testing.assert_allclose(
        results["test_elbo"],
        results["test_log_likelihood"] - results["test_path_kl"] - results["test_initial_kl"],
        rtol=1e-4,
    )
    assert results["test_path_kl"] >= 0 and results["test_initial_kl"] >= 0
    assert (tmp_path / "report.png").stat().st_size > 0
