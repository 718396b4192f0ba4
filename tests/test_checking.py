"""vb.checked: the value checks of vbounds under jit, via checkify."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

vd = vb.diffusion
LOG_W = jax.random.normal(jax.random.key(0), (6, 2))


def test_checked_iwae_under_jit_names_log_w():
    f = jax.jit(vb.checked(vb.iwae))
    np.testing.assert_allclose(f(LOG_W), vb.iwae(LOG_W), rtol=1e-6)
    # without checked the NaN passes silently under jit
    assert np.isnan(jax.jit(vb.iwae)(LOG_W.at[2, 1].set(jnp.nan))[1])
    with pytest.raises(jax.errors.JaxRuntimeError, match="`log_w` contains NaN"):
        f(LOG_W.at[2, 1].set(jnp.nan))
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"`log_w` contains \+inf"):
        f(LOG_W.at[0, 0].set(jnp.inf))
    # -inf (a zero weight) is valid input
    np.testing.assert_allclose(
        f(LOG_W.at[0, 0].set(-jnp.inf)), vb.iwae(LOG_W.at[0, 0].set(-jnp.inf)), rtol=1e-6
    )


def test_checked_eagerly_with_static_arguments_and_gradients():
    with pytest.raises(ValueError, match="`log_w` contains NaN"):
        vb.checked(vb.iwae)(LOG_W.at[0, 0].set(jnp.nan))
    # Python numbers (alpha, axis) reach the function unchanged: vod needs a concrete alpha
    np.testing.assert_allclose(vb.checked(vb.renyi)(LOG_W, 0.5, axis=0), vb.renyi(LOG_W, 0.5))
    np.testing.assert_allclose(
        vb.checked(vb.vod)(LOG_W.T, LOG_W.T, LOG_W.T, alpha=0.5),
        vb.vod(LOG_W.T, LOG_W.T, LOG_W.T, alpha=0.5),
        rtol=1e-6,
    )
    grad = jax.grad(lambda x: jnp.sum(vb.checked(vb.iwae)(x)))(LOG_W)
    np.testing.assert_allclose(grad, jax.grad(lambda x: jnp.sum(vb.iwae(x)))(LOG_W), rtol=1e-6)
    with pytest.raises(TypeError, match="fn"):
        vb.checked(3)


def test_checked_catches_times_and_scores_under_jit():
    x, eps = jnp.array([0.3, -0.2]), jnp.array([0.5, 1.0])
    scores = jax.random.normal(jax.random.key(1), (3, 3))

    def losses(t, s):
        gamma = vd.linear_gamma
        return vd.diffusion_loss(x, eps, t, lambda z, u: 0.1 * z, gamma), vb.mi.infonce(s)

    f = jax.jit(vb.checked(losses))
    for value, expected in zip(f(jnp.float32(0.5), scores), losses(0.5, scores), strict=True):
        np.testing.assert_allclose(value, expected, rtol=1e-5)
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"`t` must lie in \[0, t_max\]"):
        f(jnp.float32(1.5), scores)
    with pytest.raises(jax.errors.JaxRuntimeError, match="`scores` contains NaN"):
        f(jnp.float32(0.5), scores.at[1, 2].set(jnp.nan))


def test_checks_traced_under_checked_compile_to_nothing_in_a_plain_jit():
    # jit caches traces: a jitted function first traced inside `checked` and then called
    # plainly reuses a jaxpr that holds the checks; they must drop out, not fail to compile.
    f = jax.jit(lambda lw: vb.iwae(lw) * 2.0)
    bad = LOG_W.at[0, 1].set(jnp.nan)
    with pytest.raises(ValueError, match="`log_w` contains NaN"):
        vb.checked(f)(bad)
    value = f(bad)
    assert np.isnan(value[1])
    np.testing.assert_allclose(value[0], 2.0 * vb.iwae(LOG_W[:, 0]), rtol=1e-6)
