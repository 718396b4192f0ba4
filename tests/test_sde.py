"""vb.sde against exact answers: OU path KLs, first-order convergence, fBM covariances."""

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

# Two OU processes with a shared diffusion: Q: dz = (a_q - th_q z) dt + sig dW, P likewise.
A_Q, TH_Q, A_P, TH_P, SIG, Z0, HORIZON = 0.5, 2.0, 0.0, 0.5, 0.5, 2.0, 1.0


def _ou_kl(ts, noise):
    return vb.sde.path_kl(
        None,
        jnp.array([Z0]),
        posterior_drift=lambda z, t: A_Q - TH_Q * z,
        prior_drift=lambda z, t: A_P - TH_P * z,
        diffusion=lambda z, t: SIG,
        ts=ts,
        noise=noise,
    ).value


def _integrand(mean, var):
    # E_Q[u^2] / 2 with u = ((a_q - a_p) - (th_q - th_p) z) / sig.
    da, dth = A_Q - A_P, TH_Q - TH_P
    return 0.5 * ((da - dth * mean) ** 2 + dth**2 * var) / SIG**2


def _exact_continuous_kl():
    t = np.linspace(0.0, HORIZON, 200001)
    decay = np.exp(-TH_Q * t)
    mean = Z0 * decay + A_Q / TH_Q * (1 - decay)
    var = SIG**2 * (1 - decay**2) / (2 * TH_Q)
    return np.trapezoid(_integrand(mean, var), t)


def test_path_kl_of_ou_processes_matches_the_euler_chain_in_closed_form():
    # The one-path estimate is unbiased for the KL of the Euler-discretised chains, whose
    # moments follow m' = m + (a - th m) dt, v' = (1 - th dt)^2 v + sig^2 dt.
    n = 20
    dt = HORIZON / n
    mean, var, expected = Z0, 0.0, 0.0
    for _ in range(n):
        expected += _integrand(mean, var) * dt
        mean, var = mean + (A_Q - TH_Q * mean) * dt, (1 - TH_Q * dt) ** 2 * var + SIG**2 * dt
    ts = jnp.linspace(0.0, HORIZON, n + 1)
    with jax.enable_x64(True):
        noise = jax.random.normal(jax.random.key(0), (4000, n, 1), jnp.float64)
        values = np.asarray(jax.jit(jax.vmap(lambda e: _ou_kl(ts, e)))(noise))
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - expected) < 4.5 * se


def test_path_kl_converges_at_first_order_in_the_step_size():
    fine, paths = 256, 2000
    with jax.enable_x64(True):
        noise = jax.random.normal(jax.random.key(1), (paths, fine, 1), jnp.float64)
        values = []
        for n in (32, 64, 128, 256):
            # Common random numbers: coarse increments are sums of the fine ones, so the
            # Monte Carlo error is shared by every step size and cancels in differences.
            coarse = noise.reshape(paths, n, fine // n, 1).sum(axis=2) / math.sqrt(fine // n)
            ts = jnp.linspace(0.0, HORIZON, n + 1)
            values.append(np.asarray(jax.jit(jax.vmap(lambda e, ts=ts: _ou_kl(ts, e)))(coarse)))
    diffs = [a - b for a, b in zip(values, values[1:])]
    means = np.array([d.mean() for d in diffs])
    ses = np.array([d.std(ddof=1) / np.sqrt(paths) for d in diffs])
    assert np.all(np.abs(means) > 4.5 * ses), (means, ses)  # each refinement is resolved
    ratios = means[:-1] / means[1:]
    # First order: each halving of dt halves the error (second order would give 4, none 1).
    assert np.all((ratios > 1.5) & (ratios < 2.5)), ratios
    # Richardson extrapolation of the two finest grids removes the O(dt) term: it matches
    # the continuous-time KL.
    extrapolated = 2 * values[3] - values[2]
    se = extrapolated.std(ddof=1) / np.sqrt(paths)
    assert abs(extrapolated.mean() - _exact_continuous_kl()) < 4.5 * se


def test_path_kl_constant_control_and_path():
    ts = jnp.linspace(0.0, 2.0, 9)
    noise = jax.random.normal(jax.random.key(2), (8, 3))
    out = vb.sde.path_kl(
        None,
        jnp.zeros(3),
        posterior_drift=lambda z, t: jnp.array([1.0, 0.0, -2.0]),
        prior_drift=lambda z, t: jnp.zeros(3),
        diffusion=lambda z, t: jnp.array([1.0, 1.0, 2.0]),
        ts=ts,
        noise=noise,
    )
    # u = (1, 0, -1) for time 2: KL = 0.5 * 2 * 2 = 2 on every path.
    np.testing.assert_allclose(out.value, 2.0, rtol=1e-6)
    dw = jnp.sqrt(0.25) * noise
    increments = jnp.array([1.0, 0.0, -2.0]) * 0.25 + jnp.array([1.0, 1.0, 2.0]) * dw
    np.testing.assert_allclose(out.path[1:], jnp.cumsum(increments, axis=0), atol=1e-5)
    assert out.path.shape == (9, 3)


def _normal(mean, scale):
    return distrax.MultivariateNormalDiag(jnp.atleast_1d(mean), jnp.atleast_1d(scale))


def test_sde_elbo_matches_closed_form_at_q_equal_p_and_stays_below_log_p():
    # OU prior, Gaussian observations. Its Euler chain is a linear-Gaussian state-space
    # model, whose exact log p(x) (Kalman) bounds the Euler-discretised ELBO from above.
    n, th, sig, noise_sd = 20, 1.0, 0.8, 0.3
    ts = jnp.linspace(0.0, 1.0, n + 1)
    observed_at = jnp.array([5, 10, 20])
    x = jnp.array([[0.6], [0.9], [1.2]])

    def run(posterior_drift, key):
        return vb.sde.elbo(
            key,
            x,
            ts=ts,
            observed_at=observed_at,
            initial_posterior=_normal(0.0, 1.0),
            initial_prior=_normal(0.0, 1.0),
            posterior_drift=posterior_drift,
            prior_drift=lambda z, t: -th * z,
            diffusion=lambda z, t: sig,
            emission=lambda z, t: _normal(z, noise_sd),
        )

    prior_drift = lambda z, t: -th * z  # noqa: E731
    pulled = lambda z, t: -th * z + 2.0 * (1.0 - z)  # noqa: E731
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(3), 4000)
        at_prior = jax.jit(jax.vmap(lambda k: run(prior_drift, k)))(keys)
        better = jax.jit(jax.vmap(lambda k: run(pulled, k)))(keys)
        # Prior marginals of the Euler chain: v' = (1 - th dt)^2 v + sig^2 dt from v_0 = 1.
        dt = 1.0 / n
        var, variances = 1.0, [1.0]
        for _ in range(n):
            var = (1 - th * dt) ** 2 * var + sig**2 * dt
            variances.append(var)
        v = np.array(variances)[np.asarray(observed_at)]
        xs = np.asarray(x[:, 0])
        closed = np.sum(-0.5 * np.log(2 * np.pi * noise_sd**2) - (xs**2 + v) / (2 * noise_sd**2))
        # log p(x) of the Euler chain: z at the observed steps is Gaussian with
        # Cov(z_m, z_n) = (1 - th dt)^|n - m| v_min(m, n); x adds the emission noise.
        steps = np.asarray(observed_at)
        cov = (1 - th * dt) ** np.abs(steps[:, None] - steps[None, :]) * np.array(variances)[
            np.minimum(steps[:, None], steps[None, :])
        ]
        cov += noise_sd**2 * np.eye(len(steps))
        log_p = -0.5 * (
            xs @ np.linalg.solve(cov, xs) + np.linalg.slogdet(cov)[1] + len(xs) * np.log(2 * np.pi)
        )
    np.testing.assert_array_equal(np.asarray(at_prior.path_kl), 0.0)
    np.testing.assert_array_equal(np.asarray(at_prior.initial_kl), 0.0)
    values = np.asarray(at_prior.value)
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - closed) < 4.5 * se
    # The log-likelihood term is the emission's log-density on the returned path.
    path = np.asarray(better.path[0, np.asarray(observed_at), 0])
    ll = np.sum(-0.5 * np.log(2 * np.pi * noise_sd**2) - (xs - path) ** 2 / (2 * noise_sd**2))
    np.testing.assert_allclose(better.log_likelihood[0], ll, rtol=1e-10)
    np.testing.assert_allclose(
        better.value, better.log_likelihood - better.initial_kl - better.path_kl, rtol=1e-10
    )
    better_values = np.asarray(better.value)
    better_se = better_values.std(ddof=1) / np.sqrt(len(better_values))
    assert better_values.mean() > values.mean() + 4.5 * (se + better_se)
    assert better_values.mean() < log_p + 4.5 * better_se


def _rl_covariance_quadrature(s, t, hurst):
    """Type-II fBM covariance for s < t by Gauss-Legendre after v = (s - u)^a."""
    a = hurst + 0.5
    nodes, w = np.polynomial.legendre.leggauss(200)
    top = s**a
    v = 0.5 * top * (nodes + 1)
    integrand = (t - s + v ** (1 / a)) ** (a - 1) / a
    return 0.5 * top * np.sum(w * integrand) / math.gamma(a) ** 2


def test_fbm_covariance_matches_quadrature_and_variance():
    pairs = np.array([(0.3, 1.0), (0.5, 0.7), (1.0, 2.5), (1.7, 1.7), (0.0, 1.0)])
    hursts = np.array([0.2, 0.5, 0.8])
    with jax.enable_x64(True):
        got = np.asarray(
            jax.jit(jax.vmap(lambda h: vb.sde.fbm_covariance(pairs[:, 0], pairs[:, 1], hurst=h)))(
                hursts
            )
        )
        swapped = np.asarray(vb.sde.fbm_covariance(pairs[:3, 1], pairs[:3, 0], hurst=0.2))
    for h, row in zip(hursts, got, strict=True):
        for (s, t), value in zip(pairs[:3], row[:3], strict=True):
            np.testing.assert_allclose(value, _rl_covariance_quadrature(s, t, h), rtol=1e-8)
        exact_var = 1.7 ** (2 * h) / (2 * h * math.gamma(h + 0.5) ** 2)
        np.testing.assert_allclose(row[3], exact_var, rtol=1e-8)
        assert row[4] == 0.0
    np.testing.assert_allclose(swapped, got[0, :3], rtol=1e-12)


def test_mafbm_covariance_approaches_fbm_as_components_grow():
    grid = jnp.linspace(0.05, 1.0, 20)
    s, t = jnp.meshgrid(grid, grid)
    levels = ((2, 5.0), (4, 20.0), (8, 100.0), (16, 1000.0))

    def max_errors(hurst):
        exact = vb.sde.fbm_covariance(s, t, hurst=hurst)
        errors = []
        for k, max_rate in levels:
            rates = vb.sde.mafbm_rates(k, max_rate=max_rate)
            weights = vb.sde.mafbm_weights(hurst, rates, horizon=1.0)
            approx = vb.sde.mafbm_covariance(s, t, weights=weights, rates=rates)
            errors.append(jnp.max(jnp.abs(approx - exact)))
        return jnp.stack(errors), jnp.max(exact)

    with jax.enable_x64(True):
        errors, largest = jax.jit(jax.vmap(max_errors))(jnp.array([0.3, 0.7]))
    errors, largest = np.asarray(errors), np.asarray(largest)
    assert np.all(np.diff(errors, axis=1) < 0), errors
    assert np.all(errors[:, -1] < 0.01 * largest), errors  # within 1% of the largest value


def test_mafbm_covariance_of_one_ou_component_and_weights_at_brownian_motion():
    with jax.enable_x64(True):
        # One OU with rate g: Cov(Y_s, Y_t) = e^{-g (t - s)} (1 - e^{-2 g s}) / (2 g), s <= t.
        g, s, t = 1.3, 0.4, 1.1
        cov = vb.sde.mafbm_covariance(s, t, weights=jnp.ones(1), rates=jnp.array([g]))
        exact = np.exp(-g * (t - s)) * (1 - np.exp(-2 * g * s)) / (2 * g)
        np.testing.assert_allclose(float(cov), exact, rtol=1e-12)
        # H = 1/2 with a near-zero rate: Y is Brownian motion, the best weight is 1.
        w = vb.sde.mafbm_weights(0.5, jnp.array([1e-6]), horizon=2.0)
        np.testing.assert_allclose(float(w[0]), 1.0, atol=1e-5)


def _mafbm_run(control, noise, weights, rates, ts):
    return vb.sde.mafbm_elbo(
        jax.random.key(0),
        jnp.zeros((1, 1)),
        ts=ts,
        observed_at=jnp.array([ts.shape[0] - 1]),
        initial_posterior=_normal(0.0, 1e-12),
        initial_prior=_normal(0.0, 1e-12),
        weights=weights,
        rates=rates,
        drift=lambda z, t: jnp.zeros_like(z),
        diffusion=lambda z, t: 1.0,
        control=control,
        emission=lambda z, t: _normal(z, 1.0),
        noise=noise,
    )


def test_mafbm_elbo_control_energy_and_the_simulated_noise_variance():
    n, paths = 50, 4000
    ts = jnp.linspace(0.0, 1.0, n + 1)
    with jax.enable_x64(True):
        rates = vb.sde.mafbm_rates(4, max_rate=10.0)
        weights = vb.sde.mafbm_weights(0.3, rates, horizon=1.0)
        noise = jax.random.normal(jax.random.key(4), (paths, n, 1), jnp.float64)
        free = jax.jit(
            jax.vmap(lambda e: _mafbm_run(lambda z, y, t: jnp.zeros(1), e, weights, rates, ts))
        )(noise)
        pushed = _mafbm_run(lambda z, y, t: jnp.full(1, 1.5), noise[0], weights, rates, ts)
        # The Euler chain of Y: C' = D C D + dt 1 1^T with D = diag(1 - gamma dt), and the
        # latent (zero drift, unit diffusion, z_0 = 0) is z_N = omega . Y_N exactly.
        dt = 1.0 / n
        d = np.diag(1 - np.asarray(rates) * dt)
        c = np.zeros((4, 4))
        for _ in range(n):
            c = d @ c @ d + dt * np.ones((4, 4))
        w = np.asarray(weights)
        expected_var = w @ c @ w
    np.testing.assert_allclose(float(pushed.path_kl), 0.5 * 1.5**2 * 1.0, rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(free.path_kl), 0.0)
    z_end = np.asarray(free.path[:, -1, 0])
    squares = z_end**2
    se = squares.std(ddof=1) / np.sqrt(paths)
    assert abs(squares.mean() - expected_var) < 4.5 * se
    # The control shifts the noise: with u = 1.5 the mean end point moves by omega . E[Y_N].
    np.testing.assert_allclose(
        pushed.value, pushed.log_likelihood - pushed.initial_kl - pushed.path_kl, rtol=1e-12
    )
    assert float(pushed.path[-1, 0]) > float(free.path[0, -1, 0])


def test_bad_inputs_name_the_argument():
    kw = dict(
        posterior_drift=lambda z, t: z, prior_drift=lambda z, t: z, diffusion=lambda z, t: 1.0
    )
    with pytest.raises(ValueError, match="`ts`"):
        vb.sde.path_kl(jax.random.key(0), jnp.zeros(1), ts=jnp.array([0.0, 1.0, 0.5]), **kw)
    with pytest.raises(ValueError, match="`ts`"):
        vb.sde.path_kl(jax.random.key(0), jnp.zeros(1), ts=jnp.array([0.0]), **kw)
    with pytest.raises(ValueError, match="`noise`"):
        vb.sde.path_kl(None, jnp.zeros(1), ts=jnp.linspace(0, 1, 5), noise=jnp.zeros((3, 1)), **kw)
    with pytest.raises(ValueError, match="`hurst`"):
        vb.sde.mafbm_weights(1.2, jnp.ones(2), horizon=1.0)
    with pytest.raises(ValueError, match="`rates`"):
        vb.sde.mafbm_weights(0.3, jnp.array([1.0, -1.0]), horizon=1.0)
    with pytest.raises(ValueError, match="`num_components`"):
        vb.sde.mafbm_rates(1)
    with pytest.raises(ValueError, match="`max_rate`"):
        vb.sde.mafbm_rates(3, max_rate=0.5)
    with pytest.raises(ValueError, match="`weights`"):
        vb.sde.mafbm_covariance(1.0, 1.0, weights=jnp.ones(3), rates=jnp.ones(2))
    normal = _normal(0.0, 1.0)
    with pytest.raises(ValueError, match="`observed_at`"):
        vb.sde.elbo(
            jax.random.key(0),
            jnp.zeros((1, 1)),
            ts=jnp.linspace(0, 1, 5),
            observed_at=jnp.array([7]),
            initial_posterior=normal,
            initial_prior=normal,
            emission=lambda z, t: _normal(z, 1.0),
            **kw,
        )
    with pytest.raises(ValueError, match="`x`"):
        vb.sde.elbo(
            jax.random.key(0),
            jnp.zeros((2, 1)),
            ts=jnp.linspace(0, 1, 5),
            observed_at=jnp.array([4]),
            initial_posterior=normal,
            initial_prior=normal,
            emission=lambda z, t: _normal(z, 1.0),
            **kw,
        )
