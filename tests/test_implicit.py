"""vb.implicit on Gaussian semi-implicit and pushforward families with closed-form answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

X_OBS = 1.5  # p(z) = N(0, 1), p(x | z) = N(z, 1): log p(x) = log N(x | 0, 2)
MIX_LOC, MIX_SCALE, COND_SCALE = 0.2, 0.8, 0.5  # psi ~ N(loc, mix^2), z | psi ~ N(psi, cond^2)


def _log_normal(v, loc, var):
    return -0.5 * (v - loc) ** 2 / var - 0.5 * jnp.log(2 * jnp.pi * var)


def _sivi_draws(key, num_mixing, mix_scale=MIX_SCALE):
    """One z per row with num_mixing + 1 mixing draws; returns [K_max + 1, N] conditionals."""
    k_psi, k_z = jax.random.split(key)
    psi = MIX_LOC + mix_scale * jax.random.normal(k_psi, (num_mixing + 1, 4000))
    z = psi[0] + COND_SCALE * jax.random.normal(k_z, psi.shape[1:])
    log_joint = _log_normal(z, 0.0, 1.0) + _log_normal(X_OBS, z, 1.0)
    return log_joint, _log_normal(z, psi, COND_SCALE**2), z


def test_sivi_increases_with_k_towards_the_elbo_below_log_p():
    var_q = MIX_SCALE**2 + COND_SCALE**2  # the marginal q(z) = N(loc, var_q)
    # ELBO of q: E_q[log N(z | 0, 1) + log N(x | z, 1)] + H(q), in closed form.
    second_moment = var_q + MIX_LOC**2
    elbo = (
        -np.log(2 * np.pi)
        - 0.5 * second_moment
        - 0.5 * (X_OBS**2 - 2 * X_OBS * MIX_LOC + second_moment)
        + 0.5 * np.log(2 * np.pi * np.e * var_q)
    )
    log_p = -0.5 * X_OBS**2 / 2 - 0.5 * np.log(2 * np.pi * 2)
    assert elbo < log_p - 0.01
    ks = (0, 1, 4, 16, 64)

    # Nested subsets of the same mixing draws: paired differences estimate E L_K' - E L_K.
    @jax.jit
    def nested_bounds(key):
        log_joint, log_q, _ = _sivi_draws(key, ks[-1])
        return jnp.stack([vb.implicit.sivi(log_joint, log_q[: k + 1]) for k in ks])

    values = np.asarray(nested_bounds(jax.random.key(0)), np.float64)
    n = values.shape[1]
    means, ses = values.mean(1), values.std(1) / np.sqrt(n)
    diffs = np.diff(values, axis=0)
    diff_se = diffs.std(1) / np.sqrt(n)
    assert np.all(diffs.mean(1) > -4.5 * diff_se)  # non-decreasing in expectation
    assert diffs[0].mean() > 4.5 * diff_se[0]  # and the first step is resolved
    assert np.all(means < elbo + 4.5 * ses)  # every K stays below the ELBO of q(z) ...
    assert means[0] < elbo - 10 * ses[0]  # ... K = 0 visibly so
    # The K -> inf bias shrinks roughly like 1 / K: the largest K closes most of the gap.
    assert elbo - means[-1] < 0.2 * (elbo - means[0])


def test_sivi_is_the_exact_elbo_when_q_does_not_depend_on_the_mixing_draw():
    log_joint, log_q, z = _sivi_draws(jax.random.key(1), 3, mix_scale=0.0)
    value = vb.implicit.sivi(log_joint, log_q)
    exact = log_joint - _log_normal(z, MIX_LOC, COND_SCALE**2)
    np.testing.assert_allclose(value, exact, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 2), (2, 4)])
def test_linearized_entropy_is_exact_for_affine_generators(shape):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=shape), rng.normal(size=shape[0])
    var = 0.3 if shape[0] > shape[1] else 0.0  # a full-rank pushforward needs no noise
    cov = a @ a.T + var * np.eye(shape[0])
    exact = 0.5 * (shape[0] * np.log(2 * np.pi * np.e) + np.linalg.slogdet(cov)[1])
    eps = rng.normal(size=(5, shape[1]))
    with jax.enable_x64(True):
        h = vb.implicit.linearized_entropy(lambda e: a @ e + b, eps, noise_variance=var)
    np.testing.assert_allclose(h, np.full(5, exact), rtol=1e-12)


def test_linearized_entropy_of_an_invertible_nonlinear_generator_is_unbiased():
    # g(e) = A (e + c tanh(e)): H(q) = H(N(0, I)) + log|det A| + sum_i E log(1 + c sech^2(e_i)).
    a, c = np.array([[1.2, 0.3], [-0.4, 0.9]]), 0.8
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    expect_1d = np.sum(weights * np.log1p(c / np.cosh(nodes) ** 2)) / np.sqrt(2 * np.pi)
    exact = np.log(2 * np.pi * np.e) + np.linalg.slogdet(a)[1] + 2 * expect_1d
    eps = np.random.default_rng(1).normal(size=(4000, 2))
    with jax.enable_x64(True):
        h = jax.jit(
            lambda e: vb.implicit.linearized_entropy(
                lambda v: jnp.asarray(a) @ (v + c * jnp.tanh(v)), e, noise_variance=1e-12
            )
        )(eps)
    h = np.asarray(h)
    assert abs(h.mean() - exact) < 4.5 * h.std() / np.sqrt(h.size)
    assert h.std() > 0.01  # the per-draw values vary: the comparison is statistical


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="`log_joint`"):
        vb.implicit.sivi(jnp.zeros(3), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="`log_q_conditional`"):
        vb.implicit.sivi(jnp.zeros(()), jnp.array([0.0, jnp.nan]))
    with pytest.raises(ValueError, match="`eps`"):
        vb.implicit.linearized_entropy(lambda e: e, jnp.zeros(3), noise_variance=1.0)
    with pytest.raises(ValueError, match="`noise_variance`"):
        vb.implicit.linearized_entropy(lambda e: e, jnp.zeros((3, 2)), noise_variance=-1.0)
    with pytest.raises(ValueError, match="`generator`"):
        vb.implicit.linearized_entropy(
            lambda e: jnp.outer(e, e), jnp.zeros((3, 2)), noise_variance=1.0
        )
