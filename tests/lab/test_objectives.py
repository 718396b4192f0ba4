"""The objective registry against exact answers: a linear-Gaussian VAE whose encoder is
set to the exact posterior makes every bound equal the exact log p(x), and makes the
STL and DReG encoder gradients vanish."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from scipy.stats import multivariate_normal

from vbounds.lab.models import VAE
from vbounds.lab.objectives import make_objective
from vbounds.lab.objectives.vae import ESTIMATORS
from vbounds.lab.registry import registered

W = np.array([0.8, -0.5, 0.3])
B = np.array([0.1, 0.2, -0.3])
NOISE = 0.6


def _exact_posterior_vae():
    """x = w z + b + noise * eps with z ~ N(0, 1): linear encoder = exact posterior."""
    model = VAE(data_dim=3, latent_dim=1, hidden_sizes=(), likelihood="gaussian", rngs=nnx.Rngs(0))
    var = 1.0 / (1.0 + W @ W / NOISE**2)
    enc = model.encoder.net.layers[0]
    enc.kernel[...] = jnp.asarray(np.stack([var * W / NOISE**2, np.zeros(3)], 1), jnp.float32)
    raw_scale = np.log(np.expm1(np.sqrt(var) - 1e-4))
    enc.bias[...] = jnp.asarray([-var * W @ B / NOISE**2, raw_scale], jnp.float32)
    dec = model.decoder.net.layers[0]
    dec.kernel[...] = jnp.asarray(W[None], jnp.float32)
    dec.bias[...] = jnp.asarray(B, jnp.float32)
    model.decoder.log_scale[...] = jnp.full(3, np.log(NOISE), jnp.float32)
    return model


def _batch():
    x = np.random.default_rng(0).normal(size=(4, 3)) + B
    exact = multivariate_normal(B, np.outer(W, W) + NOISE**2 * np.eye(3)).logpdf(x)
    return {"x": jnp.asarray(x, jnp.float32)}, exact


def _config(name, estimator, **extra):
    alpha = {"alpha": 0.5} if name in ("renyi", "vod") else {}
    return ml_collections.ConfigDict(
        {"name": name, "estimator": estimator, "num_samples": 4, **alpha, **extra}
    )


def get_objective(config):
    return make_objective(config).loss


CASES = [
    ("elbo", "reparam", {"kl": "mc"}),
    ("elbo", "stl", {}),
    ("iwae", "reparam", {}),
    ("iwae", "dreg", {}),
    ("renyi", "reparam", {}),
    ("vr_max", "vimco", {}),
    ("rws", "is", {}),
    ("rws", "dreg", {}),
]


@pytest.mark.parametrize(("name", "estimator", "extra"), CASES)
def test_bounds_are_exact_at_the_exact_posterior(name, estimator, extra):
    model = _exact_posterior_vae()
    batch, exact = _batch()
    loss, metrics = get_objective(_config(name, estimator, **extra))(
        model, batch, jax.random.key(0)
    )
    np.testing.assert_allclose(metrics["objective"], exact.mean(), rtol=1e-4)
    np.testing.assert_allclose(loss, -exact.mean(), rtol=1e-4)


@pytest.mark.parametrize("name", ["elbo", "weighted_elbo"])
def test_analytic_kl_elbo_is_unbiased_at_the_exact_posterior(name):
    # With the closed-form KL only the likelihood term is sampled, so the bound equals
    # log p(x) in expectation: compare within 4.5 standard errors of that term.
    model = _exact_posterior_vae()
    batch, exact = _batch()
    k = 4000
    extra = {"beta": 1.0} if name == "weighted_elbo" else {}
    config = _config(name, "reparam", kl="analytic", num_samples=k, **extra)
    _, metrics = get_objective(config)(model, batch, jax.random.key(0))

    def log_likelihoods(example, key):
        q = model.make_q(model.variational_params(example))
        return model.log_likelihood(example, q.sample(seed=key, sample_shape=(k,)))

    draws = jax.vmap(log_likelihoods)(batch, jax.random.split(jax.random.key(5), 4))
    se = float(jnp.sqrt(jnp.mean(jnp.var(draws, axis=1)) / (k * 4)))
    assert abs(float(metrics["bound"]) - exact.mean()) < 4.5 * se
    assert se < 0.02


def _encoder_grad_norm(name, estimator):
    model = _exact_posterior_vae()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    batch, _ = _batch()
    loss_fn = get_objective(_config(name, estimator))

    def loss(p):
        return loss_fn(nnx.merge(graphdef, p, rest), batch, jax.random.key(1))[0]

    grads = jax.grad(loss)(params)
    return float(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads["encoder"])))


@pytest.mark.parametrize(("name", "estimator"), [("elbo", "stl"), ("iwae", "dreg")])
def test_path_gradient_estimators_vanish_at_the_exact_posterior(name, estimator):
    assert _encoder_grad_norm(name, estimator) < 1e-8
    # The same draw under plain reparameterisation keeps the score term: the check can fail.
    assert _encoder_grad_norm(name, "reparam") > 1e-4


def test_vod_is_the_vod_bound_of_the_draw():
    model = _exact_posterior_vae()
    batch, exact = _batch()
    _, metrics = get_objective(_config("vod", "reparam", alpha=0.0))(
        model, batch, jax.random.key(0)
    )
    # At the exact posterior zeta_i = p(z_i)/q(z_i) and log v_i = log p(x) - log mean(zeta).
    assert np.isfinite(metrics["bound"])
    assert metrics["elbo"] == pytest.approx(exact.mean(), rel=1e-4)


def check_objective_config(config):
    make_objective(config)


def test_every_objective_lists_its_estimators():
    assert set(ESTIMATORS) <= set(registered("objective"))
    with pytest.raises(ValueError, match="unknown objective.name .nce.; valid names: .*iwae"):
        check_objective_config(_config("nce", "reparam"))
    with pytest.raises(ValueError, match="does not apply to 'vod'"):
        check_objective_config(_config("vod", "dreg"))
    with pytest.raises(ValueError, match="num_samples"):
        check_objective_config(_config("iwae", "reparam", num_samples=0))
    with pytest.raises(ValueError, match="vimco"):
        check_objective_config(_config("iwae", "vimco", num_samples=1))
    with pytest.raises(ValueError, match="objective.kl"):
        check_objective_config(_config("elbo", "reparam", kl="exact"))


def test_weighted_elbo_is_a_bound_only_at_beta_one():
    model = _exact_posterior_vae()
    batch, _ = _batch()
    _, metrics = get_objective(_config("weighted_elbo", "reparam", beta=4.0))(
        model, batch, jax.random.key(0)
    )
    assert "bound" not in metrics and {"objective", "elbo", "kl"} <= set(metrics)
    _, metrics = get_objective(_config("weighted_elbo", "reparam", beta=1.0))(
        model, batch, jax.random.key(0)
    )
    assert metrics["bound"] == metrics["objective"]


def test_an_undeclared_hyperparameter_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"objective.beta is not a hyperparameter of 'iwae'"):
        make_objective(_config("iwae", "reparam", beta=4.0))
    with pytest.raises(ValueError, match="valid keys: .*num_samples"):
        make_objective(_config("iwae", "reparam", beta=4.0))
