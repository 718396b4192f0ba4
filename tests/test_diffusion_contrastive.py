"""CDCD's score matrix equals the loop over (condition, candidate) pairs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

vd = vb.diffusion


def nll_fn(key, x_i, c_j):  # a conditional VDM's per-step bound: the network reads c_j
    def eps_fn(z, t):
        return jnp.tanh(z + c_j) * t

    return vd.gaussian_vlb(key, x_i, eps_fn, vd.linear_gamma).diffusion


def test_scores_equal_the_loop_over_pairs_and_feed_infonce():
    n = 3
    x = jax.random.normal(jax.random.key(0), (n, 3))
    c = jax.random.normal(jax.random.key(1), (n, 3))
    key = jax.random.key(2)
    scores = vd.contrastive_scores(key, x, c, nll_fn)
    keys = jax.random.split(key, n)
    one = jax.jit(nll_fn)
    loop = np.array([[-float(one(keys[i], x[i], c[j])) for j in range(n)] for i in range(n)])
    np.testing.assert_allclose(scores, loop, rtol=1e-5)
    assert np.ptp(loop[0]) > 0  # the conditions matter along a row
    rows = np.array([loop[i, i] - np.log(np.sum(np.exp(loop[i]))) for i in range(n)])
    np.testing.assert_allclose(vb.mi.infonce(scores), rows.mean() + np.log(n), rtol=1e-5)
    jitted = jax.jit(lambda k, x, c: vd.contrastive_scores(k, x, c, nll_fn))(key, x, c)
    np.testing.assert_allclose(jitted, scores, rtol=1e-5)


@pytest.mark.parametrize(
    "x, c, fn, error, match",
    [
        (jnp.ones((3, 2)), jnp.ones((2, 2)), nll_fn, ValueError, "`x` and `c`"),
        (jnp.ones((2, 2)), jnp.ones((2, 2)), lambda k, x, c: x, ValueError, "`nll_fn`"),
        (jnp.ones((2, 2)), jnp.ones((2, 2)), None, TypeError, "`nll_fn`"),
    ],
)
def test_bad_arguments_raise(x, c, fn, error, match):
    with pytest.raises(error, match=match):
        vd.contrastive_scores(jax.random.key(0), x, c, fn)
