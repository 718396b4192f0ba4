"""vb.weight_space against Bayesian linear regression in closed form and exact moments."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

ws = vb.weight_space

NOISE_VAR, PRIOR_VAR = 0.5, 2.0


def _regression(seed=0, n=6, d=3):
    """A design with orthogonal columns, so the exact posterior factorises (is mean-field)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, d)))
    x = q * np.array([1.5, 0.7, 2.0])[:d]
    y = x @ rng.normal(size=d) + rng.normal(size=n) * np.sqrt(NOISE_VAR)
    precision = 1 / PRIOR_VAR + np.sum(x**2, axis=0) / NOISE_VAR  # diagonal: X^T X is
    post_mean = (x.T @ y / NOISE_VAR) / precision
    cov = NOISE_VAR * np.eye(n) + PRIOR_VAR * x @ x.T
    log_evidence = -0.5 * (
        n * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + y @ np.linalg.solve(cov, y)
    )
    return x, y, post_mean, 1 / np.sqrt(precision), log_evidence


def _gauss_log_prob(v, var):
    return -0.5 * v**2 / var - 0.5 * jnp.log(2 * jnp.pi * var)


def _log_lik(x, y, weights):
    theta = jnp.concatenate([weights["a"], weights["b"]])
    return jnp.sum(_gauss_log_prob(y - x @ theta, NOISE_VAR))


def _split(v):
    return {"a": jnp.asarray(v[:2]), "b": jnp.asarray(v[2:])}


def test_elbo_equals_the_log_evidence_on_every_draw_at_the_exact_posterior():
    x, y, mean, std, log_evidence = _regression()
    with jax.enable_x64(True):
        values = jax.jit(
            jax.vmap(
                lambda k: ws.elbo(
                    k,
                    functools.partial(_log_lik, x, y),
                    _split(mean),
                    _split(std),
                    log_prior_fn=functools.partial(_gauss_log_prob, var=PRIOR_VAR),
                    num_samples=2,
                )
            )
        )(jax.random.split(jax.random.key(0), 5))
    np.testing.assert_allclose(values, log_evidence, rtol=0, atol=1e-10)


def test_elbo_gap_is_the_kl_to_the_exact_posterior():
    x, y, mean, std, log_evidence = _regression(1)
    q_mean, q_std = mean + np.array([0.3, -0.2, 0.1]), std * np.array([0.5, 1.5, 1.0])
    kl = np.sum(np.log(std / q_std) + (q_std**2 + (q_mean - mean) ** 2) / (2 * std**2) - 0.5)
    draws = jax.jit(
        jax.vmap(
            lambda k: ws.elbo(
                k,
                functools.partial(_log_lik, x, y),
                _split(q_mean),
                _split(q_std),
                log_prior_fn=functools.partial(_gauss_log_prob, var=PRIOR_VAR),
            )
        )
    )(jax.random.split(jax.random.key(1), 4000))
    draws = np.asarray(draws, np.float64)
    se = draws.std() / np.sqrt(draws.size)
    assert abs(draws.mean() - (log_evidence - kl)) < 4.5 * se
    assert log_evidence - draws.mean() > 10 * se  # the gap is resolved, not within noise


def test_scale_mixture_prior_matches_the_mixture_density_and_normalises():
    grid = np.linspace(-12.0, 12.0, 480_001)
    pi, s1, s2 = 0.3, 1.5, 0.05
    with jax.enable_x64(True):
        lp = np.asarray(ws.scale_mixture_log_prob(grid, mixture_weight=pi, scale1=s1, scale2=s2))
        only_wide = ws.scale_mixture_log_prob(grid, mixture_weight=1.0, scale1=s1, scale2=s2)
        only_narrow = ws.scale_mixture_log_prob(grid, mixture_weight=0.0, scale1=s1, scale2=s2)
    gauss = [np.exp(-0.5 * (grid / s) ** 2) / (s * np.sqrt(2 * np.pi)) for s in (s1, s2)]
    np.testing.assert_allclose(
        lp, np.log(pi * gauss[0] + (1 - pi) * gauss[1]), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(np.trapezoid(np.exp(lp), grid), 1.0, rtol=1e-8)
    np.testing.assert_allclose(only_wide, np.log(gauss[0]), rtol=1e-12)
    np.testing.assert_allclose(only_narrow[np.abs(grid) < 1], np.log(gauss[1][np.abs(grid) < 1]))


def test_elbo_with_a_scale_mixture_prior_is_unbiased_against_quadrature():
    # One weight, y_i ~ N(w, 1): the Monte Carlo KL against a prior with no closed-form KL.
    y = np.array([0.4, 0.9, 0.1])
    loc, scale = 0.2, 0.3
    prior = functools.partial(ws.scale_mixture_log_prob, mixture_weight=0.5, scale2=0.05)
    grid = np.linspace(loc - 12 * scale, loc + 12 * scale, 200_001)
    with jax.enable_x64(True):
        log_prior = np.asarray(prior(grid))
    q = np.exp(-0.5 * ((grid - loc) / scale) ** 2) / (scale * np.sqrt(2 * np.pi))
    integrand = (
        np.sum(-0.5 * (y[:, None] - grid) ** 2 - 0.5 * np.log(2 * np.pi), axis=0)
        + log_prior
        - np.log(q)
    )
    exact = np.trapezoid(q * integrand, grid)
    log_lik = lambda w: jnp.sum(-0.5 * (y - w) ** 2 - 0.5 * jnp.log(2 * jnp.pi))  # noqa: E731
    draws = jax.jit(
        jax.vmap(
            lambda k: ws.elbo(k, log_lik, jnp.array(loc), jnp.array(scale), log_prior_fn=prior)
        )
    )(jax.random.split(jax.random.key(2), 4000))
    draws = np.asarray(draws, np.float64)
    assert abs(draws.mean() - exact) < 4.5 * draws.std() / np.sqrt(draws.size)


@pytest.mark.parametrize("layer", [ws.local_reparameterization, ws.flipout])
def test_dense_outputs_have_the_exact_mean_and_variance(layer):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    loc = rng.normal(size=(3, 2)).astype(np.float32)
    scale = rng.uniform(0.2, 1.0, size=(3, 2)).astype(np.float32)
    n = 20_000
    y = jax.jit(jax.vmap(lambda k: layer(k, x, loc, scale)))(jax.random.split(jax.random.key(3), n))
    y = np.asarray(y, np.float64)
    mean_exact = x.astype(np.float64) @ loc
    var_exact = (x.astype(np.float64) ** 2) @ (scale.astype(np.float64) ** 2)
    centred = y - y.mean(0)
    var = centred.var(0)
    assert np.all(np.abs(y.mean(0) - mean_exact) < 4.5 * np.sqrt(var / n))
    var_se = np.sqrt(((centred**2 - var) ** 2).mean(0) / n)
    assert np.all(np.abs(var - var_exact) < 4.5 * var_se)


def test_flipout_shares_one_perturbation_flipped_by_signs():
    # With a single input equal to one, y_b = r_b (scale * eps) * s_b: every example sees the
    # same |perturbation|, which the local reparameterisation redraws for each example.
    loc, scale = jnp.zeros((1, 3)), jnp.ones((1, 3))
    x = jnp.ones((500, 1))
    y = np.abs(np.asarray(ws.flipout(jax.random.key(4), x, loc, scale)))
    np.testing.assert_array_equal(y, np.broadcast_to(y[0], y.shape))
    assert np.all(y[0] > 0)
    z = np.abs(np.asarray(ws.local_reparameterization(jax.random.key(4), x, loc, scale)))
    assert z[:, 0].std() > 0.3


def test_bad_inputs_name_the_argument():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="`scale`"):
        ws.elbo(key, jnp.sum, {"a": jnp.zeros(2)}, [jnp.ones(2)], log_prior_fn=jnp.negative)
    with pytest.raises(ValueError, match="`scale`"):
        ws.elbo(key, jnp.sum, jnp.zeros(2), -jnp.ones(2), log_prior_fn=jnp.negative)
    with pytest.raises(ValueError, match="`num_samples`"):
        ws.elbo(key, jnp.sum, jnp.zeros(2), jnp.ones(2), log_prior_fn=jnp.negative, num_samples=0)
    with pytest.raises(ValueError, match="`log_likelihood_fn`"):
        ws.elbo(key, lambda w: w, jnp.zeros(2), jnp.ones(2), log_prior_fn=jnp.negative)
    with pytest.raises(ValueError, match="`mixture_weight`"):
        ws.scale_mixture_log_prob(jnp.zeros(2), mixture_weight=1.5)
    with pytest.raises(ValueError, match="`scale2`"):
        ws.scale_mixture_log_prob(jnp.zeros(2), scale2=0.0)
    with pytest.raises(ValueError, match="`x`"):
        ws.flipout(key, jnp.ones((2, 4)), jnp.ones((3, 2)), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="`weight_scale`"):
        ws.local_reparameterization(key, jnp.ones((2, 3)), jnp.ones((3, 2)), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="`weight_loc`"):
        ws.flipout(key, jnp.ones((2, 3)), jnp.ones(3), jnp.ones(3))
