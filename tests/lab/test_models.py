"""Models: per-example interface shapes, normalised likelihoods, the Gaussian chain's
density, and argument errors."""

import itertools

import distrax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from vbounds.lab.models import CVAE, VAE, GaussianChain, TwoLayerVAE, build_model

K = 3


def _example(d=6, label=None):
    ex = {"x": jnp.asarray(np.random.default_rng(0).integers(0, 2, d), jnp.float32)}
    if label is not None:
        ex["y"] = jnp.asarray(label)
    return ex


def test_vae_interface_shapes():
    model = VAE(data_dim=6, latent_dim=2, hidden_sizes=(5,), rngs=nnx.Rngs(0))
    ex = _example()
    q = model.make_q(model.variational_params(ex))
    z = q.sample(seed=jax.random.key(0), sample_shape=(K,))
    assert z.shape == (K, 2)
    assert model.log_joint(ex, z).shape == (K,)
    np.testing.assert_allclose(
        model.log_joint(ex, z),
        model.log_likelihood(ex, z) + model.prior(ex).log_prob(z),
        rtol=1e-6,
    )
    assert model.posterior_mean(ex, jax.random.key(1)).shape == (2,)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_decoder_is_normalised(likelihood):
    model = VAE(
        data_dim=4, latent_dim=2, hidden_sizes=(5,), likelihood=likelihood, rngs=nnx.Rngs(1)
    )
    z = jax.random.normal(jax.random.key(0), (K, 2))
    if likelihood == "bernoulli":
        xs = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=4)))
        probs = jax.vmap(lambda x: jnp.exp(model.log_likelihood({"x": x}, z)))(xs)
        np.testing.assert_allclose(probs.sum(0), np.ones(K), rtol=1e-5)
    else:
        # A 4-d Gaussian density integrates to 1: check the log-density against distrax's
        # at the decoder mean, where it is -0.5 * 4 * log(2 pi) - sum(log_scale).
        mean = model.decoder.net(z)
        log_p = jax.vmap(lambda zk, m: model.log_likelihood({"x": m}, zk[None])[0])(z, mean)
        np.testing.assert_allclose(log_p, -2 * np.log(2 * np.pi) * np.ones(K), rtol=1e-5)


def test_two_layer_vae_samples_and_scores_the_chain():
    model = TwoLayerVAE(data_dim=6, latent_dims=(4, 2), hidden_sizes=((5,), (3,)), rngs=nnx.Rngs(0))
    ex = _example()
    q_params = model.variational_params(ex)
    q = model.make_q(q_params)
    z = q.sample(seed=jax.random.key(0), sample_shape=(K,))
    assert z["z1"].shape == (K, 4) and z["z2"].shape == (K, 2)
    loc2, scale2 = model.q_z2(z["z1"])
    manual = distrax.MultivariateNormalDiag(q_params["loc"], q_params["scale"]).log_prob(
        z["z1"]
    ) + distrax.MultivariateNormalDiag(loc2, scale2).log_prob(z["z2"])
    np.testing.assert_allclose(q.log_prob(z), manual, rtol=1e-6)
    assert model.log_joint(ex, z).shape == (K,)
    mean = model.posterior_mean(ex, jax.random.key(2))
    np.testing.assert_allclose(mean["z1"], q_params["loc"], rtol=1e-6)
    assert mean["z2"].shape == (2,)


def test_gaussian_chain_second_variable_follows_its_conditional():
    chain = GaussianChain(
        jnp.zeros(1), jnp.ones(1), lambda a: (2.0 * a, jnp.full_like(a, 0.5)), names=("a", "b")
    )
    draws = chain.sample(seed=jax.random.key(0), sample_shape=(20000,))
    # b = 2a + 0.5 eps: Var(b) = 4 + 0.25, Cov(a, b) = 2.
    cov = np.cov(np.asarray(draws["a"][:, 0]), np.asarray(draws["b"][:, 0]))
    se = np.sqrt(2 * 4.25**2 / 20000)
    assert abs(cov[1, 1] - 4.25) < 4.5 * se
    assert abs(cov[0, 1] - 2.0) < 4.5 * np.sqrt((1 * 4.25 + 4) / 20000)


def test_cvae_prior_depends_on_the_label():
    model = CVAE(data_dim=6, num_classes=3, latent_dim=2, hidden_sizes=(5,), rngs=nnx.Rngs(0))
    p0, p1 = model.prior(_example(label=0)), model.prior(_example(label=1))
    assert not np.allclose(p0.mean(), p1.mean())
    z = jnp.zeros((K, 2))
    assert model.log_joint(_example(label=2), z).shape == (K,)
    assert not np.allclose(
        model.log_likelihood(_example(label=0), z), model.log_likelihood(_example(label=1), z)
    )


def test_build_model_and_argument_errors():
    config = ml_collections.ConfigDict({"name": "vae", "latent_dim": 2, "hidden_sizes": [4]})
    example = {"x": np.zeros((2, 6), np.float32)}
    assert isinstance(build_model(config, example_batch=example), VAE)
    with pytest.raises(ValueError, match="unknown model.name .gan.; valid names: .*vae"):
        build_model(ml_collections.ConfigDict({"name": "gan"}), example_batch=example)
    with pytest.raises(ValueError, match="needs labelled data"):
        build_model(ml_collections.ConfigDict({"name": "cvae"}), example_batch=example)
    with pytest.raises(ValueError, match="model.latent_size is not a hyperparameter"):
        build_model(
            ml_collections.ConfigDict({"name": "vae", "latent_size": 2}), example_batch=example
        )
    with pytest.raises(ValueError, match="activation"):
        VAE(data_dim=6, activation="swishy", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="likelihood"):
        VAE(data_dim=6, likelihood="poisson", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="num_classes"):
        CVAE(data_dim=6, num_classes=0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="latent_dim"):
        VAE(data_dim=6, latent_dim=0, rngs=nnx.Rngs(0))
