"""vb.free_energy against Gaussian states with a known free-energy difference.

State A is N(0, 1), state B is N(MU, S^2), with reduced potentials u_A = x^2 / 2 and
u_B = (x - MU)^2 / (2 S^2): dF = -log(Z_B / Z_A) = -log S exactly.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

MU, S = 0.5, 1.3
DF = -math.log(S)


def _u_a(x):
    return 0.5 * x**2


def _u_b(x):
    return 0.5 * (x - MU) ** 2 / S**2


def _samples(key, n, m):
    ka, kb = jax.random.split(key)
    return jax.random.normal(ka, (n,)), MU + S * jax.random.normal(kb, (m,))


def _works(key, n, m):
    x, y = _samples(key, n, m)
    return _u_b(x) - _u_a(x), _u_a(y) - _u_b(y)


def _mean_se(x):
    x = np.asarray(x, np.float64)
    return x.mean(), x.std(ddof=1) / math.sqrt(x.size)


def test_bounds_bracket_df_by_the_two_kl_divergences():
    # Exact expectations: E_A w_f = (1 + MU^2) / (2 S^2) - 1/2, E_B w_r = (S^2 + MU^2 - 1) / 2.
    upper = (1 + MU**2) / (2 * S**2) - 0.5
    lower = -(S**2 + MU**2 - 1) / 2
    kl_ab = math.log(S) + (1 + MU**2) / (2 * S**2) - 0.5
    kl_ba = -math.log(S) + (S**2 + MU**2) / 2 - 0.5
    assert lower < DF < upper
    assert upper - DF == pytest.approx(kl_ab) and DF - lower == pytest.approx(kl_ba)
    w_f, w_r = _works(jax.random.key(0), 20000, 20000)
    low, high = vb.free_energy.bounds(w_f, w_r)
    for value, exact, samples in ((low, lower, -w_r), (high, upper, w_f)):
        mean, se = _mean_se(samples)
        assert float(value) == pytest.approx(mean, abs=1e-5)
        assert abs(mean - exact) < 4.5 * se


def test_jarzynski_and_bar_recover_the_gaussian_free_energy():
    seeds = jax.random.split(jax.random.key(1), 32)
    w_f, w_r = jax.vmap(lambda k: _works(k, 2000, 2000))(seeds)
    jarzynski = jax.jit(jax.vmap(vb.free_energy.jarzynski))(w_f)
    bar = jax.jit(jax.vmap(vb.free_energy.bar))(w_f, w_r)
    for estimates in (jarzynski, bar):
        mean, se = _mean_se(estimates)
        assert abs(mean - DF) < 4.5 * se, (mean, se, DF)
    # BAR uses both directions: lower variance than the one-sided estimate.
    assert np.var(bar) < np.var(jarzynski)


def _bennett_sides(delta_f, w_f, w_r):
    w_f, w_r = np.asarray(w_f, np.float64), np.asarray(w_r, np.float64)
    m = math.log(w_f.size / w_r.size)
    left = np.sum(1.0 / (1.0 + np.exp(m + w_f - delta_f)))
    right = np.sum(1.0 / (1.0 + np.exp(-m + w_r + delta_f)))
    return left, right


def test_bar_solves_bennetts_equation_and_differentiates_implicitly():
    # Non-Gaussian, unequal counts: the root of Bennett's equation, whatever the works.
    key_f, key_r = jax.random.split(jax.random.key(2))
    w_f = 1.5 + jax.random.gumbel(key_f, (37,))
    w_r = -0.5 + 2.0 * jax.random.uniform(key_r, (53,))
    delta_f = float(jax.jit(vb.free_energy.bar)(w_f, w_r))
    left, right = _bennett_sides(delta_f, w_f, w_r)
    assert left == pytest.approx(right, rel=1e-5)
    # Implicit-function gradient: d dF / d w = -(dg/dw) / (dg/d dF) with g = left - right.
    f = 1.0 / (1.0 + np.exp(math.log(37 / 53) + np.asarray(w_f, np.float64) - delta_f))
    r = 1.0 / (1.0 + np.exp(-math.log(37 / 53) + np.asarray(w_r, np.float64) + delta_f))
    dg_dwf, dg_dwr = -f * (1 - f), r * (1 - r)
    dg_ddf = np.sum(f * (1 - f)) + np.sum(r * (1 - r))
    grad_f, grad_r = jax.jit(jax.grad(vb.free_energy.bar, argnums=(0, 1)))(w_f, w_r)
    np.testing.assert_allclose(grad_f, -dg_dwf / dg_ddf, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(grad_r, -dg_dwr / dg_ddf, rtol=1e-4, atol=1e-7)


def test_mbar_with_two_states_is_bar_and_recovers_three_gaussians():
    w_f, w_r = _works(jax.random.key(3), 300, 200)
    # Pooled samples: x_n ~ A then y_m ~ B; u_0 = u_A, u_1 = u_B, so u_1 - u_0 are the works.
    pooled = jnp.concatenate(_samples(jax.random.key(3), 300, 200))
    u = jnp.stack([_u_a(pooled), _u_b(pooled)])
    f = jax.jit(vb.free_energy.mbar)(u, jnp.array([300, 200]))
    assert float(f[0]) == 0.0
    assert float(f[1]) == pytest.approx(float(jax.jit(vb.free_energy.bar)(w_f, w_r)), abs=1e-4)

    # Three states N(0, s_k^2): f_k = -log s_k; spread over seeds gives the standard error.
    scales = jnp.array([1.0, 1.5, 0.8])

    def run(key):
        samples = (scales[:, None] * jax.random.normal(key, (3, 400))).reshape(-1)
        u = 0.5 * samples[None] ** 2 / scales[:, None] ** 2
        return vb.free_energy.mbar(u, jnp.array([400, 400, 400]))

    estimates = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(4), 16))
    for k in (1, 2):
        mean, se = _mean_se(estimates[:, k])
        assert abs(mean + math.log(float(scales[k]))) < 4.5 * se


def test_exact_map_makes_every_work_equal_df():
    # M(x) = MU + S x carries N(0, 1) onto N(MU, S^2); log|det| = log S.
    x = jax.random.normal(jax.random.key(5), (64,))
    w_f = vb.free_energy.mapped_work(_u_a(x), _u_b(MU + S * x), jnp.full(64, math.log(S)))
    y = MU + S * jax.random.normal(jax.random.key(6), (64,))
    w_r = vb.free_energy.mapped_work(_u_b(y), _u_a((y - MU) / S), jnp.full(64, -math.log(S)))
    np.testing.assert_allclose(w_f, DF, atol=1e-5)
    np.testing.assert_allclose(w_r, -DF, atol=1e-5)
    assert float(vb.free_energy.jarzynski(w_f)) == pytest.approx(DF, abs=1e-5)
    assert float(vb.free_energy.bar(w_f, w_r)) == pytest.approx(DF, abs=1e-5)
    low, high = vb.free_energy.bounds(w_f, w_r)
    assert float(low) == pytest.approx(DF, abs=1e-5) and float(high) == pytest.approx(DF, abs=1e-5)
    # The identity map gives the plain works.
    np.testing.assert_allclose(
        vb.free_energy.mapped_work(_u_a(x), _u_b(x), jnp.zeros(64)), _u_b(x) - _u_a(x)
    )


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="w_forward"):
        vb.free_energy.jarzynski(jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="w_reverse"):
        vb.free_energy.bar(jnp.zeros(3), jnp.array([0.0, jnp.nan]))
    with pytest.raises(ValueError, match="w_reverse"):
        vb.free_energy.bounds(jnp.zeros(3), jnp.zeros(0))
    with pytest.raises(ValueError, match="num_samples"):
        vb.free_energy.mbar(jnp.zeros((2, 5)), jnp.array([2, 2]))
    with pytest.raises(ValueError, match="reduced_potentials"):
        vb.free_energy.mbar(jnp.zeros((1, 5)), jnp.array([5]))
    with pytest.raises(ValueError, match="log_det_jacobian"):
        vb.free_energy.mapped_work(jnp.zeros(3), jnp.zeros(3), jnp.zeros(2))
