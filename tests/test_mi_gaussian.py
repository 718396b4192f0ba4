"""vb.mi against exact answers on Gaussians: the optimal critic on correlated Gaussians
(Poole et al. protocol), Barber-Agakov and CLUB with the true conditional, the KL rate,
conditional MI with a known value, and the classifier JS bound against quadrature.

Statistical checks compare sample means with standard errors computed from the samples
(4.5 standard errors, fixed seeds)."""

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from vbounds import mi

Z = 4.5


def mean_se(values):
    values = np.asarray(values, np.float64)
    return values.mean(), values.std(ddof=1) / math.sqrt(values.size)


def rho_for(mi_nats, dim):
    # I(x; y) = -(d/2) log(1 - rho^2) for y = rho x + sqrt(1 - rho^2) eps.
    return math.sqrt(1.0 - math.exp(-2.0 * mi_nats / dim))


def correlated(rng, rho, shape):
    x = rng.standard_normal(shape)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(shape)
    return x.astype(np.float32), y.astype(np.float32)


def log_ratio(x, y, rho):
    """``[.., i, j] = log p(y_j | x_i) - log p(y_j)``, the optimal critic."""
    d = x.shape[-1]
    diff = y[..., None, :, :] - rho * x[..., :, None, :]
    return (
        -0.5 * d * jnp.log1p(-(rho**2))
        - 0.5 * jnp.sum(diff**2, -1) / (1 - rho**2)
        + 0.5 * jnp.sum(y**2, -1)[..., None, :]
    )


@jax.jit
def optimal_critic_estimates(x, y, rho):
    def per_batch(s):
        return {
            "infonce": mi.infonce(s),
            "nwj": mi.nwj(s + 1.0),
            "nwj_unshifted": mi.nwj(s),
            "js_mi": mi.js_mi(s),
            "tuba": mi.tuba(s, 0.0),
            "dv": mi.dv(s),
            "smile": mi.smile(s, 5.0),
            "interpolated": mi.interpolated(s, 0.0, alpha=0.5),
            # Derivatives along a constant shift of the critic at the optimum.
            "d_js": jax.grad(lambda c: mi.js(s + c))(0.0),
            "d_nwj": jax.grad(lambda c: mi.nwj(s + c))(0.0),
        }

    return jax.vmap(per_batch)(log_ratio(x, y, rho))


@pytest.mark.parametrize("mi_nats", [2.0, 4.0])
def test_optimal_critic_on_correlated_gaussians(mi_nats):
    dim, batch, num_batches = 20, 64, 3000
    rho = rho_for(mi_nats, dim)
    x, y = correlated(np.random.default_rng(int(mi_nats)), rho, (num_batches, batch, dim))
    est = {k: np.asarray(v) for k, v in optimal_critic_estimates(x, y, rho).items()}

    def close(name, target):
        m, se = mean_se(est[name])
        assert abs(m - target) <= Z * se, (name, m, target, se)

    # NWJ (critic 1 + log r) and TUBA (critic log r, optimal baseline a(y) = 1) are
    # unbiased; JS-trained critics read via the shift are too, unshifted they read 1/e low.
    close("nwj", mi_nats)
    close("tuba", mi_nats)
    close("nwj_unshifted", mi_nats - math.exp(-1))
    np.testing.assert_allclose(est["js_mi"], est["nwj"], rtol=1e-6)
    # InfoNCE: below log N on every batch, and below the MI.
    assert est["infonce"].max() <= math.log(batch) + 1e-5
    m, se = mean_se(est["infonce"])
    assert m + Z * se < mi_nats
    # The interpolated bound lies between InfoNCE and the MI.
    m_alpha, se_alpha = mean_se(est["interpolated"])
    assert m + Z * se < m_alpha < mi_nats + Z * se_alpha
    # DV and SMILE with the exact log ratio sit at or above the MI.
    for name in ("dv", "smile"):
        m, se = mean_se(est[name])
        assert m >= mi_nats - Z * se, (name, m)
    # log r is the JS objective's stationary point, but not NWJ's (slope 1 - E[r]/e).
    close("d_js", 0.0)
    close("d_nwj", 1 - math.exp(-1))


def test_barber_agakov_exact_with_true_conditional():
    dim, n, rho = 5, 8192, 0.8
    x, y = correlated(np.random.default_rng(20), rho, (n, dim))
    true_mi = -0.5 * dim * math.log(1 - rho**2)
    entropy_x = 0.5 * dim * math.log(2 * math.pi * math.e)
    var = 1 - rho**2

    def per_sample_bound(scale):
        q = distrax.MultivariateNormalDiag(rho * y, jnp.full_like(y, scale))
        log_q = q.log_prob(x)
        return mi.barber_agakov(log_q, entropy_x), np.asarray(entropy_x + log_q)

    value, samples = per_sample_bound(math.sqrt(var))
    np.testing.assert_allclose(value, samples.mean(), rtol=1e-5)
    m, se = mean_se(samples)
    assert abs(m - true_mi) <= Z * se
    # A wrong scale loses exactly E KL(p(x|y) || q(x|y)).
    scale = 0.8
    ratio = var / scale**2
    gap = 0.5 * dim * (ratio - 1 - math.log(ratio))
    m, se = mean_se(per_sample_bound(scale)[1])
    assert abs(m - (true_mi - gap)) <= Z * se


def test_club_with_true_conditional_is_its_exact_upper_bound():
    dim, batch, num_batches, rho = 4, 32, 400, 0.6
    x, y = correlated(np.random.default_rng(21), rho, (num_batches, batch, dim))
    true_mi = -0.5 * dim * math.log(1 - rho**2)
    # E_{p(x)p(y)} log p(y|x) = -(d/2) log(2 pi (1 - rho^2)) - d (1 + rho^2) / (2 (1 - rho^2)),
    # so CLUB = d rho^2 / (1 - rho^2) > I(x; y).
    exact_club = dim * rho**2 / (1 - rho**2)
    assert exact_club > true_mi + 0.5

    @jax.jit
    def estimates(x, y):
        def one(x, y):
            q = distrax.MultivariateNormalDiag(
                rho * x[:, None, :], jnp.full((1, 1, dim), math.sqrt(1 - rho**2))
            )
            matrix = q.log_prob(y[None, :, :])  # [i, j] = log p(y_j | x_i)
            shifted = jnp.roll(jnp.arange(batch), 1)
            return mi.club(matrix), mi.club_sampled(
                jnp.diagonal(matrix), matrix[jnp.arange(batch), shifted]
            )

        return jax.vmap(one)(x, y)

    full, sampled = (np.asarray(a) for a in estimates(x, y))
    for values in (full, sampled):
        m, se = mean_se(values)
        assert abs(m - exact_club) <= Z * se, (m, exact_club, se)


def test_kl_rate_bounds_representational_mi():
    dim, n, a, s = 3, 4096, 1.5, 0.5
    x = np.random.default_rng(22).standard_normal((n, dim)).astype(np.float32)
    true_mi = 0.5 * dim * math.log(1 + a**2 / s**2)
    q = distrax.MultivariateNormalDiag(a * x, jnp.full_like(x, s))
    v = a**2 + s**2

    def kls(r_var):
        r = distrax.MultivariateNormalDiag(jnp.zeros(dim), jnp.full((dim,), math.sqrt(r_var)))
        return np.asarray(q.kl_divergence(r))

    # r = the aggregate posterior N(0, a^2 + s^2): the rate equals I(x; z).
    tight = kls(v)
    np.testing.assert_allclose(mi.kl_rate(tight), tight.mean(), rtol=1e-5)
    m, se = mean_se(tight)
    assert abs(m - true_mi) <= Z * se
    # r = N(0, I): above it by exactly KL(q(z) || r(z)).
    m, se = mean_se(kls(1.0))
    assert abs(m - (true_mi + 0.5 * dim * (v - 1 - math.log(v)))) <= Z * se


def test_conditional_infonce_on_known_conditional_mi():
    # c uniform on 4 values shifts both x and y by m_c; given c, (x, y) are correlated
    # Gaussians, so I(x; y | c) = -(d/2) log(1 - rho^2) while I(x; y) is larger.
    dim, groups, per_group, num_batches = 4, 4, 16, 300
    cmi = 1.0
    rho = rho_for(cmi, dim)
    rng = np.random.default_rng(23)
    u, v = correlated(rng, rho, (num_batches, groups * per_group, dim))
    c = np.tile(np.repeat(np.arange(groups), per_group), (num_batches, 1))
    for row in c:
        rng.shuffle(row)
    means = 3.0 * c[..., None].astype(np.float32)
    x, y = u + means, v + means

    @jax.jit
    def estimates(x, y, c, u, v):
        def one(x, y, c):
            # The conditional optimal critic log p(y | x, c_i) / p(y | c_i).
            m = 3.0 * c[:, None].astype(jnp.float32)
            s = log_ratio(x - m, y[None, :, :] - m[:, None, :], rho)
            s = jnp.take_along_axis(s, jnp.arange(len(c))[:, None, None], axis=1)[:, 0]
            return mi.conditional_infonce(s, c), mi.infonce(s)

        def plain(u, v):  # InfoNCE on the conditional Gaussians, batch = group size.
            return mi.infonce(log_ratio(u[:per_group], v[:per_group], rho))

        cond, unconditional = jax.vmap(one)(x, y, c)
        return cond, unconditional, jax.vmap(plain)(u, v)

    cond, unconditional, plain = (np.asarray(a) for a in estimates(x, y, c, u, v))
    m, se = mean_se(cond)
    m_plain, se_plain = mean_se(plain)
    assert m + Z * se < cmi
    assert np.all(cond <= math.log(per_group) + 1e-5)
    # Negatives within the condition: the same law as InfoNCE with per_group pairs.
    assert abs(m - m_plain) <= Z * math.hypot(se, se_plain)
    # Negatives across conditions would be easy to reject and inflate the estimate.
    assert mean_se(unconditional)[0] > cmi


def test_classifier_js_bound_is_the_js_divergence_with_the_bayes_classifier():
    mu, n = 1.5, 20000
    p, q = stats.norm(0.0, 1.0), stats.norm(mu, 1.0)

    def js_integrand(t):
        m = 0.5 * (p.pdf(t) + q.pdf(t))
        return 0.5 * p.pdf(t) * math.log(p.pdf(t) / m) + 0.5 * q.pdf(t) * math.log(q.pdf(t) / m)

    true_js = integrate.quad(js_integrand, -12, 12 + mu, limit=200)[0]
    rng = np.random.default_rng(24)
    real, generated = rng.normal(0.0, 1.0, n), rng.normal(mu, 1.0, n)

    def log_d(t):  # Bayes-optimal log P(real | t) with equal priors
        return p.logpdf(t) - np.logaddexp(p.logpdf(t), q.logpdf(t))

    def log_1md(t):
        return q.logpdf(t) - np.logaddexp(p.logpdf(t), q.logpdf(t))

    lr, lg = log_d(real), log_1md(generated)
    nats = float(mi.classifier_js_divergence(lr, lg))
    se = 0.5 * math.hypot(lr.std() / math.sqrt(n), lg.std() / math.sqrt(n))
    assert abs(nats - true_js) <= Z * se, (nats, true_js, se)
    bits = float(mi.classifier_js_divergence(lr, lg, unit="bits"))
    np.testing.assert_allclose(bits, nats / math.log(2), rtol=1e-5)
    np.testing.assert_allclose(mi.classifier_js_distance(lr, lg), math.sqrt(bits), rtol=1e-5)
    # A miscalibrated classifier (logits scaled by 0.5) reads lower.
    logits = lambda t: np.asarray(log_d(t) - log_1md(t)) * 0.5  # noqa: E731
    worse = float(
        mi.classifier_js_divergence(
            jax.nn.log_sigmoid(logits(real)), jax.nn.log_sigmoid(-logits(generated))
        )
    )
    assert worse < true_js - Z * se
