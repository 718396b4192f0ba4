"""vb.eig against the exact EIG of linear-Gaussian models.

Model: theta ~ N(0, PRIOR_COV) in D = 2, y = X theta + sigma eps with P = 2 observations.
Its EIG, posterior and outcome marginal are known in closed form; every statistical check
uses a tolerance of 4.5 standard errors computed from the per-outcome terms.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

PRIOR_COV = np.array([[1.0, 0.3], [0.3, 0.5]])
DESIGN = np.array([[1.0, 0.5], [-0.4, 1.2]])
NOISE = 0.8


def _exact_eig():
    return float(vb.eig.linear_gaussian(DESIGN, PRIOR_COV, NOISE))


def _posterior_moments(y):
    """Exact posterior N(mean [N, D], cov [D, D]) given outcomes y [N, P] (float64 numpy)."""
    cov = np.linalg.inv(np.linalg.inv(PRIOR_COV) + DESIGN.T @ DESIGN / NOISE)
    return y @ DESIGN @ cov.T / NOISE, cov


def _mvn_logpdf(x, mean, cov):
    return jax.scipy.stats.multivariate_normal.logpdf(x, mean, cov)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _simulate(key, n, num_contrasts):
    """theta0 [N, D], y [N, P], log_lik [N, L + 1] with nested contrasts in columns 1..L."""
    k0, ke, kc = jax.random.split(key, 3)
    chol = np.linalg.cholesky(PRIOR_COV)
    theta0 = jax.random.normal(k0, (n, 2)) @ chol.T
    y = theta0 @ DESIGN.T + math.sqrt(NOISE) * jax.random.normal(ke, (n, 2))
    contrasts = jax.random.normal(kc, (n, num_contrasts, 2)) @ chol.T
    thetas = jnp.concatenate([theta0[:, None], contrasts], axis=1)
    means = jnp.einsum("nld,pd->nlp", thetas, DESIGN)
    log_lik = jnp.sum(jax.scipy.stats.norm.logpdf(y[:, None], means, math.sqrt(NOISE)), -1)
    return theta0, y, log_lik


@functools.partial(jax.jit, static_argnums=0)
def _per_outcome(fn, *arrays):
    """Per-outcome terms of a bound that averages over its first axis."""
    return jax.vmap(lambda *rows: fn(*(r[None] for r in rows)))(*arrays)


def _mean_se(x):
    x = np.asarray(x, np.float64)
    return x.mean(), x.std(ddof=1) / math.sqrt(x.size)


def test_linear_gaussian_matches_entropy_identities():
    # EIG = H(y) - H(y | theta) = H(theta) - H(theta | y), both in float64 numpy.
    marginal_cov = DESIGN @ PRIOR_COV @ DESIGN.T + NOISE * np.eye(2)
    via_outcome = 0.5 * (np.linalg.slogdet(marginal_cov)[1] - 2 * math.log(NOISE))
    _, post_cov = _posterior_moments(np.zeros((1, 2)))
    via_parameter = 0.5 * (np.linalg.slogdet(PRIOR_COV)[1] - np.linalg.slogdet(post_cov)[1])
    np.testing.assert_allclose(_exact_eig(), via_outcome, rtol=1e-5)
    np.testing.assert_allclose(_exact_eig(), via_parameter, rtol=1e-5)
    batch = vb.eig.linear_gaussian(np.stack([DESIGN, 2 * DESIGN]), PRIOR_COV, NOISE)
    assert batch.shape == (2,) and batch[1] > batch[0]


def test_pce_and_nmc_approach_the_exact_eig_from_below_and_above():
    exact = _exact_eig()
    _, _, log_lik = _simulate(jax.random.key(0), 4000, 256)
    pce, nmc = {}, {}
    for num in (1, 16, 256):
        pce[num] = _per_outcome(vb.eig.pce, log_lik[:, : num + 1])
        nmc[num] = _per_outcome(vb.eig.nmc, log_lik[:, : num + 1])
        np.testing.assert_allclose(float(vb.eig.pce(log_lik[:, : num + 1])), pce[num].mean(), 1e-5)
        p_mean, p_se = _mean_se(pce[num])
        n_mean, n_se = _mean_se(nmc[num])
        assert p_mean <= exact + 4.5 * p_se, (num, p_mean, exact)
        assert n_mean >= exact - 4.5 * n_se, (num, n_mean, exact)
    for small, large in ((1, 16), (16, 256)):
        gain, gain_se = _mean_se(pce[large] - pce[small])
        drop, drop_se = _mean_se(nmc[small] - nmc[large])
        assert gain > 4.5 * gain_se and drop > 4.5 * drop_se, (small, large)


def test_pce_never_exceeds_log_l_plus_one():
    log_lik = jnp.array([[1e4, -1e4, -1e4, -1e4], [3.0, 3.0, 3.0, 3.0]])
    assert float(vb.eig.pce(log_lik[:1])) == pytest.approx(math.log(4), abs=1e-6)
    assert float(vb.eig.pce(log_lik[1:])) == pytest.approx(0.0, abs=1e-6)
    for seed in range(5):
        adversarial = 1e3 * jax.random.normal(jax.random.key(seed), (50, 8))
        adversarial = adversarial.at[:, 0].set(jnp.max(adversarial, axis=1) + 500.0)
        assert float(vb.eig.pce(adversarial)) <= math.log(8) + 1e-6


def test_posterior_bound_exact_with_true_posterior_and_below_with_a_worse_one():
    exact = _exact_eig()
    theta, y, _ = _simulate(jax.random.key(1), 20000, 1)
    mean, cov = _posterior_moments(y)
    log_prior = _mvn_logpdf(theta, np.zeros(2), PRIOR_COV)
    inflate = 2.0  # q = N(true mean, 2 cov): gap KL = D/2 (1/c - 1 + log c)
    gap = 0.5 * 2 * (1 / inflate - 1 + math.log(inflate))
    for scale, target in ((1.0, exact), (inflate, exact - gap)):
        log_q = _mvn_logpdf(theta, mean, scale * cov)
        value, se = _mean_se(log_q - log_prior)
        assert float(vb.eig.posterior(log_q, log_prior)) == pytest.approx(value, abs=1e-5)
        assert abs(value - target) < 4.5 * se, (scale, value, target)
    assert exact - gap < exact - 4.5 * se  # the worse posterior is detectably below


def test_marginal_bound_exact_with_true_marginal_and_above_with_a_worse_one():
    exact = _exact_eig()
    theta, y, log_lik = _simulate(jax.random.key(2), 20000, 1)
    marginal_cov = DESIGN @ PRIOR_COV @ DESIGN.T + NOISE * np.eye(2)
    inflate = 2.0
    gap = 0.5 * 2 * (1 / inflate - 1 + math.log(inflate))
    for scale, target in ((1.0, exact), (inflate, exact + gap)):
        log_q_y = _mvn_logpdf(y, np.zeros(2), scale * marginal_cov)
        value, se = _mean_se(log_lik[:, 0] - log_q_y)
        assert float(vb.eig.marginal(log_lik[:, 0], log_q_y)) == pytest.approx(value, abs=1e-5)
        assert abs(value - target) < 4.5 * se, (scale, value, target)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _vnmc_inputs(key, y, scale, num):
    """log_joint, log_q [N, L] for theta_l ~ q = N(exact posterior mean, scale * cov)."""
    mean, cov = _posterior_moments(y)
    draws = (
        mean[:, None]
        + jax.random.normal(key, (y.shape[0], num, 2)) @ np.linalg.cholesky(scale * cov).T
    )
    log_q = _mvn_logpdf(draws, mean[:, None], scale * cov)
    means = jnp.einsum("nld,pd->nlp", draws, DESIGN)
    log_lik = jnp.sum(jax.scipy.stats.norm.logpdf(y[:, None], means, math.sqrt(NOISE)), -1)
    return _mvn_logpdf(draws, np.zeros(2), PRIOR_COV) + log_lik, log_q


def test_vnmc_exact_with_true_posterior_and_an_upper_bound_decreasing_in_l():
    exact = _exact_eig()
    _, y, log_lik = _simulate(jax.random.key(3), 500, 1)
    # With q the exact posterior every importance weight equals p(y): one draw suffices.
    # Equal up to float32 rounding of log-densities of magnitude ~10.
    log_joint, log_q = _vnmc_inputs(jax.random.key(4), y, 1.0, 1)
    marginal_cov = DESIGN @ PRIOR_COV @ DESIGN.T + NOISE * np.eye(2)
    log_py = _mvn_logpdf(y, np.zeros(2), marginal_cov)
    per = _per_outcome(vb.eig.vnmc, log_lik[:, 0], log_joint, log_q)
    np.testing.assert_allclose(per, log_lik[:, 0] - log_py, atol=1e-4)
    _, y, log_lik = _simulate(jax.random.key(5), 4000, 1)
    log_joint, log_q = _vnmc_inputs(jax.random.key(6), y, 3.0, 64)
    values = {
        num: _per_outcome(vb.eig.vnmc, log_lik[:, 0], log_joint[:, :num], log_q[:, :num])
        for num in (1, 64)
    }
    drop, drop_se = _mean_se(values[1] - values[64])
    assert drop > 4.5 * drop_se
    for per in values.values():
        value, se = _mean_se(per)
        assert value >= exact - 4.5 * se


def _lg_log_prior(theta):
    return _mvn_logpdf(theta, jnp.zeros(2), jnp.asarray(PRIOR_COV))


def _lg_log_lik(theta, y):
    mean = jnp.asarray(DESIGN) @ theta
    return jnp.sum(jax.scipy.stats.norm.logpdf(y, mean, math.sqrt(NOISE)))


def test_laplace_is_the_exact_posterior_bound_on_a_linear_gaussian_model():
    theta, y, _ = _simulate(jax.random.key(7), 64, 1)
    mean, cov = _posterior_moments(y)
    log_prior = _mvn_logpdf(theta, np.zeros(2), PRIOR_COV)
    expected = vb.eig.posterior(_mvn_logpdf(theta, mean, cov), log_prior)
    # One Newton step from any start lands on the mode of a Gaussian posterior.
    value = vb.eig.laplace(_lg_log_prior, _lg_log_lik, theta, y, jnp.ones(2), num_steps=1)
    np.testing.assert_allclose(value, expected, rtol=1e-4)


def test_gaussian_fits_bracket_the_exact_eig():
    exact = _exact_eig()
    n, num_fit = 20000, 10000
    theta, y, log_lik = _simulate(jax.random.key(8), n, 1)
    log_prior = _mvn_logpdf(theta, np.zeros(2), PRIOR_COV)
    lower = float(vb.eig.gaussian_posterior(theta, y, log_prior, num_fit=num_fit))
    upper = float(vb.eig.gaussian_marginal(y, log_lik[:, 0], num_fit=num_fit))
    # Standard errors from the held-out terms with the exact posterior / marginal; the fit
    # of (P + 1) D + D (D + 1) / 2 = 9 numbers costs about 9 / (2 num_fit) nats more.
    mean, cov = _posterior_moments(y[num_fit:])
    _, se_post = _mean_se(_mvn_logpdf(theta[num_fit:], mean, cov) - log_prior[num_fit:])
    marginal_cov = DESIGN @ PRIOR_COV @ DESIGN.T + NOISE * np.eye(2)
    log_py = _mvn_logpdf(y[num_fit:], np.zeros(2), marginal_cov)
    _, se_marg = _mean_se(log_lik[num_fit:, 0] - log_py)
    fit_cost = 9 / (2 * num_fit)
    assert exact - 4.5 * se_post - fit_cost < lower < exact + 4.5 * se_post
    assert exact - 4.5 * se_marg < upper < exact + 4.5 * se_marg + fit_cost


def test_linear_gaussian_posterior_and_sequential_design_are_exact():
    mean, cov = vb.eig.linear_gaussian_posterior(
        DESIGN, np.array([0.7, -1.1]), np.zeros(2), PRIOR_COV, NOISE
    )
    expected_mean, expected_cov = _posterior_moments(np.array([[0.7, -1.1]]))
    np.testing.assert_allclose(mean, expected_mean[0], rtol=1e-4)
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-4)

    angles = np.linspace(0.0, np.pi, 7, endpoint=False)
    candidates = np.stack([np.cos(angles), np.sin(angles)], axis=1)[:, None, :]
    theta = np.array([0.5, -1.0])
    record = vb.eig.sequential_linear_gaussian(
        candidates, theta, np.zeros(2), PRIOR_COV, NOISE, jax.random.key(0), num_steps=5
    )
    stacked = candidates[np.asarray(record.choice), 0]  # [T, D]
    # Chain rule: the per-step gains add up to the EIG of all designs together.
    np.testing.assert_allclose(
        record.eig.sum(), vb.eig.linear_gaussian(stacked, PRIOR_COV, NOISE), rtol=1e-4
    )
    # Sequential conjugate updates equal the batch posterior of all outcomes.
    batch_cov = np.linalg.inv(np.linalg.inv(PRIOR_COV) + stacked.T @ stacked / NOISE)
    batch_mean = batch_cov @ stacked.T @ np.asarray(record.y)[:, 0] / NOISE
    np.testing.assert_allclose(record.cov[-1], batch_cov, rtol=1e-4)
    np.testing.assert_allclose(record.mean[-1], batch_mean, rtol=1e-4)
    # Greedy: each choice is the best candidate under the prior of its step.
    previous = np.concatenate([PRIOR_COV[None], np.asarray(record.cov[:-1])])
    for step, cov_t in enumerate(previous):
        gains = vb.eig.linear_gaussian(candidates, cov_t, NOISE)
        assert record.eig[step] == pytest.approx(float(gains.max()), rel=1e-5)


SIGMA_DIAG = np.array([4.0, 1.0, 0.25])  # D-optimal unit-norm design: the first axis


def _unit(d):
    return d / jnp.linalg.norm(d)


def _simulate_design(design, key, n):
    k0, ke, kc = jax.random.split(key, 3)
    theta0 = jax.random.normal(k0, (n, 3)) * np.sqrt(SIGMA_DIAG)
    y = theta0 @ design + jax.random.normal(ke, (n,))
    return theta0, y, kc


def _pce_of_design(direction, key):
    design = _unit(direction)
    theta0, y, kc = _simulate_design(design, key, 64)
    contrasts = jax.random.normal(kc, (64, 31, 3)) * np.sqrt(SIGMA_DIAG)
    thetas = jnp.concatenate([theta0[:, None], contrasts], axis=1)
    return vb.eig.pce(jax.scipy.stats.norm.logpdf(y[:, None], thetas @ design))


def _barber_agakov_of_design(params, key):
    direction, (gain, log_scale) = params
    design = _unit(direction)
    theta0, y, _ = _simulate_design(design, key, 128)
    log_q = jnp.sum(jax.scipy.stats.norm.logpdf(theta0, y[:, None] * gain, jnp.exp(log_scale)), 1)
    log_prior = jnp.sum(jax.scipy.stats.norm.logpdf(theta0, 0.0, np.sqrt(SIGMA_DIAG)), 1)
    return vb.eig.posterior(log_q, log_prior)


def test_optimized_design_is_the_d_optimal_design():
    # EIG(d) = 0.5 log(1 + d' Sigma d / 1) on the unit sphere peaks at the top eigenvector.
    best = 0.5 * math.log(1.0 + SIGMA_DIAG.max())
    start = _unit(jnp.array([0.2, 0.6, 1.0]))

    def eig(d):
        return float(vb.eig.linear_gaussian(d[None], np.diag(SIGMA_DIAG), 1.0))

    assert eig(start) < best - 0.3
    direction, history = jax.jit(
        vb.eig.optimize_design, static_argnums=0, static_argnames=("num_steps", "learning_rate")
    )(_pce_of_design, start, jax.random.key(0), num_steps=300, learning_rate=0.05)
    assert history.shape == (300,) and eig(_unit(direction)) > best - 0.01
    posterior = (jnp.zeros(3), jnp.zeros(3))
    (direction, _), _ = jax.jit(
        vb.eig.optimize_design, static_argnums=0, static_argnames=("num_steps", "learning_rate")
    )(
        _barber_agakov_of_design,
        (start, posterior),
        jax.random.key(1),
        num_steps=400,
        learning_rate=0.05,
    )
    assert eig(_unit(direction)) > best - 0.01


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="log_lik"):
        vb.eig.pce(jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="log_lik"):
        vb.eig.nmc(jnp.array([[0.0, jnp.nan]]))
    with pytest.raises(ValueError, match="log_prior"):
        vb.eig.posterior(jnp.zeros(3), jnp.zeros(2))
    with pytest.raises(ValueError, match="log_q_y"):
        vb.eig.marginal(jnp.zeros(3), jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="log_q"):
        vb.eig.vnmc(jnp.zeros(3), jnp.zeros((3, 2)), jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="noise_variance"):
        vb.eig.linear_gaussian(DESIGN, PRIOR_COV, -1.0)
    with pytest.raises(ValueError, match="prior_cov"):
        vb.eig.linear_gaussian(DESIGN, np.eye(3), 1.0)
    with pytest.raises(ValueError, match="num_fit"):
        vb.eig.gaussian_marginal(jnp.zeros((10, 1)), jnp.zeros(10), num_fit=10)
    with pytest.raises(ValueError, match="num_steps"):
        vb.eig.optimize_design(lambda p, k: p, jnp.zeros(()), jax.random.key(0), num_steps=0)
    with pytest.raises(ValueError, match="candidates"):
        vb.eig.sequential_linear_gaussian(
            np.eye(2), np.zeros(2), np.zeros(2), np.eye(2), 1.0, jax.random.key(0), num_steps=1
        )
