"""Exact checks of vb.multimodal on a linear-Gaussian multimodal model.

Model: ``z ~ N(0, I_D)``, ``x_e | z ~ N(z, s_e^2 I)``. As a function of ``z`` the likelihood
of ``x_e`` is the Gaussian expert ``N(x_e, s_e^2)``, so the product of these experts with
the prior is the exact posterior ``p(z | x_S)``: every log-weight then equals
``log p(x_S)`` and the PoE ELBO equals it on any draw.
"""

import itertools
import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

MM = vb.multimodal
X = np.array([[0.8, -0.3], [1.5, 0.2], [-0.4, 0.9]])  # E = 3 modalities, D = 2
S = np.array([0.7, 1.2, 0.5])  # likelihood scales


def _log_likelihood(x, s):
    x, s = jnp.asarray(x, jnp.float32), jnp.asarray(s, jnp.float32)

    def log_likelihood(z):  # [K, D] -> [K, E]
        r = (x[None] - z[:, None, :]) / s[None, :, None]
        return jnp.sum(-0.5 * r**2 - jnp.log(s)[None, :, None] - 0.5 * math.log(2 * math.pi), -1)

    return log_likelihood


def _log_evidence(x, s):
    """log p(x_S) in float64: per dimension, N(x_.d; 0, diag(s^2) + 1 1^T)."""
    cov = np.diag(s**2) + 1.0
    _, logdet = np.linalg.slogdet(cov)
    quad = np.einsum("ed,ef,fd->", x, np.linalg.inv(cov), x)
    return -0.5 * (quad + x.shape[1] * (logdet + len(s) * math.log(2 * math.pi)))


def _exact_experts(x, s):
    return jnp.asarray(x, jnp.float32), jnp.asarray(
        np.broadcast_to(2 * np.log(s)[:, None], x.shape), jnp.float32
    )


def _posterior(x, s):
    prec = 1.0 + np.sum(1 / s**2)
    mean = np.sum(x / s[:, None] ** 2, axis=0) / prec
    return mean, np.full_like(mean, -math.log(prec))


# --- product of experts ------------------------------------------------------------------


def test_product_of_experts_matches_the_closed_form_product():
    rng = np.random.default_rng(0)
    mu, lv = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 5, 3))
    mask = rng.uniform(size=(4, 5)) < 0.6
    prior_mean, prior_lv = 0.3, -0.2
    prec = np.exp(-lv) * mask[..., None]
    total = prec.sum(0) + math.exp(-prior_lv)
    expected_mean = ((prec * mu).sum(0) + math.exp(-prior_lv) * prior_mean) / total
    q = MM.product_of_experts(mu, lv, mask=mask, prior_mean=prior_mean, prior_log_var=prior_lv)
    np.testing.assert_allclose(q.mean, expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.log_var, -np.log(total), rtol=1e-5, atol=1e-6)
    q = MM.product_of_experts(mu, lv, with_prior=False)
    total = np.exp(-lv).sum(0)
    np.testing.assert_allclose(q.mean, (np.exp(-lv) * mu).sum(0) / total, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.log_var, -np.log(total), rtol=1e-5)


def test_product_of_experts_is_stable_for_extreme_precisions():
    mu = jnp.array([[1.0], [-3.0]])
    lv = jnp.array([[-40.0], [40.0]])  # precisions e^40 and e^-40: float32 overflow as such
    q = MM.product_of_experts(mu, lv)
    np.testing.assert_allclose(q.mean, [1.0], rtol=1e-6)
    np.testing.assert_allclose(q.log_var, [-40.0], rtol=1e-6)
    grads = jax.grad(lambda m: jnp.sum(MM.product_of_experts(m, lv).mean))(mu)
    assert np.all(np.isfinite(grads))


def test_all_missing_gives_the_prior():
    q = MM.product_of_experts(jnp.ones((2, 3)), jnp.zeros((2, 3)), mask=jnp.array([False, False]))
    np.testing.assert_allclose(q.mean, 0.0)
    np.testing.assert_allclose(q.log_var, 0.0)


# --- ELBOs -------------------------------------------------------------------------------


@pytest.mark.parametrize("bound", ["elbo", "iwae"])
def test_poe_elbo_equals_the_evidence_with_exact_experts(bound):
    ll = _log_likelihood(X, S)
    mu, lv = _exact_experts(X, S)
    key = jax.random.key(0)
    value = MM.poe_elbo(key, ll, mu, lv, num_samples=5, bound=bound)
    np.testing.assert_allclose(value, _log_evidence(X, S), rtol=1e-5)
    masked = jax.jit(lambda m: MM.poe_elbo(key, ll, mu, lv, mask=m, num_samples=3, bound=bound))
    for subset in itertools.product([False, True], repeat=3):
        mask = np.array(subset)
        value = masked(jnp.asarray(mask))
        expected = _log_evidence(X[mask], S[mask]) if mask.any() else 0.0
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-5)


def test_mvae_elbo_sums_the_subset_evidences():
    ll = _log_likelihood(X, S)
    mu, lv = _exact_experts(X, S)
    evidence = {
        sub: _log_evidence(X[np.array(sub)], S[np.array(sub)])
        for sub in itertools.product([False, True], repeat=3)
        if any(sub)
    }
    fixed = evidence[(True, True, True)] + sum(
        evidence[tuple(np.eye(3, dtype=bool)[e])] for e in range(3)
    )
    np.testing.assert_allclose(MM.mvae_elbo(jax.random.key(1), ll, mu, lv), fixed, rtol=1e-5)
    with_one = jax.jit(lambda k: MM.mvae_elbo(k, ll, mu, lv, num_subsets=1))
    for seed in range(3):  # one random subset: the extra term is one of the subset evidences
        extra = float(with_one(jax.random.key(seed))) - fixed
        assert min(abs(extra - v) for v in evidence.values()) < 1e-4
    one = MM.mvae_elbo(jax.random.key(2), _log_likelihood(X[:1], S[:1]), mu[:1], lv[:1])
    np.testing.assert_allclose(one, _log_evidence(X[:1], S[:1]), rtol=1e-5)


@pytest.mark.parametrize(("bound", "dreg"), [("elbo", False), ("iwae", True)])
def test_moe_elbo_equals_the_evidence_when_every_expert_is_the_posterior(bound, dreg):
    ll = _log_likelihood(X, S)
    post_mean, post_lv = _posterior(X, S)
    mu = jnp.asarray(np.tile(post_mean, (3, 1)), jnp.float32)
    lv = jnp.asarray(np.tile(post_lv, (3, 1)), jnp.float32)

    def f(mu, lv, mask):
        return MM.moe_elbo(
            jax.random.key(3), ll, mu, lv, mask=mask, num_samples=4, bound=bound, dreg=dreg
        )

    value_and_grad = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    value, grads = value_and_grad(mu, lv, jnp.ones(3, bool))
    np.testing.assert_allclose(value, _log_evidence(X, S), rtol=1e-5)
    if dreg:  # the doubly-reparameterised gradient vanishes at the exact posterior
        np.testing.assert_allclose(np.concatenate([g.ravel() for g in grads]), 0.0, atol=1e-5)
    mask = jnp.array([False, True, False])  # only x_2 observed, its expert its posterior
    m2, l2 = _posterior(X[1:2], S[1:2])
    value, _ = value_and_grad(mu.at[1].set(m2), lv.at[1].set(l2), mask)
    np.testing.assert_allclose(value, _log_evidence(X[1:2], S[1:2]), rtol=1e-5)


@pytest.mark.parametrize("bound", ["elbo", "iwae"])
def test_moe_with_one_modality_is_the_unimodal_bound_and_dreg_gradient(bound):
    ll = _log_likelihood(X[:1], S[:1])
    mu, lv = jnp.array([[0.2, -0.1]]), jnp.array([[-0.5, 0.3]])
    key = jax.random.key(5)

    def log_joint(z):
        return ll(z)[:, 0] + jnp.sum(-0.5 * z**2 - 0.5 * math.log(2 * math.pi), -1)

    def make_q(params):
        return distrax.MultivariateNormalDiag(params[0][0], jnp.exp(0.5 * params[1][0]))

    for estimator, dreg in [("reparam", False), ("dreg", True)]:
        ours = jax.jit(
            jax.value_and_grad(
                lambda p, dreg=dreg: MM.moe_elbo(key, ll, *p, num_samples=6, bound=bound, dreg=dreg)
            )
        )
        reference = jax.jit(
            jax.value_and_grad(
                lambda p, estimator=estimator: (
                    vb.estimate(
                        key, log_joint, make_q, p, num_samples=6, bound=bound, estimator=estimator
                    ).surrogate
                )
            )
        )
        (v_ours, g_ours), (v_ref, g_ref) = ours((mu, lv)), reference((mu, lv))
        np.testing.assert_allclose(v_ours, v_ref, rtol=1e-5)
        for a, b in zip(g_ours, g_ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_mopoe_with_one_modality_is_the_poe_elbo_and_exact_with_exact_experts():
    ll = _log_likelihood(X[:1], S[:1])
    mu, lv = _exact_experts(X[:1], S[:1])
    value = MM.mopoe_elbo(jax.random.key(6), ll, mu, lv, num_samples=3)
    np.testing.assert_allclose(value, _log_evidence(X[:1], S[:1]), rtol=1e-5)
    mu, lv = jnp.array([[0.2, -0.1]]), jnp.array([[-0.5, 0.3]])
    key = jax.random.key(7)
    np.testing.assert_allclose(
        MM.mopoe_elbo(key, ll, mu, lv, num_samples=3),
        MM.poe_elbo(key, ll, mu, lv, num_samples=3),
        rtol=1e-6,
    )


def test_mopoe_averages_subset_elbos_of_the_observed_modalities():
    # Exact experts: the term of subset A is log p(x_A) + E_{p(z|x_A)} log p(x_B | z), B the
    # other observed modalities, in closed form for a Gaussian posterior and likelihood.
    ll = _log_likelihood(X, S)
    mu, lv = _exact_experts(X, S)
    observed = np.array([True, False, True])
    terms = []
    for sub in ([True, False, False], [False, False, True], [True, False, True]):
        a = np.array(sub)
        m, lvar = _posterior(X[a], S[a])
        extra = sum(
            np.sum(-0.5 * ((X[e] - m) ** 2 + np.exp(lvar)) / S[e] ** 2)
            - X.shape[1] * (math.log(S[e]) + 0.5 * math.log(2 * math.pi))
            for e in np.flatnonzero(observed & ~a)
        )
        terms.append(_log_evidence(X[a], S[a]) + extra)
    keys = jax.random.split(jax.random.key(8), 4000)
    draws = jax.jit(jax.vmap(lambda k: MM.mopoe_elbo(k, ll, mu, lv, mask=jnp.asarray(observed))))(
        keys
    )
    draws = np.asarray(draws, np.float64)
    stderr = draws.std(ddof=1) / math.sqrt(len(draws))
    assert abs(draws.mean() - np.mean(terms)) < 4.5 * stderr


def test_gradients_are_finite_under_jit_and_vmap():
    ll = _log_likelihood(X, S)
    mu, lv = jnp.zeros((3, 2)), jnp.zeros((3, 2))
    for fn in (MM.mopoe_elbo, MM.moe_elbo):  # mopoe_elbo runs the PoE path of poe_elbo
        f = jax.jit(lambda m, v, fn=fn: fn(jax.random.key(0), ll, m, v, num_samples=2))
        grads = jax.grad(f, argnums=(0, 1))(mu, lv)
        assert all(np.all(np.isfinite(g)) for g in grads)
    batched = jax.vmap(lambda k: MM.poe_elbo(k, ll, mu, lv))(jax.random.split(jax.random.key(1), 3))
    assert batched.shape == (3,)


# --- sub-sampling gap ----------------------------------------------------------------------


def _conditional_entropy(p, subset):
    """H(X_notA | X_A) by direct enumeration of -sum p(x) log p(x_notA | x_A)."""
    out = tuple(np.flatnonzero(~subset))
    p_a = p.sum(axis=out, keepdims=True) if out else p
    ratio = np.divide(p, p_a, out=np.ones_like(p), where=p > 0)
    return -np.sum(np.where(p > 0, p * np.log(ratio), 0.0))


def test_subsampling_gap_matches_enumerated_conditional_entropies():
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(24)).reshape(3, 4, 2)
    p[0, 0, 0] = 0.0  # an impossible outcome
    p /= p.sum()
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    subsets = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]], bool)
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    expected = sum(w * _conditional_entropy(p, a) for w, a in zip(weights, subsets))
    value = MM.subsampling_gap(log_p.astype(np.float32), subsets, weights=weights)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    uniform = np.mean([_conditional_entropy(p, a) for a in subsets])
    np.testing.assert_allclose(MM.subsampling_gap(log_p, subsets), uniform, rtol=1e-5)


def test_subsampling_gap_limits():
    # A copy: each modality determines the other, nothing is modality-specific.
    copy = np.log(np.where(np.eye(3) > 0, 1 / 3, 1e-30))
    single = np.array([[True, False], [False, True]])
    assert abs(float(MM.subsampling_gap(copy, single))) < 1e-5
    # Independent modalities: the gap of {1} is H(X_2); the full set has no gap.
    p2 = np.array([0.2, 0.3, 0.5])
    joint = np.log(np.outer([0.5, 0.5], p2))
    h2 = -np.sum(p2 * np.log(p2))
    np.testing.assert_allclose(MM.subsampling_gap(joint, single[:1]), h2, rtol=1e-5)
    assert abs(float(MM.subsampling_gap(joint, np.array([[True, True]])))) < 1e-6


# --- bad input -----------------------------------------------------------------------------


def test_bad_input_names_the_argument():
    ll = _log_likelihood(X, S)
    mu, lv = jnp.zeros((3, 2)), jnp.zeros((3, 2))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="log_vars"):
        MM.product_of_experts(mu, jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="means"):
        MM.product_of_experts(jnp.zeros(3), jnp.zeros(3))
    with pytest.raises(TypeError, match="mask"):
        MM.product_of_experts(mu, lv, mask=jnp.ones(3))
    with pytest.raises(ValueError, match="mask"):
        MM.product_of_experts(mu, lv, mask=jnp.zeros(3, bool), with_prior=False)
    with pytest.raises(ValueError, match="bound"):
        MM.poe_elbo(key, ll, mu, lv, bound="renyi")
    with pytest.raises(ValueError, match="log_likelihood"):
        MM.poe_elbo(key, lambda z: z, mu, lv)
    with pytest.raises(ValueError, match="num_samples"):
        MM.moe_elbo(key, ll, mu, lv, num_samples=0)
    with pytest.raises(ValueError, match="mask"):
        MM.moe_elbo(key, ll, mu, lv, mask=jnp.zeros(3, bool))
    with pytest.raises(ValueError, match="num_subsets"):
        MM.mvae_elbo(key, ll, mu, lv, num_subsets=-1)
    with pytest.raises(ValueError, match="log_joint"):
        MM.subsampling_gap(np.zeros((2, 2)), np.array([[True, False]]))
    uniform = np.log(np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match="subsets"):
        MM.subsampling_gap(uniform, np.array([[True, False, True]]))
    with pytest.raises(ValueError, match="subsets"):
        MM.subsampling_gap(uniform, np.array([[False, False]]))
    with pytest.raises(ValueError, match="weights"):
        MM.subsampling_gap(uniform, np.array([[True, False]]), weights=np.array([0.5]))
