"""Gaussian diffusion bounds against closed forms (1-D Gaussian data, analytic denoiser).

Data ``x ~ N(mu, s^2)``; the optimal noise prediction is
``eps_hat(z_t) = sigma_t (z_t - alpha_t mu) / (alpha_t^2 s^2 + sigma_t^2)`` and
``E||eps - eps_hat||^2 = SNR_t s^2 / (1 + SNR_t s^2)``. Integrating ``0.5 gamma'`` times that
over ``t`` gives ``0.5 log((1 + SNR_0 s^2) / (1 + SNR_1 s^2))``; the discrete-time step ``i``
gives ``0.5 (SNR_s - SNR_t) s^2 / (1 + SNR_t s^2)``. Expectations over ``x`` and ``eps`` are
taken with Gauss-Hermite nodes (the integrands are quadratic, so exact) and over ``t`` with
composite Gauss-Legendre nodes, so the comparisons are deterministic.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

vd = vb.diffusion
MU, S = 0.3, 0.7
G_MIN, G_MAX = -13.3, 5.0


def analytic_eps_fn(gamma_fn, mu=MU, s=S):
    def eps_fn(z, t):
        g = gamma_fn(t)
        a2, s2 = jax.nn.sigmoid(-g), jax.nn.sigmoid(g)
        return jnp.sqrt(s2) * (z - jnp.sqrt(a2) * mu) / (a2 * s**2 + s2)

    return eps_fn


def gh_nodes(n=6):
    u, w = np.polynomial.hermite_e.hermegauss(n)
    return u, w / w.sum()


def gl_nodes(a, b, panels=50, order=8):
    """Composite Gauss-Legendre on [a, b], graded towards a (the cosine schedule's gamma'
    behaves like 1 / (theta_0 + c t) there)."""
    u, w = np.polynomial.legendre.leggauss(order)
    graded = a + (b - a) * np.geomspace(1e-7, 2e-2, 12)
    edges = np.concatenate([[a], graded, np.linspace(a, b, panels + 1)[2:]])
    half = np.diff(edges)[:, None] / 2
    t = (edges[:-1, None] + half * (u + 1)).ravel()
    return t, (half * w).ravel()


def expected_over_x_eps(fn, mu=MU, s=S, dtype=jnp.float32):
    """E_{x ~ N(mu, s^2), eps ~ N(0, 1)} fn(x, eps) for scalar data, by Gauss-Hermite."""
    u, w = gh_nodes()
    xs, es = np.meshgrid(mu + s * u, u, indexing="ij")
    weights = jnp.asarray(np.outer(w, w).ravel(), dtype)
    xs = jnp.asarray(xs.ravel(), dtype)[:, None]
    es = jnp.asarray(es.ravel(), dtype)[:, None]
    return jnp.sum(jax.vmap(fn)(xs, es) * weights)


def closed_continuous(g0, g1, s=S):
    return 0.5 * np.log((1 + np.exp(-g0) * s**2) / (1 + np.exp(-g1) * s**2))


def closed_discrete(gammas, s=S):
    snr = np.exp(-np.asarray(gammas, np.float64))
    return 0.5 * np.sum((snr[:-1] - snr[1:]) * s**2 / (1 + snr[1:] * s**2))


def closed_prior_recon(g0, g1, mu=MU, s=S):
    a1 = 1 / (1 + np.exp(g1))
    prior = 0.5 * (a1 * (mu**2 + s**2 - 1) + np.log1p(np.exp(-g1)))
    recon = 0.5 * (np.log(2 * np.pi) + g0 + 1.0)
    return prior + recon


def expected_diffusion(gamma_fn, *, num_steps=None, t_max=1.0, dtype=jnp.float32):
    eps_fn = analytic_eps_fn(gamma_fn)
    if num_steps is None:
        ts, ws = gl_nodes(0.0, t_max)
        ws = ws / t_max
    else:
        ts = t_max * (np.arange(1, num_steps + 1) - 0.5) / num_steps  # midpoints select step i
        ws = np.full(num_steps, 1.0 / num_steps)

    @jax.jit
    def run(ts, ws):
        def at(t):
            return expected_over_x_eps(
                lambda x, e: vd.diffusion_loss(
                    x, e, t, eps_fn, gamma_fn, num_steps=num_steps, t_max=t_max
                ),
                dtype=dtype,
            )

        return jnp.sum(jax.vmap(at)(ts) * ws)

    return float(run(jnp.asarray(ts, dtype), jnp.asarray(ws, dtype)))


def expected_prior_recon(gamma_fn):
    g0, g1 = gamma_fn(jnp.zeros(())), gamma_fn(jnp.ones(()))
    alpha0 = jnp.sqrt(jax.nn.sigmoid(-g0))
    sigma0 = jnp.sqrt(jax.nn.sigmoid(g0))
    return float(
        expected_over_x_eps(
            lambda x, e: vd.prior_kl(x, g1) + vd.decoder_nll(x, alpha0 * x + sigma0 * e, g0)
        )
    )


def linear(t):
    return vd.linear_gamma(t, gamma_min=G_MIN, gamma_max=G_MAX)


def cosine(t):
    return vd.cosine_gamma(t, gamma_min=G_MIN, gamma_max=G_MAX)


_NET = vd.init_monotone_gamma(jax.random.key(3), hidden=16)


def network(t):
    return vd.monotone_gamma(_NET, t, gamma_min=G_MIN, gamma_max=G_MAX)


@pytest.mark.parametrize("gamma_fn", [linear, cosine, network], ids=["linear", "cosine", "net"])
def test_continuous_time_equals_closed_form_for_any_schedule(gamma_fn):
    expected = closed_continuous(G_MIN, G_MAX)
    diffusion = expected_diffusion(gamma_fn)
    assert diffusion == pytest.approx(expected, rel=2e-4)
    total = diffusion + expected_prior_recon(gamma_fn)
    assert total == pytest.approx(expected + closed_prior_recon(G_MIN, G_MAX), abs=2e-4)
    assert total == pytest.approx(1.0626, abs=1e-3)  # an independently computed value


def test_schedules_hit_their_end_points_and_increase():
    t = jnp.linspace(0.0, 1.0, 101)
    for fn in (linear, cosine, network):
        g = fn(t)
        np.testing.assert_allclose([g[0], g[-1]], [G_MIN, G_MAX], atol=1e-4)
        assert np.all(np.diff(np.asarray(g)) > 0)


def test_discrete_time_equals_closed_sum_and_falls_toward_continuous():
    totals = []
    for steps, reference in [(10, 11.46), (100, 1.625), (1000, 1.116)]:
        grid = G_MIN + (G_MAX - G_MIN) * np.arange(steps + 1) / steps
        closed = closed_discrete(grid)
        value = expected_diffusion(linear, num_steps=steps)
        assert value == pytest.approx(closed, rel=1e-3)
        total = value + expected_prior_recon(linear)
        assert total == pytest.approx(reference, abs=2e-3 * reference + 1e-3)
        totals.append(total)
    continuous = expected_diffusion(linear) + expected_prior_recon(linear)
    assert totals[0] > totals[1] > totals[2] > continuous
    assert totals[2] - continuous < 0.06


def test_ten_thousand_steps_match_the_closed_sum_and_converge_at_first_order():
    """T = 10^4 in float64 (a float32 expm1 of a 1.8e-3 difference of numbers near -13 keeps
    only ~3 digits per step). The gap to continuous time is O(1/T): the discrete step is a
    right-endpoint rule for int 0.5 s^2 / (1 + v s^2) dv over v = SNR, whose error is
    sum 0.25 s^4 dv^2 / (1 + v s^2)^2 -> C / T with, for the linear schedule,
    C = (g_max - g_min) / 4 [log(1 + w) + 1 / (1 + w)]_{w_1}^{w_0}, w = s^2 SNR."""
    with jax.enable_x64(True):
        steps_list = (10, 100, 1000, 10_000)
        values = {t: expected_diffusion(linear, num_steps=t, dtype=jnp.float64) for t in steps_list}
        prior_recon = closed_prior_recon(G_MIN, G_MAX)
    for steps, value in values.items():
        grid = G_MIN + (G_MAX - G_MIN) * np.arange(steps + 1) / steps
        assert value == pytest.approx(closed_discrete(grid), rel=1e-9)
    assert values[10_000] + prior_recon == pytest.approx(1.068, abs=1e-3)  # independent value

    continuous = closed_continuous(G_MIN, G_MAX)

    def edge(w):
        return np.log1p(w) + 1 / (1 + w)

    c = (G_MAX - G_MIN) / 4 * (edge(S**2 * np.exp(-G_MIN)) - edge(S**2 * np.exp(-G_MAX)))
    gaps = np.array([values[t] - continuous for t in sorted(values)])
    assert np.all(gaps > 0) and np.all(np.diff(gaps) < 0)  # falls toward continuous time
    errors = np.abs(np.array(sorted(values)) * gaps - c)
    # T * gap -> C with an O(1/T) remainder: each decade cuts the error about tenfold.
    assert np.all(errors[1:] < errors[:-1] / 5)


def test_wide_end_points_reach_the_data_entropy():
    entropy = 0.5 * np.log(2 * np.pi * np.e * S**2)

    def total(g_min, g_max):
        def fn(t):
            return vd.linear_gamma(t, gamma_min=g_min, gamma_max=g_max)

        return expected_diffusion(fn) + expected_prior_recon(fn)

    assert total(-20.0, 20.0) == pytest.approx(entropy, abs=1e-3)
    narrow = total(-4.0, 2.0)  # narrow ends leave a gap, so this test can fail
    assert narrow == pytest.approx(closed_continuous(-4, 2) + closed_prior_recon(-4, 2), abs=2e-4)
    assert narrow - entropy > 0.02


def test_gaussian_vlb_sampled_is_unbiased():
    n = 1 << 15
    keys = jax.random.split(jax.random.key(0), n)
    xs = MU + S * jax.random.normal(jax.random.key(1), (n, 1))
    eps_fn = analytic_eps_fn(linear)

    for steps in (None,):  # discrete time is checked exactly by quadrature above

        def one(k, x, steps=steps):
            return vd.gaussian_vlb(k, x, eps_fn, linear, num_steps=steps).total

        vals = np.asarray(jax.jit(jax.vmap(one))(keys, xs))
        if steps is None:
            expected = closed_continuous(G_MIN, G_MAX)
        else:
            expected = closed_discrete(G_MIN + (G_MAX - G_MIN) * np.arange(101) / 100)
        expected += closed_prior_recon(G_MIN, G_MAX)
        se = vals.std() / np.sqrt(n)
        assert abs(vals.mean() - expected) < 4.5 * se


def test_per_dimension_schedule_and_independent_times():
    """MuLAN-style per-dimension schedules and Diffusion Forcing's per-dimension t."""
    mu = jnp.array([0.3, -1.0, 0.5])
    s = jnp.array([0.7, 0.2, 1.5])
    g_min = jnp.array([-10.0, -12.0, -8.0])
    g_max = jnp.array([4.0, 6.0, 3.0])
    a, b, c = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.3, 2.0, -1.0]), jnp.array([1, 0.2, 1])

    def gamma_fn(t):
        return vd.polynomial_gamma(t, a, b, c, gamma_min=g_min, gamma_max=g_max)

    eps_fn = analytic_eps_fn(gamma_fn, mu, s)
    expected = np.sum(closed_continuous(np.asarray(g_min), np.asarray(g_max), np.asarray(s)))
    ts, ws = gl_nodes(0.0, 1.0)
    u, w = gh_nodes()

    @jax.jit
    def quad(ts):
        def at(t):
            def f(ux, ue):
                return vd.diffusion_loss(mu + s * ux, ue, t, eps_fn, gamma_fn)

            grid = jax.vmap(lambda ux: jax.vmap(lambda ue: f(ux, ue))(ue_all))(ux_all)
            return jnp.einsum("i,j,ij->", jnp.asarray(w), jnp.asarray(w), grid)

        return jax.vmap(at)(ts)

    # The integrand is a sum of per-dimension terms, each depending on its own (x_k, eps_k)
    # only, so using the same 2-D node grid for every dimension gives each term exactly.
    ux_all = jnp.asarray(np.stack([u] * 3, axis=1), jnp.float32)
    ue_all = ux_all
    value = float(jnp.sum(quad(jnp.asarray(ts, jnp.float32)) * jnp.asarray(ws)))
    assert value == pytest.approx(expected, rel=2e-4)

    # Per-dimension t: eps_fn and gamma_fn see t shaped like x; the expectation is unchanged.
    n = 1 << 15
    keys = jax.random.split(jax.random.key(5), n)
    xs = mu + s * jax.random.normal(jax.random.key(6), (n, 3))

    def one(k, x):
        return vd.gaussian_vlb(k, x, eps_fn, lambda t: gamma_fn(t), independent_t=True).diffusion

    vals = np.asarray(jax.jit(jax.vmap(one))(keys, xs))
    assert abs(vals.mean() - expected) < 4.5 * vals.std() / np.sqrt(n)


def test_shallow_diffusion_closed_form_and_full_limit():
    """DiffSinger: diffuse to t_max = k only, prior N(alpha_k x_tilde, sigma_k^2)."""
    t_max, x_tilde = 0.6, 0.1
    g_k = G_MIN + (G_MAX - G_MIN) * t_max
    diffusion = expected_diffusion(linear, t_max=t_max)
    assert diffusion == pytest.approx(closed_continuous(G_MIN, g_k), rel=2e-4)
    steps = 40
    grid = G_MIN + (g_k - G_MIN) * np.arange(steps + 1) / steps
    discrete = expected_diffusion(linear, num_steps=steps, t_max=t_max)
    assert discrete == pytest.approx(closed_discrete(grid), rel=1e-3)

    a_k = np.sqrt(1 / (1 + np.exp(g_k)))

    def prior_term(x, e):
        terms = vd.shallow_gaussian_vlb(
            jax.random.key(0),
            x,
            analytic_eps_fn(linear),
            linear,
            t_max=t_max,
            prior_mean=a_k * x_tilde,
        )
        return terms.prior

    expected_prior = 0.5 * np.exp(-g_k) * ((MU - x_tilde) ** 2 + S**2)
    assert float(jax.jit(lambda: expected_over_x_eps(prior_term))()) == pytest.approx(
        expected_prior, rel=1e-4
    )

    x = jnp.array([0.2, -0.4])
    key = jax.random.key(9)
    full = vd.gaussian_vlb(key, x, analytic_eps_fn(linear), linear)
    shallow = vd.shallow_gaussian_vlb(
        key, x, analytic_eps_fn(linear), linear, t_max=1.0, prior_mean=0.0, prior_log_variance=0.0
    )
    np.testing.assert_allclose(np.array(shallow), np.array(full), rtol=1e-5, atol=1e-6)


def test_learnable_end_points_get_the_closed_form_gradient():
    def expected_total(ends):
        def fn(t):
            return vd.linear_gamma(t, gamma_min=ends[0], gamma_max=ends[1])

        eps_fn = analytic_eps_fn(fn)
        ts, ws = gl_nodes(0.0, 1.0, panels=20)

        def at(t):
            return expected_over_x_eps(lambda x, e: vd.diffusion_loss(x, e, t, eps_fn, fn))

        diffusion = jnp.sum(jax.vmap(at)(jnp.asarray(ts, jnp.float32)) * jnp.asarray(ws))
        g0, g1 = fn(0.0), fn(1.0)
        a0, s0 = jnp.sqrt(jax.nn.sigmoid(-g0)), jnp.sqrt(jax.nn.sigmoid(g0))
        rest = expected_over_x_eps(
            lambda x, e: vd.prior_kl(x, g1) + vd.decoder_nll(x, a0 * x + s0 * e, g0)
        )
        return diffusion + rest

    def closed(ends):
        g0, g1 = ends
        a1 = jax.nn.sigmoid(-g1)
        prior = 0.5 * (a1 * (MU**2 + S**2 - 1) + jax.nn.softplus(-g1))
        recon = 0.5 * (jnp.log(2 * jnp.pi) + g0 + 1.0)
        diff = 0.5 * (jnp.log1p(jnp.exp(-g0) * S**2) - jnp.log1p(jnp.exp(-g1) * S**2))
        return prior + recon + diff

    ends = jnp.array([-6.0, 3.0])
    grad = jax.jit(jax.grad(expected_total))(ends)
    np.testing.assert_allclose(grad, jax.grad(closed)(ends), rtol=2e-3, atol=1e-4)
    assert np.all(np.isfinite(jax.grad(closed)(jnp.array([-30.0, 30.0]))))


def test_monotone_network_gradient_vanishes_in_expectation():
    """Between fixed ends the expected bound does not depend on the schedule's shape."""

    def expected(params):
        def fn(t):
            return vd.monotone_gamma(params, t, gamma_min=G_MIN, gamma_max=G_MAX)

        eps_fn = analytic_eps_fn(fn)
        ts, ws = gl_nodes(0.0, 1.0, panels=20)

        def at(t):
            return expected_over_x_eps(lambda x, e: vd.diffusion_loss(x, e, t, eps_fn, fn))

        return jnp.sum(jax.vmap(at)(jnp.asarray(ts, jnp.float32)) * jnp.asarray(ws))

    def at_one_time(params):
        def fn(t):
            return vd.monotone_gamma(params, t, gamma_min=G_MIN, gamma_max=G_MAX)

        eps_fn = analytic_eps_fn(fn)
        return expected_over_x_eps(lambda x, e: vd.diffusion_loss(x, e, 0.5, eps_fn, fn))

    def flat(tree):
        return np.concatenate([np.ravel(g) for g in jax.tree.leaves(tree)])

    grads = flat(jax.jit(jax.grad(expected))(_NET))
    assert np.all(np.isfinite(grads))
    per_t = flat(jax.jit(jax.grad(at_one_time))(_NET))
    assert np.max(np.abs(per_t)) > 0.05  # the integrand at one t does depend on the shape
    assert np.max(np.abs(grads)) < 2e-3


def test_posterior_and_step_kl_match_bayes_in_float64():
    g_s, g_t = -2.0, 1.5
    x, z_t, eps_hat = 0.7, -0.3, 0.4
    a_s2, a_t2 = 1 / (1 + np.exp(g_s)), 1 / (1 + np.exp(g_t))
    s_s2, s_t2 = 1 - a_s2, 1 - a_t2
    a_ts2 = a_t2 / a_s2  # q(z_t | z_s) = N(a_ts z_s, 1 - a_ts2 ... ) in variance-preserving form
    var_ts = s_t2 - a_ts2 * s_s2
    # Product of N(z_s; a_s x, s_s2) and N(z_t; a_ts z_s, var_ts), as a function of z_s.
    precision = 1 / s_s2 + a_ts2 / var_ts
    mean = (np.sqrt(a_s2) * x / s_s2 + np.sqrt(a_ts2) * z_t / var_ts) / precision
    m, log_v = vd.gaussian_posterior(x, z_t, g_s, g_t)
    np.testing.assert_allclose([m, np.exp(log_v)], [mean, 1 / precision], rtol=1e-5)

    eps = (z_t - np.sqrt(a_t2) * x) / np.sqrt(s_t2)
    kl = vd.gaussian_step_kl(jnp.array([x]), jnp.array([z_t]), jnp.array([eps_hat]), g_s, g_t)
    assert float(kl) == pytest.approx(0.5 * np.expm1(g_t - g_s) * (eps - eps_hat) ** 2, rel=1e-4)

    log_v1 = vd.interpolated_log_variance(1.0, g_s, g_t)
    log_v0 = vd.interpolated_log_variance(0.0, g_s, g_t)
    np.testing.assert_allclose([log_v1, log_v0], [np.log(var_ts), np.log(1 / precision)], rtol=1e-5)
    x_hat = (z_t - np.sqrt(s_t2) * eps_hat) / np.sqrt(a_t2)
    m_hat = (np.sqrt(a_s2) * x_hat / s_s2 + np.sqrt(a_ts2) * z_t / var_ts) / precision
    v_p = np.exp(0.5 * (np.log(var_ts) + np.log(1 / precision)))
    kl_half = (
        np.log(np.sqrt(v_p * precision)) + (1 / precision + (mean - m_hat) ** 2) / (2 * v_p) - 0.5
    )
    got = vd.gaussian_step_kl(
        jnp.array([x]),
        jnp.array([z_t]),
        jnp.array([eps_hat]),
        g_s,
        g_t,
        log_variance=vd.interpolated_log_variance(0.5, g_s, g_t),
    )
    assert float(got) == pytest.approx(kl_half, rel=1e-4)
    assert vd.gamma_from_alpha_bar(a_t2) == pytest.approx(g_t, rel=1e-5)


def test_hybrid_loss_parts():
    x = jnp.array([0.3, -0.2, 0.9])
    key = jax.random.key(4)
    steps = 50

    def model_fn(params, z, t):
        return params["w"] * z, params["v"] * jnp.ones_like(z)

    params = {"w": jnp.asarray(0.8), "v": jnp.asarray(0.0)}
    loss = jax.jit(
        lambda p: vd.hybrid_loss(
            key, x, lambda z, t: model_fn(p, z, t), linear, num_steps=steps, vlb_weight=0.01
        )
    )
    terms = vd.gaussian_vlb(key, x, lambda z, t: model_fn(params, z, t)[0], linear, num_steps=steps)
    # Same draw of (t, eps): the VLB part is the discrete-time diffusion term at v = 0.
    k_t, k_eps, _ = jax.random.split(key, 3)
    t = jax.random.uniform(k_t, ())
    eps = jax.random.normal(k_eps, x.shape)
    step = np.clip(np.ceil(float(t) * steps), 1, steps)
    g = G_MIN + (G_MAX - G_MIN) * step / steps
    z = np.sqrt(1 / (1 + np.exp(g))) * x + np.sqrt(1 / (1 + np.exp(-g))) * eps
    simple = float(vd.l_simple(eps, 0.8 * z))
    assert float(loss(params)) == pytest.approx(simple + 0.01 * float(terms.diffusion), rel=1e-4)
    grad = jax.grad(lambda p: loss(p) - vd.l_simple(eps, p["w"] * z))(params)
    assert float(grad["w"]) == pytest.approx(0.0, abs=1e-6)  # the VLB part trains v only
    assert abs(float(grad["v"])) > 1e-4


def test_decoders_normalise_and_match_scipy():
    from scipy import stats

    bins = 16
    grid = jnp.linspace(-1.0, 1.0, bins)
    a0 = np.sqrt(1 / (1 + np.exp(-3.0)))
    z0 = jnp.array([0.2 * a0])

    @jax.jit
    def run():
        def on_grid(decoder):
            return jax.vmap(
                lambda v: vd.decoder_nll(v[None], z0, -3.0, decoder=decoder, num_bins=bins)
            )(grid)

        gaussian = vd.decoder_nll(jnp.array([0.25]), z0, -3.0)
        far = jax.grad(lambda z: vd.decoder_nll(jnp.array([-1.0]), z, -12.0, decoder="binned"))
        return gaussian, on_grid("discretized"), on_grid("binned"), far(jnp.array([0.99]))

    gaussian, discretized, binned, far_grad = run()
    sd = np.exp(-1.5)  # decoder scale sigma_0 / alpha_0 = exp(gamma_0 / 2)
    assert float(gaussian) == pytest.approx(-stats.norm.logpdf(0.25, loc=0.2, scale=sd), rel=1e-4)
    for nll in (discretized, binned):
        assert float(jnp.sum(jnp.exp(-nll))) == pytest.approx(1.0, abs=1e-5)
    edges = np.concatenate([[-np.inf], (grid[:-1] + grid[1:]) / 2, [np.inf]])
    mass = np.diff(stats.norm.cdf(edges, loc=0.2, scale=sd))
    np.testing.assert_allclose(np.exp(-np.asarray(binned)), mass, rtol=1e-4, atol=1e-7)
    assert np.all(np.isfinite(far_grad))  # far tails: finite value and gradient
    assert float(vd.bits_per_dim(jnp.log(2.0) * 64, 64)) == pytest.approx(1.0)


def test_weightings():
    gamma, dgamma = jnp.array([-3.0, 0.0, 2.0]), jnp.array([10.0, 10.0, 10.0])
    np.testing.assert_allclose(vd.elbo_weighting(gamma, dgamma), 5.0)
    np.testing.assert_allclose(vd.simple_weighting(gamma, dgamma), 1.0)
    np.testing.assert_allclose(vd.debiased_weighting(gamma, dgamma), np.exp(gamma / 2))
    np.testing.assert_allclose(
        vd.min_snr_weighting(gamma, dgamma, k=5.0),
        5 * np.minimum(1, 5 * np.exp(gamma)),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        vd.sigmoid_weighting(gamma, dgamma, bias=1.0), 5 / (1 + np.exp(-(gamma + 1))), rtol=1e-6
    )
    # With w = 1 the t-integral of E||eps - eps_hat||^2 = sigmoid(log s^2 - gamma) is
    # log((1 + s^2 e^{-g0}) / (1 + s^2 e^{-g1})) / (g1 - g0): 2 / gamma' times the ELBO term.
    eps_fn = analytic_eps_fn(linear)
    ts, ws = gl_nodes(0.0, 1.0, panels=20)

    @jax.jit
    def simple_quad():
        def at(t):
            return expected_over_x_eps(
                lambda x, e: vd.diffusion_loss(
                    x, e, t, eps_fn, linear, weighting=vd.simple_weighting
                )
            )

        return jnp.sum(jax.vmap(at)(jnp.asarray(ts, jnp.float32)) * jnp.asarray(ws))

    expected = 2 * closed_continuous(G_MIN, G_MAX) / (G_MAX - G_MIN)
    assert float(simple_quad()) == pytest.approx(expected, rel=2e-4)
    key, x = jax.random.key(2), jnp.array([0.1, 0.4])
    np.testing.assert_allclose(
        vd.denoising_loss(key, x, eps_fn, linear, weighting=vd.elbo_weighting),
        vd.gaussian_vlb(key, x, eps_fn, linear).diffusion,
        rtol=1e-6,
    )


def test_time_samplers():
    losses = jnp.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0])
    times = jnp.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    n = 1 << 16

    @jax.jit
    def run():
        t = vd.stratified_times(jax.random.key(0), 8)
        firsts = jax.vmap(lambda k: vd.stratified_times(k, 8)[0])(
            jax.random.split(jax.random.key(1), 4096)
        )
        a = vd.antithetic_times(jax.random.key(0), 6)
        empty = vd.init_importance_state(4, history_len=2)
        state = vd.update_importance_state(empty, times, losses)
        p = vd.importance_probabilities(state, uniform_mix=0.0)
        ts, w = vd.importance_times(jax.random.key(3), state, n)
        return t, firsts, a, vd.importance_probabilities(empty), state.counts, p, w * ts**2

    t, firsts, a, p_empty, counts, p, vals = (np.asarray(v) for v in run())
    np.testing.assert_allclose(np.diff(np.sort(t)), 1 / 8, atol=1e-6)
    assert abs(firsts.mean() - 0.5) < 4.5 * firsts.std() / 64  # each t is marginally U(0, 1)
    np.testing.assert_allclose(a[:3] + a[3:], 1.0, atol=1e-6)
    np.testing.assert_allclose(p_empty, 0.25)  # uniform until every bin has a history
    np.testing.assert_array_equal(counts, [2, 2, 2, 2])
    # Bin b holds the losses (b+1, b+1): root mean square b+1.
    np.testing.assert_allclose(p, np.arange(1, 5) / 10, rtol=1e-6)
    # Importance-weighted estimates of E_{t ~ U(0,1)}[t^2] = 1/3 are unbiased.
    assert abs(vals.mean() - 1 / 3) < 4.5 * vals.std() / np.sqrt(n)


def test_jit_vmap_and_grad_of_the_bound():
    params = {"lo": jnp.asarray(-8.0), "hi": jnp.asarray(4.0), "w": jnp.asarray(0.5)}
    xs = jax.random.normal(jax.random.key(0), (4, 5))
    keys = jax.random.split(jax.random.key(1), 4)

    def loss(p):
        def fn(t):
            return vd.linear_gamma(t, gamma_min=p["lo"], gamma_max=p["hi"])

        def one(k, x):
            terms = vd.gaussian_vlb(k, x, lambda z, t: p["w"] * z, fn, num_steps=None)
            return terms.total

        return jnp.mean(jax.vmap(one)(keys, xs))

    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    assert np.isfinite(value)
    assert all(np.isfinite(g) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"decoder": "laplace"}, "decoder"),
        ({"num_bins": 0}, "num_bins"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    eps_fn = analytic_eps_fn(linear)
    with pytest.raises(ValueError, match=match):
        vd.gaussian_vlb(jax.random.key(0), jnp.ones(3), eps_fn, linear, **kwargs)


def test_bad_callables_and_shapes_raise():
    key, x = jax.random.key(0), jnp.ones(3)
    with pytest.raises(ValueError, match="eps_fn"):
        vd.gaussian_vlb(key, x, lambda z, t: z[:2], linear)
    with pytest.raises(ValueError, match="gamma_fn"):
        vd.gaussian_vlb(key, x, lambda z, t: z, lambda t: jnp.ones(4) * t)
    with pytest.raises(ValueError, match="`x`"):
        vd.gaussian_vlb(key, jnp.ones((0,)), lambda z, t: z, linear)
    with pytest.raises(TypeError, match="eps_fn"):
        vd.gaussian_vlb(key, x, None, linear)
    with pytest.raises(ValueError, match="t_max"):
        vd.shallow_gaussian_vlb(key, x, lambda z, t: z, linear, t_max=0.0, prior_mean=0.0)
    with pytest.raises(ValueError, match="weighting"):
        vd.diffusion_loss(
            x, x, 0.5, lambda z, t: z, linear, num_steps=4, weighting=vd.simple_weighting
        )
    with pytest.raises(ValueError, match="batch_size"):
        vd.antithetic_times(jax.random.key(0), 5)
    with pytest.raises(ValueError, match="eps"):
        vd.diffusion_loss(x, jnp.ones(2), 0.5, lambda z, t: z, linear)


def test_diffusion_loss_rejects_times_outside_the_interval_and_decreasing_schedules():
    # Reported: both were accepted, a decreasing schedule returning a negative "loss".
    x, eps = jnp.array([0.3, -0.2]), jnp.array([0.5, 1.0])
    eps_fn = analytic_eps_fn(linear)
    for steps in (None, 8):
        for t in (1.5, -0.1, jnp.array([0.5, 1.01])):
            with pytest.raises(ValueError, match=r"`t` must lie in \[0, t_max\]"):
                vd.diffusion_loss(x, eps, t, eps_fn, linear, num_steps=steps)
        with pytest.raises(ValueError, match="`t` must lie"):
            vd.diffusion_loss(x, eps, 0.7, eps_fn, linear, num_steps=steps, t_max=0.5)
        with pytest.raises(ValueError, match="`gamma_fn` must be increasing"):
            vd.diffusion_loss(x, eps, 0.5, eps_fn, lambda t: -linear(t), num_steps=steps)
        # the end points themselves are valid
        for t in (0.0, 1.0):
            assert np.isfinite(vd.diffusion_loss(x, eps, t, eps_fn, linear, num_steps=steps))
    with pytest.raises(ValueError, match="`t` must lie"):
        vd.gaussian_vlb(jax.random.key(0), x, eps_fn, linear, t=2.0)


def test_small_helpers_under_jit_match_eager():
    gamma, dgamma = jnp.array([-3.0, 0.5]), jnp.array([4.0, 4.0])
    x, key = jnp.array([0.2, -0.1]), jax.random.key(0)

    def helpers():
        return (
            vd.min_snr_weighting(gamma, dgamma),
            vd.sigmoid_weighting(gamma, dgamma),
            vd.debiased_weighting(gamma, dgamma),
            vd.bits_per_dim(jnp.array([10.0, 20.0]), 4),
            vd.gamma_from_alpha_bar(jnp.array([0.9, 0.1])),
            vd.denoising_loss(key, x, lambda z, t: 0.5 * z, linear, weighting=vd.sigmoid_weighting),
            vd.categorical_kl(jnp.array([0.2, 0.8]), jnp.array([0.5, 0.5])),
        )

    for got, want in zip(jax.jit(helpers)(), helpers(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(vd.gamma_from_alpha_bar(jnp.array([0.5])), 0.0, atol=1e-7)


def test_discrete_data_with_the_exact_denoiser_gives_entropy_plus_prior_mismatch():
    """17-level data, exact posterior-mean denoiser, discretised decoder, continuous time.

    With the exact denoiser the reverse process matches ``q`` from ``z_1`` down, so
    ``E[-ELBO] = H(x) + KL(q(z_1) || N(0, 1)) + E KL(q(x | z_0) || p(x | z_0))``; the last
    term is below 1e-30 nats here (bins 0.125 wide, ``sigma_0 = 1.3e-3``), and ``KL(q(z_1) ||
    N(0, 1))`` is a 1-D integral. This checks the three terms and their weighting together.
    """
    levels = 17
    grid = np.linspace(-1.0, 1.0, levels)
    probs = np.arange(1.0, levels + 1.0) ** 2
    probs /= probs.sum()
    with jax.enable_x64(True):

        def gamma_fn(t):
            return vd.linear_gamma(t, gamma_min=G_MIN, gamma_max=G_MAX)

        v, logp = jnp.asarray(grid), jnp.log(jnp.asarray(probs))

        def eps_fn(z, t):
            g = gamma_fn(t)
            a, s2 = jnp.sqrt(jax.nn.sigmoid(-g)), jax.nn.sigmoid(g)
            w = jax.nn.softmax(logp - (z[..., None] - a * v) ** 2 / (2 * s2), axis=-1)
            return (z - a * (w @ v)) / jnp.sqrt(s2)

        n = 200_000
        k_x, k_t, k = jax.random.split(jax.random.key(0), 3)
        x = v[jax.random.choice(k_x, levels, (n,), p=jnp.asarray(probs))][:, None]
        ts = vd.stratified_times(k_t, n)

        def one(key, xi, t):
            return vd.gaussian_vlb(
                key, xi, eps_fn, gamma_fn, t=t, decoder="discretized", num_bins=levels
            ).total

        totals = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(k, n), x, ts))
    a1, s1 = np.sqrt(1 / (1 + np.exp(G_MAX))), np.sqrt(1 / (1 + np.exp(-G_MAX)))
    z = np.linspace(-12.0, 12.0, 240_001)
    q = (probs * np.exp(-((z[:, None] - a1 * grid) ** 2) / (2 * s1**2))).sum(1)
    q /= np.sqrt(2 * np.pi) * s1
    prior_mismatch = np.trapezoid(q * (np.log(q) + 0.5 * z**2 + 0.5 * np.log(2 * np.pi)), z)
    expected = -(probs * np.log(probs)).sum() + prior_mismatch
    assert abs(totals.mean() - expected) < 4 * totals.std() / np.sqrt(n)


def test_injected_noise_gives_the_terms_of_the_public_functions():
    # t, eps and eps_0 replace the draws: the value no longer depends on the key and is the
    # sum of the public terms.
    x = jnp.array([0.3, -0.5])
    eps_fn = analytic_eps_fn(linear)
    t, eps, eps_0 = 0.3, jnp.array([0.5, -1.0]), jnp.array([1.2, 0.1])
    given = {"t": t, "eps": eps, "eps_0": eps_0}
    for num_steps in (None, 10):
        a, b = (
            vd.gaussian_vlb(jax.random.key(k), x, eps_fn, linear, num_steps=num_steps, **given)
            for k in (0, 1)
        )
        np.testing.assert_array_equal(jnp.stack(a), jnp.stack(b))
        diffusion = vd.diffusion_loss(x, eps, t, eps_fn, linear, num_steps=num_steps)
        np.testing.assert_allclose(a.diffusion, diffusion, rtol=1e-6)
    g0 = linear(jnp.zeros(()))
    z_0 = jnp.sqrt(jax.nn.sigmoid(-g0)) * x + jnp.sqrt(jax.nn.sigmoid(g0)) * eps_0
    np.testing.assert_allclose(a.reconstruction, vd.decoder_nll(x, z_0, g0), rtol=1e-4)
    np.testing.assert_allclose(a.prior, vd.prior_kl(x, linear(jnp.ones(()))), rtol=1e-6)
    for k in (0, 1):
        loss = vd.denoising_loss(
            jax.random.key(k), x, eps_fn, linear, weighting=vd.min_snr_weighting, t=t, eps=eps
        )
        expected = vd.diffusion_loss(x, eps, t, eps_fn, linear, weighting=vd.min_snr_weighting)
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
    hybrid = [
        vd.hybrid_loss(
            jax.random.key(k),
            x,
            lambda z, s: (eps_fn(z, s), jnp.zeros_like(z)),
            linear,
            num_steps=10,
            t=t,
            eps=eps,
        )
        for k in (0, 1)
    ]
    assert float(hybrid[0]) == float(hybrid[1])
    with pytest.raises(ValueError, match="`eps` must have the shape of `x`"):
        vd.gaussian_vlb(jax.random.key(0), x, eps_fn, linear, eps=jnp.zeros(3))
