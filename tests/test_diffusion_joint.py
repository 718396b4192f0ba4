"""Joint continuous-discrete diffusion against the two existing families' bounds.

With a shared schedule (the identity path) the joint bound is ``gaussian_vlb`` plus
``mdlm_vlb`` on the same draws, with each network given the other modality's noisy state.
For networks that predict nothing (``eps_hat = 0``, uniform logits over ``V``) the expected
diffusion terms are known for any path from (0, 0) to (1, 1):
``d (gamma(1) - gamma(0)) / 2`` and ``n log V (alpha(0) - alpha(1))``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

vd = vb.diffusion
X, C = jnp.array([0.5, -0.3, 1.2]), jnp.array([0, 2, 1, 1])
V, MASK = 4, 3


def alpha_fn(s):
    return 1.0 - s


def gamma_fn(s):
    return vd.linear_gamma(s, gamma_min=-6.0, gamma_max=6.0)


def eps_fn(z, c, u):  # uses the noisy types: a joint network
    return 0.4 * z + 0.1 * jnp.sum(c == MASK) * u


def logits_fn(z, c, u):
    return jnp.outer(jnp.ones(C.shape), jnp.arange(V, dtype=z.dtype)) * jnp.sum(z) + u


def test_shared_schedule_is_the_sum_of_gaussian_vlb_and_mdlm_vlb():
    eps, eps_0, x_t = jnp.array([0.3, -1.0, 0.7]), jnp.array([1.1, 0.2, -0.4]), C.at[1].set(MASK)
    key = jax.random.key(0)

    @jax.jit
    def both(u):
        given = {"t": u, "eps": eps, "eps_0": eps_0}
        terms = vd.joint_vlb(
            key, X, C, eps_fn, logits_fn, gamma_fn, alpha_fn, mask_index=MASK, x_t=x_t, **given
        )
        gauss = vd.gaussian_vlb(key, X, lambda z, s: eps_fn(z, x_t, s), gamma_fn, **given)
        g_u, g_0 = gamma_fn(u), gamma_fn(0.0)
        z_u = jnp.sqrt(jax.nn.sigmoid(-g_u)) * X + jnp.sqrt(jax.nn.sigmoid(g_u)) * eps
        z_0 = jnp.sqrt(jax.nn.sigmoid(-g_0)) * X + jnp.sqrt(jax.nn.sigmoid(g_0)) * eps_0

        def types_logits(c, s):
            return logits_fn(jnp.where(s == 0, z_0, z_u), c, s)

        mdlm = vd.mdlm_vlb(key, C, types_logits, alpha_fn, mask_index=MASK, t=u, x_t=x_t)
        return terms, gauss, mdlm

    for u in (0.2, 0.7):
        terms, gauss, mdlm = both(jnp.asarray(u))
        np.testing.assert_allclose(jnp.stack(terms.continuous), jnp.stack(gauss), rtol=1e-6)
        np.testing.assert_allclose(jnp.stack(terms.discrete), jnp.stack(mdlm), rtol=1e-6)
        np.testing.assert_allclose(terms.total, gauss.total + mdlm.total, rtol=1e-6)
        assert float(terms.discrete.diffusion) > 0


def test_expected_diffusion_terms_do_not_depend_on_the_path():
    def blind_eps(z, c, u):
        return jnp.zeros_like(z)

    def uniform(z, c, u):
        return jnp.zeros((*C.shape, V))

    keys = jax.random.split(jax.random.key(1), 3000)
    expected_c = 0.5 * X.size * 12.0
    expected_d = C.size * np.log(V)
    for path_fn in (None, lambda u: (u**2, 1.0 - (1.0 - u) ** 2)):

        @jax.jit
        def draws(keys, path_fn=path_fn):
            def one(k):
                terms = vd.joint_vlb(
                    k,
                    X,
                    C,
                    blind_eps,
                    uniform,
                    gamma_fn,
                    alpha_fn,
                    mask_index=MASK,
                    path_fn=path_fn,
                )
                return terms.continuous.diffusion, terms.discrete.diffusion

            return jax.vmap(one)(keys)

        for samples, expected in zip(draws(keys), (expected_c, expected_d)):
            samples = np.asarray(samples, np.float64)
            se = samples.std(ddof=1) / np.sqrt(samples.size)
            assert abs(samples.mean() - expected) < 4.5 * se, (samples.mean(), expected, se)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"classes": jnp.array([0.0, 1.0])}, TypeError, "`classes`"),
        ({"path_fn": "identity"}, TypeError, "`path_fn`"),
        ({"logits_fn": None}, TypeError, "`logits_fn`"),
        ({"x_t": C}, ValueError, "`x_t`"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    args = {"classes": C, "logits_fn": logits_fn}
    args.update(kwargs)
    classes, logits = args.pop("classes"), args.pop("logits_fn")
    with pytest.raises(error, match=match):
        vd.joint_vlb(
            jax.random.key(0),
            X,
            classes,
            eps_fn,
            logits,
            gamma_fn,
            alpha_fn,
            mask_index=MASK,
            **args,
        )
