"""Diffusion on SO(3) and the torus against exact answers: normalisation by quadrature, the
character series, the Gaussian limit, autodiff and finite differences on the group."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

D = vb.diffusion


def _maxwell(w, sigma):
    return math.sqrt(2 / math.pi) * w**2 / sigma**3 * np.exp(-(w**2) / (2 * sigma**2))


@pytest.mark.parametrize("sigma", [0.02, 0.2, 0.7, 1.5, 4.0])
def test_igso3_angle_density_integrates_to_one(sigma):
    with jax.enable_x64(True):
        w = jnp.linspace(0.0, math.pi, 40001, dtype=jnp.float64)
        total = float(jnp.trapezoid(D.igso3_angle_pdf(w, jnp.float64(sigma)), w))
    assert abs(total - 1.0) < 1e-7
    w32 = jnp.linspace(0.0, math.pi, 20001)
    assert abs(float(jnp.trapezoid(D.igso3_angle_pdf(w32, sigma), w32)) - 1.0) < 1e-4


@pytest.mark.parametrize("sigma", [0.5, 0.8, 1.2, 2.5])
def test_winding_sum_equals_the_character_series(sigma):
    with jax.enable_x64(True):
        w = jnp.linspace(1e-3, math.pi, 64, dtype=jnp.float64)
        series = D.igso3_series(w, jnp.float64(sigma), num_terms=3000)
        log_f = D.igso3_angle_log_density(w, jnp.float64(sigma))
        # Where the density is not vanishingly small (the series cancels in far tails).
        keep = series > 1e-8
        np.testing.assert_allclose(np.exp(log_f)[keep], series[keep], rtol=1e-8)
        assert keep.sum() > 40


def test_igso3_tends_to_the_gaussian_at_second_order():
    # For small sigma the rotation vector is ~ N(0, sigma^2 I): its norm is Maxwell.
    tv = {}
    with jax.enable_x64(True):
        for sigma in (0.2, 0.1, 0.05):
            w = np.linspace(0.0, math.pi, 200001)
            pdf = np.asarray(D.igso3_angle_pdf(jnp.asarray(w), jnp.float64(sigma)))
            tv[sigma] = 0.5 * np.trapezoid(np.abs(pdf - _maxwell(w, sigma)), w)
    assert tv[0.05] < tv[0.1] < tv[0.2] < 0.02
    assert 0.2 < tv[0.05] / tv[0.1] < 0.3  # O(sigma^2): halving sigma quarters the gap


def test_igso3_samples_follow_the_angle_density():
    sigma, n = 0.6, 10000
    v = jax.jit(D.igso3_sample, static_argnums=2)(jax.random.key(0), sigma, (n,))
    angle = np.linalg.norm(np.asarray(v), axis=-1)
    w = jnp.linspace(0.0, math.pi, 20001)
    pdf = D.igso3_angle_pdf(w, sigma)
    mean = float(jnp.trapezoid(w * pdf, w))
    second = float(jnp.trapezoid(w**2 * pdf, w))
    se = math.sqrt(second - mean**2) / math.sqrt(n)
    assert abs(angle.mean() - mean) < 4.5 * se
    axis = np.asarray(v) / angle[:, None]
    assert np.all(np.abs(axis.mean(0)) < 4.5 / math.sqrt(3 * n))  # uniform axis: var 1/3


def test_igso3_score_is_the_gradient_along_the_group():
    # d/de log f(angle(exp(v) exp(e u))) at e = 0 equals score(v) . u, by central differences.
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        sigma = jnp.float64(0.7)
        for _ in range(4):
            v = jnp.asarray(rng.normal(size=3))
            u = jnp.asarray(rng.normal(size=3))

            def log_f(e, v=v, u=u):
                r = D.so3_exp(v) @ D.so3_exp(e * u)
                return D.igso3_log_prob(D.so3_log(r), sigma)

            h = 1e-5
            numeric = (log_f(h) - log_f(-h)) / (2 * h)
            analytic = jnp.dot(D.igso3_score(v, sigma), u)
            np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-6, atol=1e-8)
            autodiff = jax.grad(lambda w: D.igso3_log_prob(w, sigma))(v)
            np.testing.assert_allclose(D.igso3_score(v, sigma), autodiff, rtol=1e-10)


def test_igso3_score_norm_matches_monte_carlo():
    sigma, n = 0.5, 4000
    v = D.igso3_sample(jax.random.key(1), sigma, (n,))
    sq = np.sum(np.asarray(jax.jit(D.igso3_score)(v, sigma)) ** 2, -1)
    expected = float(D.igso3_score_norm(sigma)) ** 2
    assert abs(sq.mean() - expected) < 4.5 * sq.std() / math.sqrt(n)


def test_so3_exp_and_log_are_inverse_everywhere():
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(64, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate(
        [[0.0, 1e-7, 1e-3, math.pi - 1e-3, math.pi - 1e-6], rng.uniform(0, 3.1, 59)]
    )
    v = jnp.asarray(axes * angles[:, None], jnp.float32)
    r = D.so3_exp(v)
    np.testing.assert_allclose(
        r @ jnp.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-6
    )
    np.testing.assert_allclose(jnp.linalg.det(r), 1.0, atol=1e-5)
    back = D.so3_exp(D.so3_log(r))
    np.testing.assert_allclose(back, r, atol=2e-5)
    np.testing.assert_allclose(D.so3_log(r)[5:], v[5:], atol=2e-5)


def test_igso3_log_prob_with_a_mean_is_the_centred_density():
    rng = np.random.default_rng(2)
    mu, x = (jnp.asarray(rng.normal(size=(5, 3)), jnp.float32) for _ in range(2))
    centred = D.so3_log(jnp.swapaxes(D.so3_exp(mu), -1, -2) @ D.so3_exp(x))
    np.testing.assert_allclose(
        D.igso3_log_prob(x, 0.4, mean=mu), D.igso3_log_prob(centred, 0.4), rtol=1e-5
    )


def test_igso3_is_float32_stable_and_differentiable_at_small_scale():
    v = jnp.array([[math.pi - 1e-3, 0.0, 0.0], [1e-6, 0.0, 0.0], [0.02, 0.01, 0.0]])
    lp = D.igso3_log_prob(v, 0.01)
    assert np.all(np.isfinite(lp))
    g = jax.grad(lambda s: jnp.sum(D.igso3_log_prob(v[1:], s)))(0.01)
    assert np.isfinite(g)


def test_se3_dsm_loss_is_zero_at_the_exact_scores_and_is_noise_prediction():
    noise = D.igso3_sample(jax.random.key(2), 0.4, (3,))
    eps = jax.random.normal(jax.random.key(3), (3, 3))
    eps_hat = eps + 0.1
    terms = D.se3_dsm_loss(
        D.igso3_score(noise, 0.4),
        -eps_hat / 0.3,
        rotation_noise=noise,
        rotation_sigma=0.4,
        translation_eps=eps,
        translation_sigma=0.3,
    )
    np.testing.assert_allclose(terms.rotation, 0.0, atol=1e-10)
    np.testing.assert_allclose(terms.translation, np.full(3, 0.03), rtol=1e-5)
    with pytest.raises(ValueError, match="rotation_score"):
        D.se3_dsm_loss(
            jnp.zeros((2, 3)),
            jnp.zeros((3, 3)),
            rotation_noise=noise,
            rotation_sigma=0.4,
            translation_eps=eps,
            translation_sigma=0.3,
        )


def test_igso3_rejects_bad_input():
    with pytest.raises(ValueError, match="rotvec"):
        D.igso3_log_prob(jnp.zeros(2), 0.5)
    with pytest.raises(ValueError, match="sigma"):
        D.igso3_log_prob(jnp.zeros(3), -1.0)
    with pytest.raises(ValueError, match="num_grid"):
        D.igso3_sample(jax.random.key(0), 0.5, (2,), num_grid=1)


@pytest.mark.parametrize("sigma", [0.05, 0.3, 1.5])
def test_wrapped_normal_density_and_score(sigma):
    with jax.enable_x64(True):
        x = jnp.linspace(0.0, 2 * math.pi, 40001, dtype=jnp.float64)
        p = jnp.exp(D.wrapped_normal_log_prob(x, 0.3, jnp.float64(sigma)))
        assert abs(float(jnp.trapezoid(p, x)) - 1.0) < 1e-9
        pts = jnp.linspace(-7.0, 7.0, 57, dtype=jnp.float64)
        autodiff = jax.vmap(jax.grad(lambda t: D.wrapped_normal_log_prob(t, 0.3, sigma)))(pts)
        np.testing.assert_allclose(D.wrapped_normal_score(pts, 0.3, sigma), autodiff, atol=1e-9)
        # Periodic, and the plain normal when the period dwarfs sigma.
        np.testing.assert_allclose(
            D.wrapped_normal_log_prob(pts + 2 * math.pi, 0.3, sigma),
            D.wrapped_normal_log_prob(pts, 0.3, sigma),
            atol=1e-9,
        )
        near = jnp.linspace(0.3 - 4 * sigma, 0.3 + 4 * sigma, 9)
        normal = -((near - 0.3) ** 2) / (2 * sigma**2) - math.log(sigma * math.sqrt(2 * math.pi))
        wide = D.wrapped_normal_log_prob(near, 0.3, sigma, period=1000.0)
        np.testing.assert_allclose(wide, normal, atol=1e-9)


def test_multi_sigma_score_loss():
    x = jnp.array([[0.1, 0.5], [0.9, 0.2]])
    noisy = jnp.array([[0.95, 0.52], [0.05, 0.3]])
    sigma = jnp.array([0.1, 0.3])
    target = D.wrapped_normal_score(noisy, x, sigma[:, None], period=1.0)
    np.testing.assert_allclose(D.multi_sigma_score_loss(target, noisy, x, sigma), 0.0, atol=1e-12)
    off = D.multi_sigma_score_loss(target + 1.0, noisy, x, sigma)
    np.testing.assert_allclose(off, 0.5 * 2 * sigma**2, rtol=1e-6)
    with pytest.raises(ValueError, match="score"):
        D.multi_sigma_score_loss(target[:, :1], noisy, x, sigma)
    with pytest.raises(ValueError, match="period"):
        D.wrapped_normal_log_prob(0.1, 0.0, 0.5, period=0.0)
