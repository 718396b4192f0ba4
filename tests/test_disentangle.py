"""Exact checks of vb.disentangle: the ELBO decomposition, beta-TCVAE, density gap and MIG."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

D = vb.disentangle


def _gaussian_dataset(n, dims, seed):
    """Encoders q(z|x_n) = N(mu_n, s_n^2) and one draw z_n from each (float64)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, dims))
    s = rng.uniform(0.3, 1.0, size=(n, dims))
    z = mu + s * rng.normal(size=(n, dims))
    # table[a, b, d] = log q(z_{a,d} | x_b)
    table = (
        -0.5 * ((z[:, None, :] - mu[None]) / s[None]) ** 2
        - np.log(s[None])
        - 0.5 * math.log(2 * math.pi)
    )
    log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    return table, log_prior


def _exact_terms(table, log_prior):
    """MI, TC, dimension KL of the empirical aggregate posterior (all N examples)."""
    n = table.shape[0]
    log_qz = np.log(np.mean(np.exp(table.sum(-1)), axis=1))
    log_qz_dims = np.log(np.mean(np.exp(table), axis=1))
    log_qzx = np.einsum("iid->i", table)
    mi = np.mean(log_qzx - log_qz)
    tc = np.mean(log_qz - log_qz_dims.sum(-1))
    dim_kl = np.mean((log_qz_dims - log_prior).sum(-1))
    assert table.shape[1] == n
    return mi, tc, dim_kl


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_terms_sum_to_the_kl_term(estimator):
    table, log_prior = _gaussian_dataset(6, 3, seed=0)
    terms = D.elbo_decomposition(
        table.astype(np.float32), log_prior.astype(np.float32), dataset_size=50, estimator=estimator
    )
    expected = np.mean(np.einsum("iid->i", table) - log_prior.sum(-1))
    np.testing.assert_allclose(float(sum(terms)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_mi_and_tc_vanish_when_q_ignores_x(estimator):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 3)).astype(np.float32)
    lqp = np.broadcast_to(a[:, None, :], (5, 5, 3))  # q(z_i | x_j) the same for every j
    terms = D.elbo_decomposition(lqp, -np.ones((5, 3)), dataset_size=20, estimator=estimator)
    assert abs(float(terms.index_code_mi)) < 1e-5
    assert abs(float(terms.total_correlation)) < 1e-5
    np.testing.assert_allclose(float(terms.dimension_kl), np.mean(a.sum(-1) + 3.0), rtol=1e-5)


def test_mws_is_exact_with_the_whole_dataset_in_the_batch():
    table, log_prior = _gaussian_dataset(7, 3, seed=2)
    terms = D.elbo_decomposition(
        table.astype(np.float32), log_prior.astype(np.float32), dataset_size=7, estimator="mws"
    )
    np.testing.assert_allclose(np.array(terms), _exact_terms(table, log_prior), atol=2e-5)


def test_mss_and_mws_agree_and_are_exact_for_two_examples():
    table, log_prior = _gaussian_dataset(2, 2, seed=3)
    for estimator in ("mss", "mws"):
        terms = D.elbo_decomposition(table, log_prior, dataset_size=2, estimator=estimator)
        np.testing.assert_allclose(np.array(terms), _exact_terms(table, log_prior), atol=2e-5)


def test_mss_is_unbiased_for_the_aggregate_posterior_by_enumerating_batches():
    # E over uniformly drawn ordered batches of sum_j w_ij q(z_i | x_j) = q(z_i), exactly.
    n, m = 5, 3
    table, _ = _gaussian_dataset(n, 2, seed=4)
    exact = np.mean(np.exp(table.sum(-1)), axis=1)  # q(z_a) for each dataset point a
    exact_dims = np.mean(np.exp(table), axis=1)
    sums = np.zeros(n)
    sums_dims = np.zeros((n, 2))
    counts = np.zeros(n)
    with jax.enable_x64(True):
        estimate = jax.jit(
            lambda lqp: D.aggregate_log_density(lqp, dataset_size=n, estimator="mss")
        )
        for batch in itertools.permutations(range(n), m):
            idx = np.array(batch)
            log_qz, log_qz_dims = estimate(jnp.asarray(table[np.ix_(idx, idx)]))
            for i, a in enumerate(idx):
                sums[a] += math.exp(float(log_qz[i]))
                sums_dims[a] += np.exp(np.asarray(log_qz_dims[i]))
                counts[a] += 1
    np.testing.assert_allclose(sums / counts, exact, rtol=1e-12)
    np.testing.assert_allclose(sums_dims / counts[:, None], exact_dims, rtol=1e-12)
    # MWS is biased for q(z) at the same batch size: the check above can fail.
    w = np.exp(D.estimator_log_weights(m, dataset_size=n, estimator="mws").astype(np.float64))
    assert not np.allclose(w[0, 0], 1.0 / n)


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_weights_rows_sum_to_one(estimator):
    for m, n in [(2, 2), (3, 10), (8, 8), (16, 1000)]:
        w = np.exp(D.estimator_log_weights(m, dataset_size=n, estimator=estimator).astype(float))
        np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)


def test_beta_tcvae_loss_is_the_negative_elbo_at_unit_weights_and_linear_in_beta():
    table, log_prior = _gaussian_dataset(6, 3, seed=5)
    table, log_prior = table.astype(np.float32), log_prior.astype(np.float32)
    ll = np.linspace(-3.0, -1.0, 6).astype(np.float32)
    kwargs = dict(dataset_size=40)
    loss = D.beta_tcvae_loss(ll, table, log_prior, **kwargs)
    neg_elbo = -(ll + log_prior.sum(-1) - np.einsum("iid->i", table))
    np.testing.assert_allclose(loss, neg_elbo, rtol=1e-5, atol=1e-5)
    terms = D.elbo_decomposition(table, log_prior, **kwargs)
    for name, value in [("alpha", terms.index_code_mi), ("beta", terms.total_correlation),
                        ("gamma", terms.dimension_kl)]:  # fmt: skip
        shifted = D.beta_tcvae_loss(ll, table, log_prior, **kwargs, **{name: 6.0})
        np.testing.assert_allclose(np.mean(shifted - loss), 5.0 * float(value), rtol=1e-4)


def test_density_gap_means_are_decomposition_terms_and_exact_at_full_batch():
    table, log_prior = _gaussian_dataset(7, 3, seed=6)
    t32, p32 = table.astype(np.float32), log_prior.astype(np.float32)
    terms = D.elbo_decomposition(t32, p32, dataset_size=30)
    joint = D.density_gap(t32, p32, dataset_size=30)
    dims = D.density_gap(t32, p32, dataset_size=30, per_dimension=True)
    np.testing.assert_allclose(
        float(jnp.mean(joint)), float(terms.total_correlation + terms.dimension_kl), rtol=1e-5
    )
    np.testing.assert_allclose(float(jnp.mean(dims)), float(terms.dimension_kl), rtol=1e-5)
    exact = np.log(np.mean(np.exp(table.sum(-1)), axis=1)) - log_prior.sum(-1)
    full = D.density_gap(t32, p32, dataset_size=7, estimator="mws")
    np.testing.assert_allclose(full, exact, atol=2e-5)


def test_jit_and_grad():
    table, log_prior = _gaussian_dataset(4, 2, seed=7)
    f = jax.jit(lambda t: sum(D.elbo_decomposition(t, log_prior, dataset_size=10)))
    g = jax.grad(f)(jnp.asarray(table, jnp.float32))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(f(table), float(sum(D.elbo_decomposition(table, log_prior,
                                                                          dataset_size=10))),
                               rtol=1e-6)  # fmt: skip


# --- MIG -------------------------------------------------------------------------------


def _grid(*sizes):
    return np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=np.int32)


def test_mig_is_one_when_each_factor_has_its_own_dimension():
    factors = _grid(3, 4)
    codes = np.stack(
        [2.0 * factors[:, 1] + 0.1, np.zeros(len(factors)), -factors[:, 0] * 0.5], axis=1
    )
    np.testing.assert_allclose(float(D.mig(factors, codes, num_bins=12)), 1.0, atol=1e-6)


def test_mig_is_zero_for_codes_independent_of_the_factors():
    grid = _grid(2, 3, 4)  # a full factorial design: the code's variable u is independent
    factors, u = grid[:, :2], grid[:, 2]
    codes = np.stack([u * 1.0, u**2 * 1.0, np.sin(u)], axis=1)
    assert abs(float(D.mig(factors, codes, num_bins=8))) < 1e-6


def test_mig_hand_case():
    factors = np.array([[0], [0], [1], [1]])
    codes = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    info_second = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    expected = (math.log(2) - info_second) / math.log(2)
    np.testing.assert_allclose(float(D.mig(factors, codes, num_bins=2)), expected, rtol=1e-5)
    jitted = jax.jit(lambda f, c: D.mig(f, c, num_bins=2, num_values=2))
    np.testing.assert_allclose(float(jitted(factors, codes)), expected, rtol=1e-5)


# --- bad input -------------------------------------------------------------------------


def test_bad_input_names_the_argument():
    lqp, lp = np.zeros((3, 3, 2)), np.zeros((3, 2))
    with pytest.raises(ValueError, match="log_q_pairwise"):
        D.elbo_decomposition(np.zeros((3, 2, 2)), lp, dataset_size=5)
    with pytest.raises(ValueError, match="log_prior"):
        D.elbo_decomposition(lqp, np.zeros((3, 3)), dataset_size=5)
    with pytest.raises(ValueError, match="dataset_size"):
        D.elbo_decomposition(lqp, lp, dataset_size=2)
    with pytest.raises(ValueError, match="estimator"):
        D.elbo_decomposition(lqp, lp, dataset_size=5, estimator="mcmc")
    with pytest.raises(ValueError, match="log_q_pairwise"):
        D.density_gap(np.full((3, 3, 2), np.nan), lp, dataset_size=5)
    with pytest.raises(ValueError, match="log_likelihood"):
        D.beta_tcvae_loss(np.zeros(2), lqp, lp, dataset_size=5)
    with pytest.raises(ValueError, match="estimator"):
        D.estimator_log_weights(1, dataset_size=5, estimator="mss")
    factors, codes = np.array([[0], [1]]), np.zeros((2, 2))
    with pytest.raises(TypeError, match="factors"):
        D.mig(factors * 1.0, codes)
    with pytest.raises(ValueError, match="codes"):
        D.mig(factors, np.zeros((2, 1)))
    with pytest.raises(ValueError, match="constant"):
        D.mig(np.zeros((2, 1), np.int32), codes)
    with pytest.raises(ValueError, match="factors"):
        D.mig(factors - 1, codes, num_values=2)
    with pytest.raises(TypeError, match="num_values"):
        jax.jit(lambda f: D.mig(f, codes))(factors)
