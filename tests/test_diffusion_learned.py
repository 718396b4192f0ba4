"""Learned forward processes (NDM, DiffEnc, NFDM) against VDM and independent formulas.

With ``F(x, t) = x`` each bound is ``gaussian_vlb`` value for value on the same draws; NFDM
with NDM's forward process is NDM (two different formulas: Girsanov drifts against the
posterior-mean gap); the ``T``-step bound at fixed noise converges to the continuous-time
integral at first order; DiffEnc's weighted step KL is the Gaussian KL with the reverse
variance divided by the ratio, computed from the posterior by hand in float64.
"""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

vd = vb.diffusion
X = jnp.array([0.4, -0.9, 0.2])
EPS, EPS_0 = jnp.array([0.3, -1.1, 0.8]), jnp.array([-0.5, 0.2, 1.4])


def narrow(t):
    return vd.linear_gamma(t, gamma_min=-4.0, gamma_max=4.0)


def eps_fn(z, t):
    return 0.3 * z + jnp.sin(3.0 * t) * jnp.array([0.2, -0.1, 0.4])


def data_prediction(gamma_fn, eps_fn):
    def x_fn(z, t):
        gamma = gamma_fn(t)
        return (z - jnp.sqrt(jax.nn.sigmoid(gamma)) * eps_fn(z, t)) / jnp.sqrt(
            jax.nn.sigmoid(-gamma)
        )

    return x_fn


def identity(x, t):
    return x


def transform(x, t):  # F(x, 0) = x, non-linear in x and t
    return x * (1.0 + 0.5 * t) + 0.3 * t**2 * jnp.tanh(x)


@pytest.mark.parametrize("num_steps", [None, 10])
@pytest.mark.parametrize("decoder", ["gaussian", "discretized"])
def test_identity_transform_is_gaussian_vlb_value_for_value(num_steps, decoder):
    x = jnp.round((X + 1) * 127.5) / 127.5 - 1 if decoder == "discretized" else X
    x_fn = data_prediction(vd.linear_gamma, eps_fn)
    options = {"num_steps": num_steps, "decoder": decoder}
    for key in jax.random.split(jax.random.key(0), 3):
        expected = jnp.stack(vd.gaussian_vlb(key, x, eps_fn, vd.linear_gamma, **options))
        for bound in (vd.ndm_vlb, vd.diffenc_vlb):
            got = jnp.stack(bound(key, x, x_fn, identity, vd.linear_gamma, **options))
            np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)
    given = {"t": 0.3, "eps": EPS, "eps_0": EPS_0}
    expected = jnp.stack(vd.gaussian_vlb(key, x, eps_fn, vd.linear_gamma, **options, **given))
    got = jnp.stack(vd.ndm_vlb(key, x, x_fn, identity, vd.linear_gamma, **options, **given))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)


def vdm_forward(transform_fn, gamma_fn):
    def forward_fn(x, t):
        gamma = gamma_fn(t)
        return jnp.sqrt(jax.nn.sigmoid(-gamma)) * transform_fn(x, t), jnp.sqrt(
            jax.nn.sigmoid(gamma)
        )

    def g2_fn(t):
        gamma, dgamma = jax.jvp(gamma_fn, (t,), (jnp.ones_like(t),))
        return jax.nn.sigmoid(gamma) * dgamma

    return forward_fn, g2_fn


def test_nfdm_with_a_vdm_or_ndm_forward_process_is_that_bound():
    x_fn = data_prediction(narrow, eps_fn)
    g0 = narrow(0.0)

    def decoder_nll_fn(x, z0):
        return vd.decoder_nll(x, z0, g0)

    for transform_fn in (identity, transform):
        forward_fn, g2_fn = vdm_forward(transform_fn, narrow)
        for key in jax.random.split(jax.random.key(1), 3):
            nfdm = vd.nfdm_vlb(key, X, x_fn, forward_fn, g2_fn, decoder_nll_fn=decoder_nll_fn)
            ndm = vd.ndm_vlb(key, X, x_fn, transform_fn, narrow)
            np.testing.assert_allclose(jnp.stack(nfdm), jnp.stack(ndm), rtol=1e-4, atol=1e-4)
            if transform_fn is identity:
                vdm = vd.gaussian_vlb(key, X, eps_fn, narrow)
                np.testing.assert_allclose(jnp.stack(nfdm), jnp.stack(vdm), rtol=1e-4, atol=1e-4)


def test_discrete_time_converges_to_continuous_time():
    with jax.enable_x64(True):
        x, eps = X.astype(jnp.float64), EPS.astype(jnp.float64)

        def x_fn(z, t):  # a rough denoiser: 0.9 of the noise-free guess, shifted
            return 0.9 * z / jnp.sqrt(jax.nn.sigmoid(-narrow(t))) + 0.05

        def diffusion(t, num_steps):
            terms = vd.ndm_vlb(
                jax.random.key(0), x, x_fn, transform, narrow, num_steps=num_steps, t=t, eps=eps
            )
            return terms.diffusion

        nodes, weights = np.polynomial.legendre.leggauss(16)
        edges = np.linspace(0.0, 1.0, 41)
        half = np.diff(edges)[:, None] / 2
        ts = (edges[:-1, None] + half * (nodes + 1)).ravel()
        ws = (half * weights).ravel()
        continuous = float(jnp.sum(jax.jit(jax.vmap(lambda t: diffusion(t, None)))(ts) * ws))
        errors = []
        for num_steps in (10, 100, 1000):
            mids = (np.arange(1, num_steps + 1) - 0.5) / num_steps
            discrete = float(
                jnp.mean(jax.jit(jax.vmap(lambda t, n=num_steps: diffusion(t, n)))(mids))
            )
            errors.append(abs(discrete - continuous))
        assert continuous > 0.1
        assert 7 < errors[0] / errors[1] < 13 and 7 < errors[1] / errors[2] < 13, errors
        assert errors[2] < 1e-2 * continuous


def test_diffenc_weighted_step_kl_is_the_gaussian_kl_with_the_variance_divided():
    with jax.enable_x64(True):
        x, eps = X.astype(jnp.float64), EPS.astype(jnp.float64)
        num_steps, step = 10, 4
        t_i, s_i = step / num_steps, (step - 1) / num_steps

        def x_fn(z, t):
            return 0.5 * z - 0.2

        g_t, g_s = float(narrow(t_i)), float(narrow(s_i))
        a_t, a_s = np.sqrt(1 / (1 + np.exp(g_t))), np.sqrt(1 / (1 + np.exp(g_s)))
        v_t, v_s = 1 / (1 + np.exp(-g_t)), 1 / (1 + np.exp(-g_s))
        z_t = a_t * np.asarray(transform(x, t_i)) + np.sqrt(v_t) * np.asarray(eps)
        x_hat = np.asarray(x_fn(jnp.asarray(z_t), t_i))
        ratio = (a_t**2 / v_t) / (a_s**2 / v_s)  # SNR_t / SNR_s
        var = v_s * (1 - ratio)
        coef = np.sqrt(v_s - var) / np.sqrt(v_t)

        def mean(data):
            f_s, f_t = np.asarray(transform(data, s_i)), np.asarray(transform(data, t_i))
            return a_s * f_s + coef * (z_t - a_t * f_t)

        for w in (1.0, 1.7, 0.6):
            q = distrax.Normal(mean(x), np.sqrt(var))
            p = distrax.Normal(mean(x_hat), np.sqrt(var / w))
            expected = num_steps * float(jnp.sum(q.kl_divergence(p)))
            terms = vd.diffenc_vlb(
                jax.random.key(0),
                x,
                x_fn,
                transform,
                narrow,
                variance_ratio=w,
                num_steps=num_steps,
                t=(step - 0.5) / num_steps,
                eps=eps,
            )
            np.testing.assert_allclose(terms.diffusion, expected, rtol=1e-9)


def test_grad_under_jit_and_vmap():
    def loss(scale, keys):
        def one(key):
            return vd.ndm_vlb(
                key, X, data_prediction(narrow, eps_fn), lambda x, t: x * (1 + scale * t), narrow
            ).total

        return jnp.mean(jax.vmap(one)(keys))

    grad = jax.jit(jax.grad(loss))(0.3, jax.random.split(jax.random.key(0), 4))
    assert np.isfinite(grad) and grad != 0


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: vd.diffenc_vlb(
                jax.random.key(0), X, identity, identity, narrow, variance_ratio=2.0
            ),
            ValueError,
            "`variance_ratio`",
        ),
        (
            lambda: vd.ndm_vlb(jax.random.key(0), X, identity, lambda x, t: x[:2], narrow),
            ValueError,
            "`transform_fn`",
        ),
        (
            lambda: vd.ndm_vlb(jax.random.key(0), X, lambda z, t: z[:1], identity, narrow),
            ValueError,
            "`x_fn`",
        ),
        (
            lambda: vd.ndm_vlb(jax.random.key(0), X, identity, identity, narrow, t=jnp.ones(3)),
            ValueError,
            "`t`",
        ),
        (
            lambda: vd.ndm_vlb(jax.random.key(0), X, identity, identity, narrow, decoder="x"),
            ValueError,
            "`decoder`",
        ),
        (
            lambda: vd.ndm_vlb(jax.random.key(0), X, identity, identity, lambda t: -t),
            ValueError,
            "`gamma_fn`",
        ),
        (
            lambda: vd.nfdm_vlb(
                jax.random.key(0),
                X,
                identity,
                lambda x, t: (x, jnp.ones(2)),
                lambda t: 1.0,
                decoder_nll_fn=lambda x, z: 0.0,
            ),
            ValueError,
            "`forward_fn`",
        ),
        (
            lambda: vd.nfdm_vlb(
                jax.random.key(0), X, identity, None, lambda t: 1.0, decoder_nll_fn=None
            ),
            TypeError,
            "`forward_fn`",
        ),
    ],
)
def test_bad_arguments_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()
