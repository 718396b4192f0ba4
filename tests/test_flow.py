"""Flow matching against closed forms: Gaussian source and target, whose optimal velocity,
irreducible CFM constant and log-density are known exactly.

Source ``N(0, I)``, target ``N(m, s^2 I)``, straight path ``x_t = (1 - t) x0 + t x1``:
``x_t ~ N(t m, v_t I)`` with ``v_t = (1 - t)^2 + t^2 s^2``, the optimal velocity is
``E[u | x_t] = m + (t s^2 - (1 - t)) (x_t - t m) / v_t`` and the CFM loss at it is the
conditional variance of ``u = x1 - x0``, ``d s^2 / v_t`` at time ``t``, which integrates over
``t ~ U(0, 1)`` to ``d s pi / 2``.
"""

import functools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_diffusion_gaussian import MU, S, analytic_eps_fn, closed_continuous, closed_prior_recon

import vbounds as vb

vf = vb.flow
vd = vb.diffusion
M = jnp.array([1.0, -0.5])
SCALE = 0.6


def optimal_velocity(m, s):
    def velocity_fn(x_t, t):
        v_t = (1.0 - t) ** 2 + t**2 * s**2
        return m + (t * s**2 - (1.0 - t)) / v_t * (x_t - t * m)

    return velocity_fn


def within(samples, expected, sigmas=4.5):
    samples = np.asarray(samples, np.float64)
    se = samples.std(ddof=1) / np.sqrt(samples.size)
    assert abs(samples.mean() - expected) < sigmas * se + 1e-6, (samples.mean(), expected, se)


def test_cfm_loss_at_the_optimal_velocity_is_its_irreducible_constant():
    n, d = 8000, M.shape[0]
    v_star = optimal_velocity(M, SCALE)
    keys = jax.random.split(jax.random.key(0), n)
    x1 = M + SCALE * jax.random.normal(jax.random.key(1), (n, d))

    @jax.jit
    def losses(t):
        fixed = jax.vmap(lambda k, x: vf.cfm_loss(k, x, v_star, t=t))(keys, x1)
        drawn = jax.vmap(lambda k, x: vf.cfm_loss(k, x, v_star))(keys, x1)
        shift = jnp.array([0.3, -0.2])
        wrong = jax.vmap(lambda k, x: vf.cfm_loss(k, x, lambda y, s: v_star(y, s) + shift, t=t))(
            keys, x1
        )
        return fixed, drawn, wrong - fixed

    for t in (0.1, 0.5, 0.9):
        fixed, drawn, excess = losses(jnp.asarray(t))
        within(fixed, d * SCALE**2 / ((1 - t) ** 2 + t**2 * SCALE**2))
        # Any other field pays exactly its squared distance to the optimum on top.
        within(excess, 0.3**2 + 0.2**2)
    within(drawn, d * SCALE * np.pi / 2)


def test_paths_and_their_velocities():
    with jax.enable_x64(True):
        x0, x1 = jnp.array([0.3, -1.2]), jnp.array([1.5, 0.4])
        h = 1e-6
        gamma_fn = functools.partial(vd.linear_gamma, gamma_min=-6.0, gamma_max=6.0)
        for path in (
            vf.ot_path,
            functools.partial(vf.ot_path, sigma_min=0.1),
            functools.partial(vf.vp_path, gamma_fn=gamma_fn),
        ):
            x_t, u_t = path(x0, x1, 0.4)
            ahead, _ = path(x0, x1, 0.4 + h)
            behind, _ = path(x0, x1, 0.4 - h)
            np.testing.assert_allclose(u_t, (ahead - behind) / (2 * h), rtol=1e-7)
        x_t, _ = vf.vp_path(x0, x1, 0.4, gamma_fn=gamma_fn)
        g = 6.0 - 12.0 * 0.4  # gamma at diffusion time 1 - t
        np.testing.assert_allclose(
            x_t, np.sqrt(1 / (1 + np.exp(g))) * x1 + np.sqrt(1 / (1 + np.exp(-g))) * x0
        )
        start, _ = vf.vp_path(x0, x1, 0.0, gamma_fn=gamma_fn)
        x_t, _ = vf.ot_path(x0, x1, 1.0, sigma_min=0.1)
        np.testing.assert_allclose(x_t, x1 + 0.1 * x0)
        np.testing.assert_allclose(
            start, x0 * np.sqrt(1 / (1 + np.exp(-6.0))) + x1 * np.sqrt(1 / (1 + np.exp(6.0)))
        )


def test_ode_log_likelihood_of_a_gaussian_flow_is_exact_and_converges():
    with jax.enable_x64(True):
        m, s = jnp.array([1.0, -0.5]), 0.6
        v_star = optimal_velocity(m, s)
        x = jnp.array([[0.7, -0.1], [1.9, -1.4], [0.0, 0.5]])
        exact = np.sum(distrax.Normal(m, s).log_prob(x), axis=-1)
        errors = {}
        for method, steps in (("euler", (16, 32, 64)), ("rk4", (4, 8, 16))):
            for n in steps:
                ll = jax.vmap(
                    lambda y, n=n, method=method: vf.ode_log_likelihood(
                        y, v_star, num_steps=n, method=method
                    )
                )(x)
                errors[method, n] = np.max(np.abs(np.asarray(ll) - exact))
        # First order: the error halves with the step; fourth order: it falls ~16x.
        for a, b in ((16, 32), (32, 64)):
            assert 1.7 < errors["euler", a] / errors["euler", b] < 2.3, errors
        for a, b in ((4, 8), (8, 16)):
            assert 10 < errors["rk4", a] / errors["rk4", b] < 25, errors
        assert errors["rk4", 16] < 1e-5
        # Samples of the same flow land on the target's moments.
        x0 = jax.random.normal(jax.random.key(0), (4000, 2))
        samples = jax.vmap(lambda y: vf.ode_sample(y, v_star, num_steps=16))(x0)
        np.testing.assert_allclose(samples, m + s * x0, atol=1e-5)  # the affine transport map


def test_hutchinson_trace_is_unbiased_for_the_exact_trace():
    w = jnp.array([[0.5, -1.0, 0.3], [0.8, 0.2, -0.6], [-0.4, 0.9, 0.1]])

    def velocity_fn(x, t):
        return jnp.tanh(w @ x + t) - 0.5 * x

    x = jnp.array([0.3, -0.7, 1.1])
    exact = vf.ode_log_likelihood(x, velocity_fn, num_steps=8)
    keys = jax.random.split(jax.random.key(0), 400)
    estimates = jax.jit(
        jax.vmap(
            lambda k: vf.ode_log_likelihood(x, velocity_fn, num_steps=8, trace="hutchinson", key=k)
        )
    )(keys)
    assert np.std(estimates) > 0.01  # the probe matters for this field
    within(estimates, float(exact))


def test_variational_flow_matching_with_a_gaussian_posterior_is_weighted_cfm():
    x1, x0, t, var = jnp.array([0.4, -1.0]), jnp.array([1.2, 0.3]), 0.3, 0.5

    def velocity_fn(x_t, s):
        return jnp.sin(x_t) + s

    def posterior_fn(x_t, s):  # the mean that makes endpoint_velocity equal velocity_fn
        return distrax.Normal(x_t + (1.0 - s) * velocity_fn(x_t, s), jnp.sqrt(var))

    vfm = vf.vfm_loss(jax.random.key(0), x1, posterior_fn, t=t, x0=x0)
    cfm = vf.cfm_loss(jax.random.key(0), x1, velocity_fn, t=t, x0=x0)
    np.testing.assert_allclose(
        vfm, (1 - t) ** 2 / (2 * var) * cfm + np.log(2 * np.pi * var), rtol=1e-6
    )
    x_t, _ = vf.ot_path(x0, x1, t)
    np.testing.assert_allclose(
        vf.endpoint_velocity(posterior_fn(x_t, t).mean(), x_t, t), velocity_fn(x_t, t), rtol=1e-6
    )


def test_catflow_loss_and_its_exact_posterior_transport():
    k = 3
    probs = jnp.array([0.5, 0.3, 0.2])
    x1, x0, t = jnp.array([2, 0]), jnp.array([[0.1, -0.3, 0.8], [1.0, 0.0, -1.0]]), 0.6

    def logits_fn(x_t, s):
        return jnp.stack([x_t[..., 0], 2 * x_t[..., 1], s * x_t[..., 2]], axis=-1)

    loss = vf.catflow_loss(jax.random.key(0), x1, logits_fn, num_classes=k, t=t, x0=x0)
    x_t = (1 - t) * np.asarray(x0) + t * np.eye(k)[np.asarray(x1)]
    logits = np.asarray(logits_fn(jnp.asarray(x_t), t), np.float64)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(loss, -log_softmax[[0, 1], [2, 0]].sum(), rtol=1e-6)

    def exact_logits(x_t, s):  # log p(x1 = j | x_t), p(x_t | j) = N(s e_j, (1 - s)^2 I)
        return jnp.log(probs) - 0.5 * jnp.sum((x_t - s * jnp.eye(k)) ** 2, -1) / (1 - s) ** 2

    def velocity_fn(x_t, s):
        return vf.endpoint_velocity(jax.nn.softmax(exact_logits(x_t, s)), x_t, s)

    n = 1500
    starts = jax.random.normal(jax.random.key(1), (n, k))
    # Euler never evaluates the field at t = 1, where the endpoint velocity is singular.
    ends = jax.jit(jax.vmap(lambda y: vf.ode_sample(y, velocity_fn, num_steps=30, method="euler")))(
        starts
    )
    classes = np.argmax(np.asarray(ends), axis=-1)
    assert np.max(np.abs(np.asarray(ends) - np.eye(k)[classes])) < 0.05  # onto the vertices
    for j in range(k):
        within((classes == j).astype(float), float(probs[j]))


def test_flow_prior_vlb_is_the_vdm_bound_of_the_implied_denoiser():
    t_min, t_max = 0.01, 0.995
    v_star = optimal_velocity(jnp.array([MU]), S)

    def gamma_fn(s):
        u = t_max - (t_max - t_min) * s
        return 2.0 * (jnp.log1p(-u) - jnp.log(u))

    z, s, eps, eps_0 = jnp.array([0.9]), 0.37, jnp.array([-0.4]), jnp.array([1.3])
    key = jax.random.key(0)
    terms = vf.flow_prior_vlb(key, z, v_star, t_min=t_min, t_max=t_max, t=s, eps=eps, eps_0=eps_0)
    vdm = vd.gaussian_vlb(key, z, analytic_eps_fn(gamma_fn), gamma_fn, t=s, eps=eps, eps_0=eps_0)
    np.testing.assert_allclose(jnp.stack(terms), jnp.stack(vdm), rtol=1e-4)
    # The diffusion term is flow matching weighted by (t_max - t_min) t / (1 - t).
    u = t_max - (t_max - t_min) * s
    cfm = vf.cfm_loss(key, z, v_star, t=u, x0=eps)
    np.testing.assert_allclose(terms.diffusion, (t_max - t_min) * u / (1 - u) * cfm, rtol=1e-4)

    n = 5000
    keys = jax.random.split(jax.random.key(1), n)
    zs = MU + S * jax.random.normal(jax.random.key(2), (n, 1))
    totals = jax.jit(
        jax.vmap(lambda k, x: vf.flow_prior_vlb(k, x, v_star, t_min=t_min, t_max=t_max).total)
    )(keys, zs)
    g0, g1 = float(gamma_fn(0.0)), float(gamma_fn(1.0))
    within(totals, float(closed_continuous(g0, g1) + closed_prior_recon(g0, g1)))


def test_gradients_under_jit_and_vmap():
    w = jnp.array([[0.5, -0.2], [0.1, 0.3]])

    def loss(w, keys, x1):
        return jnp.mean(jax.vmap(lambda k, x: vf.cfm_loss(k, x, lambda y, t: w @ y + t))(keys, x1))

    grad = jax.jit(jax.grad(loss))(w, jax.random.split(jax.random.key(0), 8), jnp.ones((8, 2)))
    assert grad.shape == (2, 2) and np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: vf.cfm_loss(jax.random.key(0), jnp.ones(2), lambda x, t: x, x0=jnp.ones(3)),
            ValueError,
            "`x0`",
        ),
        (
            lambda: vf.cfm_loss(jax.random.key(0), jnp.ones(2), lambda x, t: x[:1]),
            ValueError,
            "`velocity_fn`",
        ),
        (
            lambda: vf.cfm_loss(jax.random.key(0), jnp.ones(2), lambda x, t: x, t=jnp.ones(2)),
            ValueError,
            "`t`",
        ),
        (
            lambda: vf.ode_sample(jnp.ones(2), lambda x, t: x, num_steps=4, method="rk2"),
            ValueError,
            "`method`",
        ),
        (
            lambda: vf.ode_log_likelihood(jnp.ones(2), lambda x, t: x, num_steps=0),
            ValueError,
            "`num_steps`",
        ),
        (
            lambda: vf.ode_log_likelihood(
                jnp.ones(2), lambda x, t: x, num_steps=2, trace="hutchinson"
            ),
            ValueError,
            "`key`",
        ),
        (
            lambda: vf.ode_log_likelihood(jnp.ones(2), lambda x, t: x, num_steps=2, trace="x"),
            ValueError,
            "`trace`",
        ),
        (
            lambda: vf.catflow_loss(jax.random.key(0), jnp.ones(2), lambda x, t: x, num_classes=3),
            TypeError,
            "`x1`",
        ),
        (
            lambda: vf.catflow_loss(
                jax.random.key(0), jnp.array([0]), lambda x, t: x[..., :2], num_classes=3
            ),
            ValueError,
            "`logits_fn`",
        ),
        (
            lambda: vf.flow_prior_vlb(jax.random.key(0), jnp.ones(2), lambda x, t: x, t_min=0.0),
            ValueError,
            "`t_min`",
        ),
        (
            lambda: vf.cfm_loss(jax.random.key(0), jnp.ones(2), "velocity"),
            TypeError,
            "`velocity_fn`",
        ),
    ],
)
def test_bad_arguments_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()
