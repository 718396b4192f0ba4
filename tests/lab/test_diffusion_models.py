"""Build/shape checks of the diffusion networks and their use inside the bound."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import vbounds as vb
from vbounds.lab.models.denoisers import FourierDenoiser, LearnedGamma


def test_denoiser_and_schedule_shapes_end_points_and_gradients():
    net = FourierDenoiser(5, hidden_sizes=(32,), rngs=nnx.Rngs(0))
    gamma = LearnedGamma(hidden=8, gamma_min=-10.0, gamma_max=4.0, rngs=nnx.Rngs(1))
    fixed = LearnedGamma(hidden=8, learn_end_points=False, rngs=nnx.Rngs(1))
    assert "ends" not in nnx.state(fixed, nnx.Param)
    with pytest.raises(ValueError, match="z"):
        net(jnp.ones((2, 4)), 0.0)

    xs = jax.random.normal(jax.random.key(0), (4, 5))
    keys = jax.random.split(jax.random.key(1), 4)
    graph, params = nnx.split(nnx.List([net, gamma]), nnx.Param)

    def loss(params):
        net, gamma = nnx.merge(graph, params)

        def one(k, x):
            return vb.diffusion.gaussian_vlb(k, x, lambda z, t: net(z, gamma(t)), gamma).total

        return jnp.mean(jax.vmap(one)(keys, xs))

    @jax.jit
    def run(params):
        net, gamma = nnx.merge(graph, params)
        shapes = (net(jnp.ones((7, 5)), jnp.zeros(7)), net(jnp.ones(5), 0.3))
        return shapes, gamma(jnp.linspace(0.0, 1.0, 11)), jax.value_and_grad(loss)(params)

    (batch, single), g, (value, grads) = run(params)
    assert batch.shape == (7, 5) and single.shape == (5,)
    np.testing.assert_allclose([g[0], g[-1]], [-10.0, 4.0], atol=1e-5)
    assert np.all(np.diff(np.asarray(g)) > 0)
    leaves = jax.tree.leaves(grads)
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves)
    assert any(np.any(np.asarray(x) != 0) for x in leaves)
    assert abs(float(grads[1]["ends"][...][0])) > 0  # the end points are learned
