"""vb.linear_gaussian against dense float64 Gaussian algebra and scikit-learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

lg = vb.linear_gaussian


def _model(seed, d=5, k=2, n=7, fa=True):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, k))
    mu = rng.normal(size=d)
    psi = rng.uniform(0.3, 2.0, size=d) if fa else np.float64(0.7)
    x = rng.normal(size=(n, d)) * 2.0 + mu
    return x, w, mu, psi


def _dense_gaussian_logpdf(x, mu, cov):
    diff = x - mu
    _, logdet = np.linalg.slogdet(cov)
    quad = np.einsum("nd,nd->n", diff, np.linalg.solve(cov, diff.T).T)
    return -0.5 * (x.shape[-1] * np.log(2 * np.pi) + logdet + quad)


@pytest.mark.parametrize("fa", [True, False])
def test_log_likelihood_and_posterior_match_dense_conditioning(fa):
    x, w, mu, psi = _model(0, fa=fa)
    cov = w @ w.T + np.diag(np.broadcast_to(psi, (w.shape[0],)))
    with jax.enable_x64(True):
        ll = np.asarray(lg.log_likelihood(x, w, mu, psi))
        post = lg.posterior(x, w, mu, psi)
    np.testing.assert_allclose(ll, _dense_gaussian_logpdf(x, mu, cov), rtol=1e-12, atol=1e-10)
    # Conditioning the joint Gaussian of (z, x): a different formula from the latent-space one.
    gain = w.T @ np.linalg.inv(cov)
    np.testing.assert_allclose(post.mean, (x - mu) @ gain.T, atol=1e-10)
    np.testing.assert_allclose(post.cov, np.eye(w.shape[1]) - gain @ w, atol=1e-10)


def test_elbo_is_tight_at_the_posterior_and_its_gap_is_the_kl_otherwise():
    x, w, mu, psi = _model(1)
    k = w.shape[1]
    rng = np.random.default_rng(2)
    q_mean = rng.normal(size=(x.shape[0], k))
    a = rng.normal(size=(x.shape[0], k, k))
    q_cov = a @ np.swapaxes(a, -1, -2) + 0.2 * np.eye(k)
    with jax.enable_x64(True):
        ll = np.asarray(lg.log_likelihood(x, w, mu, psi))
        post = lg.posterior(x, w, mu, psi)
        tight = np.asarray(lg.elbo(x, w, mu, psi, post.mean, post.cov))
        loose = np.asarray(lg.elbo(x, w, mu, psi, q_mean, q_cov))
    np.testing.assert_allclose(tight, ll, rtol=0, atol=1e-10)
    # Gap = KL(N(q_mean, q_cov) || N(post.mean, post.cov)), the Gaussian KL in closed form.
    p_cov = np.asarray(post.cov)
    p_inv = np.linalg.inv(p_cov)
    diff = np.asarray(post.mean) - q_mean
    kl = 0.5 * (
        np.einsum("ij,nji->n", p_inv, q_cov)
        + np.einsum("ni,ij,nj->n", diff, p_inv, diff)
        - k
        + np.linalg.slogdet(p_cov)[1]
        - np.linalg.slogdet(q_cov)[1]
    )
    assert np.all(kl > 1e-3)
    np.testing.assert_allclose(ll - loose, kl, rtol=1e-10, atol=1e-10)


def test_elbo_float32_jit_and_grad_match_float64():
    x, w, mu, psi = _model(3)
    post = lg.posterior(x, w, mu, psi)

    @jax.jit
    def values_and_grads(w_):
        elbo = lambda v: jnp.sum(lg.elbo(x, v, mu, psi, post.mean, post.cov))  # noqa: E731
        ll = lambda v: jnp.sum(lg.log_likelihood(x, v, mu, psi))  # noqa: E731
        return elbo(w_), jax.grad(elbo)(w_), jax.grad(ll)(w_)

    value, g_elbo, g_ll = values_and_grads(jnp.asarray(w, jnp.float32))
    with jax.enable_x64(True):
        ll64 = float(jnp.sum(lg.log_likelihood(x, w, mu, psi)))
    assert abs(float(value) - ll64) < 1e-5 * abs(ll64)
    # At the posterior the ELBO's gradient in W equals the log-likelihood's (the EM identity).
    np.testing.assert_allclose(g_elbo, g_ll, rtol=2e-4, atol=2e-4)


def test_log_likelihood_matches_sklearn_factor_analysis_and_pca():
    decomposition = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(4)
    d, k, n = 6, 2, 200
    data = rng.normal(size=(n, k)) @ rng.normal(size=(k, d)) + rng.normal(size=(n, d)) * 0.5
    data += rng.normal(size=d)
    fa = decomposition.FactorAnalysis(n_components=k, random_state=0).fit(data)
    with jax.enable_x64(True):
        ll = np.asarray(lg.log_likelihood(data, fa.components_.T, fa.mean_, fa.noise_variance_))
    np.testing.assert_allclose(ll.mean(), fa.score(data), rtol=1e-10)

    pca = decomposition.PCA(n_components=k).fit(data)
    # sklearn's PPCA covariance: components scaled by sqrt(explained variance - noise).
    scale = np.sqrt(pca.explained_variance_ - pca.noise_variance_)
    with jax.enable_x64(True):
        ll = np.asarray(
            lg.log_likelihood(data, pca.components_.T * scale, pca.mean_, pca.noise_variance_)
        )
    np.testing.assert_allclose(ll.mean(), pca.score(data), rtol=1e-10)


def test_bad_inputs_name_the_argument():
    x, w, mu, psi = _model(5)
    with pytest.raises(ValueError, match="`weight`"):
        lg.log_likelihood(x, w[0], mu, psi)
    with pytest.raises(ValueError, match="`x`"):
        lg.log_likelihood(x[:, :3], w, mu, psi)
    with pytest.raises(ValueError, match="`mean`"):
        lg.posterior(x, w, mu[:2], psi)
    with pytest.raises(ValueError, match="`noise_variance`"):
        lg.log_likelihood(x, w, mu, psi[:2])
    with pytest.raises(ValueError, match="`noise_variance`"):
        lg.log_likelihood(x, w, mu, -1.0)
    with pytest.raises(ValueError, match="`q_mean`"):
        lg.elbo(x, w, mu, psi, np.zeros((7, 3)), np.eye(2))
    with pytest.raises(ValueError, match="`q_cov`"):
        lg.elbo(x, w, mu, psi, np.zeros((7, 2)), np.eye(3))
