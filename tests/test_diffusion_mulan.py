"""MuLAN (auxiliary latent, per-dimension adaptive schedule) against closed forms.

Factorised Gaussian data ``x_k ~ N(mu_k, s_k^2)`` with the exact per-dimension denoiser: for
any fixed auxiliary latent ``u`` the continuous-time diffusion term is
``sum_k 0.5 log((1 + SNR_0 s_k^2) / (1 + SNR_1 s_k^2))`` whatever the ``u``-dependent
schedule between the fixed end points (VDM's invariance, per dimension), and it stays so for
every single ``x`` (the ``t`` integral of dimension ``k`` depends on ``gamma_k`` only through
its end points), so ``u`` may depend on ``x``. The latent KL of a linear Gaussian encoder has
a closed-form expectation under Gaussian ``x``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_diffusion_gaussian import (
    G_MAX,
    G_MIN,
    MU,
    S,
    closed_continuous,
    closed_prior_recon,
    gh_nodes,
    gl_nodes,
    linear,
)

import vbounds as vb
from vbounds.lab.models.denoisers import (
    AuxiliaryEncoder,
    FourierDenoiser,
    MuLAN,
    PolynomialSchedule,
)

vd = vb.diffusion
MUS = np.array([0.3, -1.0, 0.5])
SS = np.array([0.7, 0.2, 1.5])
LATENT = 4


def exact_eps_fn(gamma_fn, mu=MUS, s=SS):
    """The optimal noise prediction of factorised Gaussian data under ``gamma_fn(t, u)``."""
    mu, s = jnp.asarray(mu, jnp.float32), jnp.asarray(s, jnp.float32)

    def eps_fn(z, t, u):
        g = gamma_fn(t, u)
        a2, s2 = jax.nn.sigmoid(-g), jax.nn.sigmoid(g)
        return jnp.sqrt(s2) * (z - jnp.sqrt(a2) * mu) / (a2 * s**2 + s2)

    return eps_fn


def closed_total(mu=MUS, s=SS):
    """Expected prior + reconstruction + diffusion terms, summed over the dimensions."""
    return float(
        np.sum(closed_continuous(G_MIN, G_MAX, s) + closed_prior_recon(G_MIN, G_MAX, mu, s))
    )


def schedule_module():
    return PolynomialSchedule(
        LATENT, 3, hidden_sizes=(16,), gamma_min=G_MIN, gamma_max=G_MAX, rngs=nnx.Rngs(2)
    )


def test_diffusion_term_is_the_closed_form_for_every_auxiliary_latent():
    schedule = schedule_module()
    eps_fn = exact_eps_fn(schedule)
    us = 2.0 * jax.random.normal(jax.random.key(0), (3, LATENT))
    expected = float(np.sum(closed_continuous(G_MIN, G_MAX, SS)))
    ts, ws = gl_nodes(0.0, 1.0)
    nodes, weights = gh_nodes()
    ux = jnp.asarray(np.stack([nodes] * 3, axis=1), jnp.float32)
    w = jnp.asarray(weights, jnp.float32)

    @jax.jit
    def quadrature(u):
        def at(t):
            def f(nx, ne):
                x = jnp.asarray(MUS, jnp.float32) + jnp.asarray(SS, jnp.float32) * nx
                return vd.diffusion_loss(
                    x, ne, t, lambda z, s: eps_fn(z, s, u), lambda s: schedule(s, u)
                )

            grid = jax.vmap(lambda nx: jax.vmap(lambda ne: f(nx, ne))(ux))(ux)
            return jnp.einsum("i,j,ij->", w, w, grid)

        # Each dimension's term depends on its own (x_k, eps_k) only, so one 2-D node grid
        # shared by the dimensions integrates every term exactly.
        return jnp.sum(jax.vmap(at)(jnp.asarray(ts, jnp.float32)) * jnp.asarray(ws, jnp.float32))

    for u in us:
        assert float(quadrature(u)) == pytest.approx(expected, rel=2e-4)

    # The schedules really differ between the latents and from the linear one, and each runs
    # from G_MIN to G_MAX, increasing, in every dimension: the test above can fail.
    t = jnp.linspace(0.0, 1.0, 101)
    curves = np.asarray(jax.vmap(lambda u: jax.vmap(lambda s: schedule(s, u))(t))(us))
    np.testing.assert_allclose(
        curves[:, [0, -1], :], np.broadcast_to([[G_MIN], [G_MAX]], (3, 2, 3)), atol=1e-4
    )
    assert np.all(np.diff(curves, axis=1) > 0)
    assert np.max(np.abs(curves - np.asarray(linear(t))[None, :, None])) > 1.0
    assert np.max(np.abs(curves[0] - curves[1])) > 0.5


def test_auxiliary_kl_is_the_gaussian_closed_form():
    mean = np.array([0.5, -1.2, 0.0, 2.0])
    log_var = np.array([-0.3, 0.8, 0.0, -2.5])
    expected = 0.5 * np.sum(mean**2 + np.exp(log_var) - 1.0 - log_var)
    assert float(vd.auxiliary_kl(mean, log_var)) == pytest.approx(expected, rel=1e-6)
    assert float(vd.auxiliary_kl(np.zeros(3), np.zeros(3))) == 0.0

    schedule = schedule_module()
    terms = jax.jit(
        lambda k, m, lv: vd.mulan_vlb(
            k, jnp.asarray(MUS, jnp.float32), exact_eps_fn(schedule), schedule, m, lv
        )
    )(jax.random.key(1), mean, log_var)
    assert float(terms.latent) == pytest.approx(expected, rel=1e-6)
    assert float(terms.total) == pytest.approx(
        float(terms.prior + terms.reconstruction + terms.diffusion + terms.latent), rel=1e-6
    )


def test_mulan_vlb_is_unbiased_for_the_bound_with_the_latent_kl():
    """Monte Carlo over (x, u, t, eps, eps_0) against the closed form plus E_x KL(q(u|x))."""
    encoder = AuxiliaryEncoder(3, LATENT, hidden_sizes=(), rngs=nnx.Rngs(1))  # linear in x
    schedule = schedule_module()
    eps_fn = exact_eps_fn(schedule)
    layer = encoder.mlp.layers[0]
    kernel = np.asarray(layer.kernel[...], np.float64)
    bias = np.asarray(layer.bias[...], np.float64)
    mean_w, logv_w = kernel[:, :LATENT], kernel[:, LATENT:]
    mean_b, logv_b = bias[:LATENT], bias[LATENT:]
    # m = x W + b and l = x V + c are Gaussian: E[m^2] = (mu W + b)^2 + s^2 W^2,
    # E[exp(l)] = exp(E[l] + Var[l] / 2).
    e_m2 = (MUS @ mean_w + mean_b) ** 2 + (SS**2) @ mean_w**2
    e_l = MUS @ logv_w + logv_b
    var_l = (SS**2) @ logv_w**2
    expected_kl = 0.5 * np.sum(e_m2 + np.exp(e_l + 0.5 * var_l) - 1.0 - e_l)
    expected = closed_total() + expected_kl

    n = 1 << 15
    xs = jnp.asarray(MUS, jnp.float32) + jnp.asarray(SS, jnp.float32) * jax.random.normal(
        jax.random.key(3), (n, 3)
    )
    keys = jax.random.split(jax.random.key(4), n)

    def one(key, x):
        mean, log_var = encoder(x)
        return vd.mulan_vlb(key, x, eps_fn, schedule, mean, log_var)

    terms = jax.jit(jax.vmap(one))(keys, xs)
    totals = np.asarray(terms.total, np.float64)
    se = totals.std() / np.sqrt(n)
    assert abs(totals.mean() - expected) < 4.5 * se
    # Without the latent KL the estimate misses the bound by far more than its error.
    assert expected_kl > 20 * se


def test_data_dependent_schedule_without_the_latent_is_not_a_bound():
    """A schedule computed from x leaks x to a denoiser that reads the schedule."""
    entropy = 0.5 * np.log(2 * np.pi * np.e * S**2)  # no model's E[-log p(x)] is below it
    n = 4096

    def one(key, x):
        k_x, k_vlb = jax.random.split(key)

        def gamma_fn(t):  # increasing in t for |x| < G_MAX - G_MIN
            return linear(t) + x * t * (1 - t)

        def eps_fn(z, t):  # a fixed function of (z_t, t, gamma_t): it never sees x itself
            x_read = (gamma_fn(t) - linear(t)) / (t * (1 - t))
            g = gamma_fn(t)
            return (z - jnp.sqrt(jax.nn.sigmoid(-g)) * x_read) / jnp.sqrt(jax.nn.sigmoid(g))

        return vd.gaussian_vlb(k_vlb, x, eps_fn, gamma_fn).total

    with jax.enable_x64(True):
        xs = MU + S * jax.random.normal(jax.random.key(5), (n, 1), jnp.float64)
        totals = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(6), n), xs))
    se = totals.std() / np.sqrt(n)
    assert totals.mean() + 4.5 * se < entropy
    # Its diffusion term vanishes: what is left is the prior and reconstruction terms.
    assert totals.mean() == pytest.approx(closed_prior_recon(G_MIN, G_MAX), abs=4.5 * se + 1e-6)


def test_gradients_reach_encoder_schedule_and_denoiser_under_jit_and_vmap():
    model = MuLAN(3, latent_dim=LATENT, hidden_sizes=(16,), learn_end_points=True, rngs=nnx.Rngs(0))
    fixed = MuLAN(3, latent_dim=LATENT, hidden_sizes=(16,), rngs=nnx.Rngs(0))
    assert "ends" in nnx.state(model, nnx.Param)["schedule"]
    assert "ends" not in nnx.state(fixed, nnx.Param)["schedule"]
    xs = jnp.asarray(MUS, jnp.float32) + jax.random.normal(jax.random.key(0), (5, 3))
    keys = jax.random.split(jax.random.key(1), 5)
    graph, params = nnx.split(model, nnx.Param)

    def batch_terms(params):
        m = nnx.merge(graph, params)
        return jax.vmap(lambda k, x: m.vlb(k, x))(keys, xs)

    def means(params):
        terms = batch_terms(params)
        return jnp.stack([jnp.mean(terms.total), jnp.mean(terms.diffusion)]), terms

    # One reverse pass for the gradients of the total and of the diffusion term alone.
    grads, terms = jax.jit(jax.jacrev(means, has_aux=True))(params)
    g_total = jax.tree.map(lambda g: g[0], grads)
    g_diffusion = jax.tree.map(lambda g: g[1], grads)

    single = nnx.jit(lambda m, k, x: (m.vlb(k, x), m.encoder(x)))
    for i in range(5):  # the batched values are the per-example ones
        one, (mean, log_var) = single(model, keys[i], xs[i])
        np.testing.assert_allclose(
            [getattr(terms, f)[i] for f in one._fields], list(one), rtol=2e-5, atol=1e-5
        )
        m, lv = np.asarray(mean, np.float64), np.asarray(log_var, np.float64)
        kl = 0.5 * np.sum(m**2 + np.exp(lv) - 1.0 - lv)
        assert float(one.latent) == pytest.approx(kl, rel=1e-5)
    for name in ("encoder", "schedule", "denoiser"):
        leaves = [np.asarray(v) for v in jax.tree.leaves(g_total[name])]
        assert all(np.all(np.isfinite(v)) for v in leaves)
        assert max(np.max(np.abs(v)) for v in leaves) > 0, name
    # u is reparameterised: the encoder also learns through the schedule and the denoiser.
    enc = [np.asarray(v) for v in jax.tree.leaves(g_diffusion["encoder"])]
    assert max(np.max(np.abs(v)) for v in enc) > 0
    assert np.all(np.abs(np.asarray(g_total["schedule"]["ends"][...])) > 0)


def test_bad_shapes_raise_naming_the_argument():
    schedule = schedule_module()
    eps_fn = exact_eps_fn(schedule)
    key, x = jax.random.key(0), jnp.asarray(MUS, jnp.float32)
    mean, log_var = jnp.zeros(LATENT), jnp.zeros(LATENT)
    with pytest.raises(ValueError, match="aux_log_variance"):
        vd.mulan_vlb(key, x, eps_fn, schedule, mean, jnp.zeros(LATENT + 1))
    with pytest.raises(ValueError, match="aux_mean"):
        vd.mulan_vlb(key, x, eps_fn, schedule, jnp.zeros(0), jnp.zeros(0))
    with pytest.raises(ValueError, match="gamma_fn"):
        vd.mulan_vlb(key, x, eps_fn, lambda t, u: jnp.zeros(4) + t, mean, log_var)
    with pytest.raises(ValueError, match="eps_fn"):
        vd.mulan_vlb(key, x, lambda z, t, u: z[:2], schedule, mean, log_var)
    with pytest.raises(TypeError, match="eps_fn"):
        vd.mulan_vlb(key, x, None, schedule, mean, log_var)
    with pytest.raises(ValueError, match="u"):
        schedule(0.5, jnp.zeros(LATENT + 1))
    encoder = AuxiliaryEncoder(3, LATENT, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="x"):
        encoder(jnp.zeros(4))
    net = FourierDenoiser(3, hidden_sizes=(8,), context_features=LATENT, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="context"):
        net(x, 0.5)
    with pytest.raises(ValueError, match="context"):
        net(x, 0.5, jnp.zeros(LATENT - 1))
    with pytest.raises(ValueError, match="context"):
        FourierDenoiser(3, hidden_sizes=(8,), rngs=nnx.Rngs(0))(x, 0.5, jnp.zeros(2))


def test_injected_noise_reproduces_the_draw():
    # t, eps, eps_0 and the latent's noise replace the draws: the terms are gaussian_vlb's at
    # u = mean + exp(log_var / 2) * aux_noise, plus the latent KL, whatever the key.
    x, mean, log_var = jnp.array([0.3, -1.0, 0.5]), jnp.array([0.2, -0.1]), jnp.array([0.0, -1.0])
    aux_noise = jnp.array([0.7, -0.4])

    def gamma_fn(t, u):
        return linear(t) + 0.1 * jnp.sum(u) * t * (1.0 - t) * jnp.ones(3)

    def eps_fn(z, t, u):
        return 0.5 * z + jnp.sum(u)

    given = {"t": 0.3, "eps": jnp.array([0.5, -1.0, 0.2]), "eps_0": jnp.array([1.2, 0.1, 0.0])}
    terms = [
        vd.mulan_vlb(
            jax.random.key(k), x, eps_fn, gamma_fn, mean, log_var, aux_noise=aux_noise, **given
        )
        for k in (0, 1)
    ]
    np.testing.assert_array_equal(jnp.stack(terms[0]), jnp.stack(terms[1]))
    u = mean + jnp.exp(0.5 * log_var) * aux_noise
    vdm = vd.gaussian_vlb(
        jax.random.key(2), x, lambda z, t: eps_fn(z, t, u), lambda t: gamma_fn(t, u), **given
    )
    np.testing.assert_allclose(jnp.stack(terms[0][:3]), jnp.stack(vdm), rtol=1e-6)
    np.testing.assert_allclose(terms[0].latent, vd.auxiliary_kl(mean, log_var), rtol=1e-6)
