"""Log-weight bounds against exact answers: closed forms, identities and limits."""

import math

import distrax
import jax
import jax.numpy as jnp
import lg_model as lg
import numpy as np
import pytest

import vbounds as vb

THETA = jnp.array([0.3, -1.0, 0.5])
X = jnp.array([1.2, 0.4, -0.7])


def _log_w(params, key, k):
    q = lg.make_q(params)
    z = q.sample(seed=key, sample_shape=(k,))
    return lg.log_joint_fn(THETA, X)(z) - q.log_prob(z)


def test_every_bound_is_tight_at_the_exact_posterior():
    log_w = _log_w(lg.posterior_params(THETA, X), jax.random.key(0), 64)
    exact = lg.exact_log_px(THETA, X)
    for value in (
        vb.elbo(log_w),
        vb.iwae(log_w),
        vb.renyi(log_w, 0.5),
        vb.renyi(log_w, -3.0),
        vb.vr_max(log_w),
    ):
        np.testing.assert_allclose(value, exact, atol=2e-5)


def test_monte_carlo_elbo_matches_the_analytic_elbo():
    params = lg.q_params([0.5, 0.0, -0.5], 0.8)
    log_w = _log_w(params, jax.random.key(1), 100_000)
    se = float(jnp.std(log_w)) / math.sqrt(log_w.shape[0])
    assert abs(float(vb.elbo(log_w)) - float(lg.analytic_elbo(THETA, X, params))) < 4.5 * se
    # and the ELBO's gap is the KL to the posterior: strictly below log p(x)
    assert float(lg.analytic_elbo(THETA, X, params)) < float(lg.exact_log_px(THETA, X))


def test_iwae_increases_with_k_towards_log_px():
    params = lg.q_params([1.0, 0.5, -1.5], 0.5)
    exact = float(lg.exact_log_px(THETA, X))
    reps = 1000
    means, ses = [], []
    for i, k in enumerate((1, 5, 50, 500)):
        keys = jax.random.split(jax.random.key(10 + i), reps)
        vals = jax.jit(jax.vmap(lambda kk, k=k: vb.iwae(_log_w(params, kk, k))))(keys)
        means.append(float(jnp.mean(vals)))
        ses.append(float(jnp.std(vals)) / math.sqrt(reps))
    for a in range(3):
        gap_se = math.hypot(ses[a], ses[a + 1])
        assert means[a + 1] - means[a] > 4.5 * gap_se, (means, ses)
    for m, se in zip(means, ses):
        assert m < exact + 4.5 * se
    # the K=1 value is the ELBO in expectation
    assert abs(means[0] - float(lg.analytic_elbo(THETA, X, params))) < 4.5 * ses[0]


def test_renyi_order_and_limits():
    log_w = jax.random.normal(jax.random.key(2), (40, 3)) * 3.0
    alphas = [-math.inf, -5.0, -1.0, 0.0, 0.3, 0.99, 1.0, 2.0, 7.0]
    values = np.stack([np.asarray(vb.renyi(log_w, a)) for a in alphas])
    assert np.all(np.diff(values, axis=0) <= 1e-5)
    np.testing.assert_allclose(vb.renyi(log_w, 0.0), vb.iwae(log_w), rtol=1e-6)
    np.testing.assert_allclose(vb.renyi(log_w, 1.0), vb.elbo(log_w), rtol=1e-6)
    np.testing.assert_allclose(vb.renyi(log_w, -math.inf), vb.vr_max(log_w), rtol=1e-6)
    np.testing.assert_allclose(vb.renyi(log_w, 1.0 - 1e-7), vb.elbo(log_w), atol=1e-5)
    np.testing.assert_allclose(vb.renyi(log_w, -200.0), vb.vr_max(log_w), atol=5e-2)
    # direct float64 formula
    lw = np.asarray(log_w, np.float64)
    direct = np.log(np.mean(np.exp(0.5 * lw), axis=0)) / 0.5
    np.testing.assert_allclose(vb.renyi(log_w, 0.5), direct, rtol=1e-5)


def test_renyi_with_traced_alpha_matches_concrete():
    log_w = jax.random.normal(jax.random.key(3), (10,))
    f = jax.jit(lambda a: vb.renyi(log_w, a))
    for a in (0.0, 0.5, 1.0, -2.0):
        np.testing.assert_allclose(f(a), vb.renyi(log_w, a), rtol=1e-6)
    assert np.isfinite(jax.grad(lambda a: vb.renyi(log_w, a))(1.0))


def _power_mean_f64(values, one_minus_alpha, weights=None):
    """float64 ``(1/c) log sum_k s_k exp(c v_k)``, centred at the mean (exact to ~1e-9 here)."""
    v = np.asarray(values, np.float64)
    s = np.full(v.shape, 1.0 / v.size) if weights is None else np.asarray(weights, np.float64)
    centre = np.sum(s * v)
    if one_minus_alpha == 0.0:
        return centre
    y = one_minus_alpha * (v - centre)
    top = y.max()
    return centre + (top + np.log(np.sum(s * np.exp(y - top)))) / one_minus_alpha


NEAR_ONE = [1.0 - 1e-2, 1.0 - 1e-4, 1.0 - 1e-7, 1.0 + 1e-7, 1.0 + 1e-4, 1.0 + 1e-2]


def test_renyi_near_alpha_one_matches_float64():
    # Reported: at alpha = 1 + 1e-7 the float32 value was -100.136 where the exact one is
    # -99.8187 (the log-sum-exp's rounding error divided by 1 - alpha).
    log_w = (-100.0 + math.sqrt(5.0) * jax.random.normal(jax.random.key(20), (100,))).astype(
        jnp.float32
    )
    lw = np.asarray(log_w, np.float64)
    mean, var = lw.mean(), lw.var()
    third = np.mean((lw - mean) ** 3)
    for alpha in [*NEAR_ONE, 0.5, 0.0, -1.0]:
        c = 1.0 - alpha
        expected = _power_mean_f64(lw, c)
        if abs(c) < 1e-3:  # the reference agrees with the cumulant series
            series = mean + c * var / 2 + c**2 * third / 6
            assert abs(expected - series) < 1e-8
        # 2e-5 is 3 float32 ulps at 100
        np.testing.assert_allclose(vb.renyi(log_w, alpha), expected, rtol=0, atol=2e-5)
    # continuous at alpha = 1 and non-increasing in alpha through it
    values = [float(vb.renyi(log_w, a)) for a in (*NEAR_ONE[:3], 1.0, *NEAR_ONE[3:])]
    assert np.all(np.diff(values) <= 1e-5), values
    for a in (1.0 - 1e-7, 1.0 + 1e-7):
        assert abs(float(vb.renyi(log_w, a)) - float(vb.elbo(log_w))) < 1e-5
    # the gradient near alpha = 1: self-normalised weights, almost uniform
    grad = jax.grad(lambda x: vb.renyi(x, 1.0 - 1e-7))(log_w)
    np.testing.assert_allclose(grad, np.full(100, 0.01), rtol=1e-4)


def test_renyi_with_traced_alpha_at_its_limits():
    # Reported: jit(renyi)(log_w, -inf) was NaN where the eager call gives vr_max.
    log_w = jax.random.normal(jax.random.key(21), (12, 2)) * 2.0
    f = jax.jit(vb.renyi)
    np.testing.assert_allclose(f(log_w, jnp.float32(-jnp.inf)), vb.vr_max(log_w), rtol=1e-6)
    np.testing.assert_allclose(f(log_w, jnp.float32(1.0)), vb.elbo(log_w), rtol=1e-6)
    np.testing.assert_allclose(f(log_w, jnp.float32(1.0 - 1e-7)), vb.elbo(log_w), atol=1e-6)
    # d L / d alpha at alpha = 1 is -var / 2 (first-order term), also for a traced alpha = 1
    var = np.var(np.asarray(log_w, np.float64), axis=0)
    for a in (1.0, 1.0 - 1e-4):
        slope = jax.jacobian(lambda al: vb.renyi(log_w, al))(jnp.float32(a))
        np.testing.assert_allclose(slope, -var / 2, rtol=1e-3)
    for a in (1.0, -jnp.inf):
        grad = jax.grad(lambda x, a=a: jnp.sum(vb.renyi(x, jnp.float32(a))))(log_w)
        assert np.all(np.isfinite(grad))
        np.testing.assert_allclose(grad.sum(0), [1.0, 1.0], rtol=1e-5)


def test_vod_near_alpha_one_matches_float64():
    key1, key2, key3 = jax.random.split(jax.random.key(22), 3)
    ll = -100.0 + 2.0 * jax.random.normal(key1, (16,))
    log_prior = jax.random.normal(key2, (16,))
    log_s = jax.random.normal(key3, (16,))
    s = np.exp(np.asarray(log_s, np.float64))
    s /= s.sum()
    # q = p: log v = ll - log sum_j s_j p(x | z_j) ... with zeta = 1, v_i = p(x | z_i)
    for alpha in [*NEAR_ONE, 1.0, 0.0]:
        expected = _power_mean_f64(np.asarray(ll, np.float64), 1.0 - alpha, s)
        value = vb.vod(ll, log_prior, log_prior, alpha=alpha, log_s=log_s)
        np.testing.assert_allclose(value, expected, rtol=0, atol=2e-5)
    with pytest.raises(ValueError, match="alpha"):
        vb.vod(ll, log_prior, log_prior, alpha=-math.inf)


def test_bounds_keep_batch_axes_and_honour_axis():
    log_w = jax.random.normal(jax.random.key(4), (2, 7, 5))
    for fn in (vb.elbo, vb.iwae, vb.vr_max, lambda lw, axis: vb.renyi(lw, 0.5, axis=axis)):
        assert fn(log_w, axis=1).shape == (2, 5)
        np.testing.assert_allclose(fn(log_w, axis=1), fn(jnp.moveaxis(log_w, 1, 0), axis=0))
        np.testing.assert_allclose(fn(log_w, axis=-2), fn(log_w, axis=1))


def test_vod_samples_last_by_default_the_others_first():
    # The API rule: vod follows the retrieval layout [B, K]; every other bound takes [K, ...].
    ll = jax.random.normal(jax.random.key(8), (3, 5))  # [B = 3 questions, K = 5 documents]
    zeros = jnp.zeros_like(ll)
    assert vb.vod(ll, zeros, zeros).shape == (3,)
    np.testing.assert_allclose(vb.vod(ll, zeros, zeros), vb.iwae(ll, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(vb.vod(ll.T, zeros.T, zeros.T, axis=0), vb.vod(ll, zeros, zeros))
    assert vb.iwae(ll).shape == vb.renyi(ll, 0.5).shape == (5,)


@pytest.mark.parametrize("alpha", [0.0, 0.5, -1.0])
def test_stable_in_float32_at_large_magnitude_and_k(alpha):
    k = 100_000
    base = jax.random.normal(jax.random.key(5), (k,)) * 30.0
    for shift in (1e4, -1e4):
        log_w = (base + shift).astype(jnp.float32)
        lw = np.asarray(log_w, np.float64)
        value = vb.renyi(log_w, alpha)
        s = (1 - alpha) * lw
        direct = (np.log(np.mean(np.exp(s - s.max()))) + s.max()) / (1 - alpha)
        np.testing.assert_allclose(value, direct, rtol=1e-6)
        for fn in (vb.elbo, vb.iwae, vb.vr_max, lambda x: vb.renyi(x, alpha)):
            grad = jax.grad(lambda x, fn=fn: fn(x))(log_w)
            assert np.all(np.isfinite(grad))
            np.testing.assert_allclose(np.sum(grad), 1.0, rtol=1e-4)


def test_vod_reduces_to_renyi_and_is_invariant_to_constants():
    key1, key2, key3, key4 = jax.random.split(jax.random.key(6), 4)
    ll = jax.random.normal(key1, (4, 8)) * 2
    log_prior = jax.random.normal(key2, (4, 8))
    log_q = jax.random.normal(key3, (4, 8))
    log_s = jax.random.normal(key4, (4, 8))
    for alpha in (0.0, 0.5, 1.0, -1.0):
        np.testing.assert_allclose(
            vb.vod(ll, log_prior, log_prior, alpha=alpha),
            vb.renyi(ll, alpha, axis=-1),
            rtol=1e-5,
            atol=1e-5,
        )
        base = vb.vod(ll, log_prior, log_q, alpha=alpha, log_s=log_s)
        shifted = vb.vod(ll, log_prior + 3.0, log_q - 7.0, alpha=alpha, log_s=log_s + 11.0)
        np.testing.assert_allclose(shifted, base, rtol=1e-5, atol=1e-5)
        # direct float64 formula
        zeta = np.exp(np.asarray(log_prior - log_q, np.float64))
        s = np.exp(np.asarray(log_s, np.float64))
        s /= s.sum(-1, keepdims=True)
        v = np.exp(np.asarray(ll, np.float64)) * zeta / (s * zeta).sum(-1, keepdims=True)
        if alpha == 1.0:
            direct = (s * np.log(v)).sum(-1)
        else:
            direct = np.log((s * v ** (1 - alpha)).sum(-1)) / (1 - alpha)
        np.testing.assert_allclose(base, direct, rtol=1e-5, atol=1e-5)
    # continuity at alpha = 1
    np.testing.assert_allclose(
        vb.vod(ll, log_prior, log_q, alpha=1.0 - 1e-7, log_s=log_s),
        vb.vod(ll, log_prior, log_q, alpha=1.0, log_s=log_s),
        atol=1e-5,
    )


def test_vod_is_a_bound_on_the_enumerated_marginal_likelihood():
    # A retrieval model over a corpus of 6 documents: log p(x) = logsumexp(log p(z) + ll).
    key = jax.random.key(7)
    ll = jax.random.normal(key, (6,)) * 2
    log_prior = jax.nn.log_softmax(jnp.arange(6.0) * 0.3)
    exact = jax.nn.logsumexp(log_prior + ll)
    # the full corpus with q = p and s = p: every document appears once with its mass
    value = vb.vod(ll, log_prior, log_prior, alpha=0.0, log_s=log_prior)
    np.testing.assert_allclose(value, exact, rtol=1e-6)


def test_weighted_elbo_forms():
    ll = jnp.array([-10.0, -20.0])
    kl = jnp.array([3.0, 1.0])
    np.testing.assert_allclose(vb.weighted_elbo(ll, kl), ll - kl)
    np.testing.assert_allclose(vb.weighted_elbo(ll, kl, beta=4.0), ll - 4 * kl)
    np.testing.assert_allclose(vb.weighted_elbo(ll, kl, likelihood_weight=2.0), 2 * ll - kl)
    np.testing.assert_allclose(
        vb.weighted_elbo(ll, kl, beta=2.0, capacity=2.0), ll - 2 * jnp.abs(kl - 2.0)
    )
    with pytest.raises(ValueError, match="beta"):
        vb.weighted_elbo(ll, kl, beta=-1.0)
    with pytest.raises(ValueError, match="capacity"):
        vb.weighted_elbo(ll, kl, capacity=-1.0)
    with pytest.raises(ValueError, match="kl"):
        vb.weighted_elbo(ll, jnp.ones(3))


def test_kl_divergence_closed_form_and_monte_carlo_fallback():
    q = distrax.Normal(0.0, 1.0)
    p = distrax.Normal(1.0, 2.0)
    exact = math.log(2.0) + (1.0 + 1.0) / 8.0 - 0.5
    np.testing.assert_allclose(vb.kl_divergence(q, p), exact, rtol=1e-6)
    # Normal vs Laplace has no closed form in distrax:
    # KL(N(0,1) || Laplace(0,b)) = -H(N) + log(2b) + E|z| / b, with E|z| = sqrt(2/pi).
    b = 1.5
    lap = distrax.Laplace(0.0, b)
    exact = -0.5 * math.log(2 * math.pi * math.e) + math.log(2 * b) + math.sqrt(2 / math.pi) / b
    n = 200_000
    est = vb.kl_divergence(q, lap, key=jax.random.key(8), num_samples=n)
    z = q.sample(seed=jax.random.key(8), sample_shape=(n,))
    se = float(jnp.std(q.log_prob(z) - lap.log_prob(z))) / math.sqrt(n)
    assert abs(float(est) - exact) < 4.5 * se
    with pytest.raises(ValueError, match="key"):
        vb.kl_divergence(q, lap)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="axis"):
        vb.iwae(jnp.zeros((3, 2)), axis=2)
    with pytest.raises(ValueError, match="log_w"):
        vb.elbo(jnp.float32(1.0))
    with pytest.raises(ValueError, match="NaN"):
        vb.iwae(jnp.array([0.0, jnp.nan]))
    with pytest.raises(ValueError, match=r"\+inf"):
        vb.renyi(jnp.array([0.0, jnp.inf]), 0.5)
    with pytest.raises(TypeError, match="log_w"):
        vb.elbo("not an array")
    with pytest.raises(ValueError, match="alpha"):
        vb.renyi(jnp.zeros(3), jnp.zeros(2))
    with pytest.raises(ValueError, match="log_q"):
        vb.vod(jnp.zeros(4), jnp.zeros(4), jnp.zeros(5))
    # -inf is a legitimate zero weight
    np.testing.assert_allclose(vb.iwae(jnp.array([0.0, -jnp.inf])), -math.log(2.0))


def test_empty_log_weights_are_named():
    # Reported: elbo gave NaN and iwae/renyi/vod raised "math domain error".
    message = r"`log_w` must have at least one sample along axis 0, got shape \(0,\)"
    for fn in (vb.elbo, vb.iwae, vb.vr_max, lambda lw: vb.renyi(lw, 0.5)):
        with pytest.raises(ValueError, match=message):
            fn(jnp.zeros((0,)))
    with pytest.raises(ValueError, match="`log_w` must have at least one sample along axis 1"):
        vb.iwae(jnp.zeros((3, 0)), axis=1)
    with pytest.raises(ValueError, match="`log_likelihood` must have at least one sample"):
        vb.vod(jnp.zeros((2, 0)), jnp.zeros((2, 0)), jnp.zeros((2, 0)))


def test_bounds_under_jit_and_vmap():
    log_w = jax.random.normal(jax.random.key(9), (6, 8))
    for fn in (vb.elbo, vb.iwae, vb.vr_max, lambda lw: vb.renyi(lw, 0.5)):
        jitted = jax.jit(fn)(log_w)
        mapped = jax.vmap(fn, in_axes=1)(log_w)
        np.testing.assert_allclose(jitted, fn(log_w), rtol=1e-6)
        np.testing.assert_allclose(mapped, fn(log_w), rtol=1e-6)
    args = (log_w.T, log_w.T * 0.1, log_w.T * 0.2)
    np.testing.assert_allclose(jax.jit(vb.vod)(*args), vb.vod(*args), rtol=1e-6)
    np.testing.assert_allclose(
        jax.vmap(lambda a, b, c: vb.vod(a, b, c))(*args), vb.vod(*args), rtol=1e-6
    )
    wl = jax.jit(lambda a, b: vb.weighted_elbo(a, b, beta=2.0))(log_w[0], log_w[1])
    np.testing.assert_allclose(wl, log_w[0] - 2 * log_w[1], rtol=1e-6)
    kl = jax.vmap(lambda m: vb.kl_divergence(distrax.Normal(m, 1.0), distrax.Normal(0.0, 1.0)))
    np.testing.assert_allclose(kl(jnp.arange(3.0)), 0.5 * jnp.arange(3.0) ** 2, rtol=1e-6)
