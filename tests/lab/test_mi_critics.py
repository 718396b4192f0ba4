"""Critics for vb.mi: shapes, the scores[i, j] = f(x_i, y_j) orientation, and use with
the chunked form. (Training a critic with optax is exercised by the notebook.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vbounds import mi
from vbounds.lab.models.critics import CRITICS, BaselineMLP

DX, DY = 3, 2
PAIRS = ((0, 6), (4, 1), (2, 3), (3, 2))


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_critic_scores_orientation(name):
    kwargs = {} if name == "bilinear" else {"hidden": 16, "layers": 1}
    critic = CRITICS[name](DX, DY, rngs=nnx.Rngs(0), **kwargs)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(5, DX)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(7, DY)), jnp.float32)

    @nnx.jit
    def run(critic, x, y):
        pairwise = jnp.stack([critic(x[i : i + 1], y[j : j + 1])[0, 0] for i, j in PAIRS])
        chunked = mi.from_critic(critic, x[:5], y[:5], bound="dv", chunk_size=2)
        return critic(x, y), pairwise, chunked, mi.dv(critic(x[:5], y[:5]))

    scores, pairwise, chunked, dense = run(critic, x, y)
    assert scores.shape == (5, 7)
    np.testing.assert_allclose(
        scores[tuple(zip(*PAIRS, strict=True))], pairwise, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(chunked, dense, rtol=1e-5, atol=1e-5)


def test_baseline_shape():
    baseline = BaselineMLP(DY, hidden=8, rngs=nnx.Rngs(1))
    assert jax.eval_shape(lambda y: baseline(y), jnp.ones((6, DY))).shape == (6,)
