"""vb.gp against dense float64 NumPy formulas, Titsias' identities and minibatch enumeration."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

NOISE = 0.3


def _data(n=7, dims=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dims))
    y = np.sin(x.sum(1)) + 0.3 * rng.normal(size=n)
    return x, y


def _np_rbf(a, b, lengthscale, variance):
    d2 = (((a[:, None, :] - b[None, :, :]) / lengthscale) ** 2).sum(-1)
    return variance * np.exp(-0.5 * d2)


def _np_log_normal(y, cov):
    sign, logdet = np.linalg.slogdet(cov)
    assert sign > 0
    return -0.5 * (len(y) * np.log(2 * np.pi) + logdet + y @ np.linalg.solve(cov, y))


def _np_collapsed(x, y, z, noise, lengthscale, variance):
    kxz = _np_rbf(x, z, lengthscale, variance)
    q = kxz @ np.linalg.solve(_np_rbf(z, z, lengthscale, variance), kxz.T)
    trace = np.trace(_np_rbf(x, x, lengthscale, variance) - q)
    return _np_log_normal(y, q + noise * np.eye(len(y))) - trace / (2 * noise)


def _np_svgp(x, y, z, mean, scale_tril, noise, lengthscale, variance):
    kzz = _np_rbf(z, z, lengthscale, variance)
    kxz = _np_rbf(x, z, lengthscale, variance)
    proj = np.linalg.solve(kzz, kxz.T)  # [m, n]
    s = scale_tril @ scale_tril.T
    mu = proj.T @ mean
    var = variance - np.einsum("nm,mn->n", kxz, proj) + np.einsum("mn,mk,kn->n", proj, s, proj)
    expected = -0.5 * (np.log(2 * np.pi * noise) + ((y - mu) ** 2 + var) / noise)
    m = len(mean)
    kl = 0.5 * (
        np.trace(np.linalg.solve(kzz, s))
        + mean @ np.linalg.solve(kzz, mean)
        - m
        + np.linalg.slogdet(kzz)[1]
        - np.linalg.slogdet(s)[1]
    )
    return expected.sum() - kl


def test_kernels_match_hand_formulas():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    lengthscale, variance = np.array([0.5, 1.0, 2.0]), 1.7
    k = vb.gp.rbf(lengthscale=lengthscale, variance=variance)
    np.testing.assert_allclose(k(a, b), _np_rbf(a, b, lengthscale, variance), rtol=1e-5)
    r = np.sqrt((((a[:, None] - b[None]) / lengthscale) ** 2).sum(-1))
    matern = variance * (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)
    k52 = vb.gp.matern52(lengthscale=lengthscale, variance=variance)
    np.testing.assert_allclose(k52(a, b), matern, rtol=1e-5)
    # k(a, a) = variance and the gradient through r = 0 is finite (and zero: a smooth maximum).
    np.testing.assert_allclose(np.diag(k52(a, a)), variance, rtol=1e-6)
    grad = jax.grad(lambda p: vb.gp.matern52(lengthscale=p)(a[:1], a[:1])[0, 0])(1.0)
    assert float(grad) == 0.0


def test_log_marginal_likelihood_matches_dense_float64():
    x, y = _data()
    with jax.enable_x64(True):
        k = vb.gp.rbf(lengthscale=0.8, variance=1.3)
        got = vb.gp.log_marginal_likelihood(k, x, y, NOISE, jitter=0.0)
        want = _np_log_normal(y, _np_rbf(x, x, 0.8, 1.3) + NOISE * np.eye(len(y)))
        np.testing.assert_allclose(float(got), want, rtol=1e-12)


def test_collapsed_elbo_is_exact_at_z_equals_x_and_below_elsewhere():
    x, y = _data()
    with jax.enable_x64(True):
        k = vb.gp.rbf(lengthscale=0.8, variance=1.3)
        exact = float(vb.gp.log_marginal_likelihood(k, x, y, NOISE, jitter=0.0))
        at_x = float(vb.gp.collapsed_elbo(k, x, y, x, NOISE, jitter=1e-12))
        np.testing.assert_allclose(at_x, exact, rtol=1e-8)
        rng = np.random.default_rng(2)
        for m in (1, 3, 5):
            z = rng.normal(size=(m, 2))
            got = float(vb.gp.collapsed_elbo(k, x, y, z, NOISE, jitter=0.0))
            np.testing.assert_allclose(got, _np_collapsed(x, y, z, NOISE, 0.8, 1.3), rtol=1e-10)
            assert got < exact


def test_svgp_matches_dense_float64_and_the_collapsed_bound_at_its_optimum():
    x, y = _data()
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 2))
    with jax.enable_x64(True):
        k = vb.gp.rbf(lengthscale=0.8, variance=1.3)
        mean, tril = rng.normal(size=4), np.tril(rng.normal(size=(4, 4))) + 2 * np.eye(4)
        got = float(vb.gp.svgp_elbo(k, x, y, z, mean, tril, NOISE, jitter=0.0))
        want = _np_svgp(x, y, z, mean, tril, NOISE, 0.8, 1.3)
        np.testing.assert_allclose(got, want, rtol=1e-10)
        collapsed = float(vb.gp.collapsed_elbo(k, x, y, z, NOISE, jitter=0.0))
        assert got < collapsed
        q = vb.gp.optimal_inducing_posterior(k, x, y, z, NOISE, jitter=0.0)
        assert np.all(np.diag(q.scale_tril) > 0)
        np.testing.assert_array_equal(q.scale_tril, np.tril(q.scale_tril))
        at_optimum = float(vb.gp.svgp_elbo(k, x, y, z, *q, NOISE, jitter=0.0))
        np.testing.assert_allclose(at_optimum, collapsed, rtol=1e-10)
        # The optimum is a stationary point: no direction of the mean improves the bound.
        grad = jax.grad(lambda m: vb.gp.svgp_elbo(k, x, y, z, m, q.scale_tril, NOISE, jitter=0.0))
        np.testing.assert_allclose(grad(q.mean), 0.0, atol=1e-9)


def test_optimal_posterior_at_z_equals_x_is_the_exact_posterior_and_predicts_exactly():
    x, y = _data()
    x_new = np.random.default_rng(4).normal(size=(3, 2))
    with jax.enable_x64(True):
        k = vb.gp.rbf(lengthscale=0.8, variance=1.3)
        q = vb.gp.optimal_inducing_posterior(k, x, y, x, NOISE, jitter=0.0)
        kxx = _np_rbf(x, x, 0.8, 1.3)
        gain = np.linalg.solve(kxx + NOISE * np.eye(len(y)), kxx).T  # K (K + s I)^-1
        np.testing.assert_allclose(q.mean, gain @ y, rtol=1e-9)
        cov = kxx - gain @ kxx
        np.testing.assert_allclose(q.scale_tril @ q.scale_tril.T, cov, atol=1e-10)
        mean, var = vb.gp.predict(k, x_new, x, *q, jitter=0.0)
        ksx = _np_rbf(x_new, x, 0.8, 1.3)
        inv = np.linalg.inv(kxx + NOISE * np.eye(len(y)))
        np.testing.assert_allclose(mean, ksx @ inv @ y, rtol=1e-8)
        np.testing.assert_allclose(var, 1.3 - np.einsum("ij,jk,ik->i", ksx, inv, ksx), rtol=1e-8)


def test_svgp_minibatch_estimate_is_unbiased_by_enumeration():
    x, y = map(jnp.asarray, _data(n=6))
    rng = np.random.default_rng(5)
    z, mean = rng.normal(size=(3, 2)), rng.normal(size=3)
    tril = np.tril(rng.normal(size=(3, 3))) + 2 * np.eye(3)
    with jax.enable_x64(True):
        k = vb.gp.matern52(lengthscale=0.7)
        full = float(vb.gp.svgp_elbo(k, x, y, z, mean, tril, NOISE))
        batch = jax.jit(
            lambda idx: vb.gp.svgp_elbo(k, x[idx], y[idx], z, mean, tril, NOISE, num_data=6)
        )
        every = [float(batch(np.array(s))) for s in itertools.combinations(range(6), 2)]
        np.testing.assert_allclose(np.mean(every), full, rtol=1e-12)
        assert np.std(every) > 0.1  # the minibatches really differ


def test_coreset_posterior_is_the_weighted_tempered_posterior():
    rng = np.random.default_rng(6)
    z, pseudo_y = rng.normal(size=(4, 2)), rng.normal(size=4)
    weights, beta = np.array([0.5, 2.0, 0.0, 1.0]), 0.7
    with jax.enable_x64(True):
        k = vb.gp.rbf(lengthscale=0.8, variance=1.3)
        q = vb.gp.coreset_posterior(k, z, pseudo_y, weights, NOISE, temperature=beta, jitter=0.0)
        precision = np.linalg.inv(_np_rbf(z, z, 0.8, 1.3)) + np.diag(beta * weights / NOISE)
        cov = np.linalg.inv(precision)
        np.testing.assert_allclose(q.scale_tril @ q.scale_tril.T, cov, rtol=1e-9)
        np.testing.assert_allclose(q.mean, cov @ (beta * weights * pseudo_y / NOISE), rtol=1e-9)


def test_coreset_elbo_is_tight_on_the_data_and_a_bound_elsewhere():
    x, y = _data()
    rng = np.random.default_rng(7)
    with jax.enable_x64(True):
        k = vb.gp.rbf(lengthscale=0.8, variance=1.3)
        exact = float(vb.gp.log_marginal_likelihood(k, x, y, NOISE, jitter=0.0))
        tight = float(vb.gp.coreset_elbo(k, x, y, x, y, np.ones(len(y)), NOISE, jitter=1e-12))
        np.testing.assert_allclose(tight, exact, rtol=1e-8)
        z = x[:3]
        collapsed = float(vb.gp.collapsed_elbo(k, x, y, z, NOISE, jitter=0.0))
        for _ in range(3):
            pseudo_y, weights = rng.normal(size=3), rng.exponential(size=3)
            got = vb.gp.coreset_elbo(
                k, x, y, z, pseudo_y, weights, NOISE, temperature=rng.uniform(0.2, 3.0)
            )
            assert float(got) < collapsed


def test_float32_jit_and_grad_with_inducing_points_on_the_data():
    x, y = _data(n=12, dims=1)
    x, y = x.astype(np.float32), y.astype(np.float32)

    def kernel(log_params):
        return vb.gp.matern52(lengthscale=jnp.exp(log_params[0]), variance=jnp.exp(log_params[1]))

    @jax.jit
    def run(log_params):
        def loss(p):
            return -vb.gp.collapsed_elbo(kernel(p), x, y, x[:6], jnp.exp(p[2]))

        value, grad = jax.value_and_grad(loss)(log_params)
        exact = vb.gp.log_marginal_likelihood(kernel(log_params), x, y, jnp.exp(log_params[2]))
        return value, grad, exact

    value, grad, exact = run(jnp.array([0.0, 0.0, -2.0]))
    assert np.isfinite(value) and np.all(np.isfinite(grad)) and np.any(grad != 0)
    assert float(-value) <= float(exact) + 1e-4


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda k, x, y: vb.gp.log_marginal_likelihood(k, x[:, 0], y, 1.0), "`x`"),
        (lambda k, x, y: vb.gp.log_marginal_likelihood(k, x, y[:-1], 1.0), "`y`"),
        (lambda k, x, y: vb.gp.log_marginal_likelihood(k, x, y, -1.0), "`noise_variance`"),
        (lambda k, x, y: vb.gp.log_marginal_likelihood(k, x, y, 1.0, jitter=-1.0), "`jitter`"),
        (lambda k, x, y: vb.gp.collapsed_elbo(k, x, y, x[:, :1], 1.0), "`z`"),
        (lambda k, x, y: vb.gp.svgp_elbo(k, x, y, x, y[:2], np.eye(7), 1.0), "`q_mean`"),
        (lambda k, x, y: vb.gp.svgp_elbo(k, x, y, x, y, np.eye(2), 1.0), "`q_scale_tril`"),
        (lambda k, x, y: vb.gp.svgp_elbo(k, x, y, x, y, np.eye(7), 1.0, num_data=0), "`num_data`"),
        (lambda k, x, y: vb.gp.coreset_posterior(k, x, y, -np.ones(7), 1.0), "`weights`"),
        (lambda k, x, y: vb.gp.coreset_posterior(k, x, y[:2], np.ones(7), 1.0), "`pseudo_y`"),
        (
            lambda k, x, y: vb.gp.coreset_posterior(k, x, y, np.ones(7), 1.0, temperature=0.0),
            "`temperature`",
        ),
        (lambda k, x, y: vb.gp.rbf(lengthscale=0.0), "`lengthscale`"),
        (lambda k, x, y: vb.gp.matern52(variance=-1.0), "`variance`"),
        (lambda k, x, y: vb.gp.log_marginal_likelihood("rbf", x, y, 1.0), "`kernel`"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    x, y = _data()
    with pytest.raises((ValueError, TypeError), match=match):
        call(vb.gp.rbf(), x, y)
