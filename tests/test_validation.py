"""One check for every count-like argument of the core (`vbounds._validation.check_int`)."""

import distrax
import jax
import jax.numpy as jnp
import lg_model as lg
import numpy as np
import pytest

import vbounds as vb

vd = vb.diffusion
KEY = jax.random.key(0)
Q = lg.q_params([0.0], 1.0)
LOG_JOINT = lg.log_joint_fn(jnp.zeros(1), jnp.ones(1))


def _critic(xb, y):
    return xb @ y.T


# name -> call(value): every core argument that is a count.
CALLS = {
    "num_samples": lambda n: vb.estimate(KEY, LOG_JOINT, lg.make_q, Q, num_samples=n),
    "chunk_size": lambda n: vb.log_likelihood(
        KEY, LOG_JOINT, lg.make_q, Q, num_samples=4, chunk_size=n
    ),
    "num_samples ": lambda n: vb.kl_divergence(
        distrax.Normal(0.0, 1.0), distrax.Laplace(0.0, 1.0), key=KEY, num_samples=n
    ),
    "chunk_size ": lambda n: vb.mi.from_critic(_critic, jnp.eye(4), jnp.eye(4), chunk_size=n),
    "num_steps": lambda n: vd.absorbing_betas(n),
    "num_classes": lambda n: vd.uniform_transitions(jnp.full(2, 0.1), n),
    "hidden": lambda n: vd.init_monotone_gamma(KEY, hidden=n),
    "batch_size": lambda n: vd.stratified_times(KEY, n),
    "num_dims": lambda n: vd.bits_per_dim(1.0, n),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_count_arguments_share_one_check(name):
    call, arg = CALLS[name], name.strip()
    call(np.int64(2))  # NumPy integer scalars are accepted everywhere
    call(2)
    with pytest.raises(TypeError, match=f"`{arg}` must be an int, got bool"):
        call(True)
    with pytest.raises(TypeError, match=f"`{arg}` must be an int, got float"):
        call(2.0)
    with pytest.raises(ValueError, match=f"`{arg}` must be >= "):
        call(0)


def test_a_traced_count_asks_for_a_static_int():
    with pytest.raises(TypeError, match="`num_steps` must be a static Python int"):
        jax.jit(vd.absorbing_betas)(5)
    with pytest.raises(TypeError, match="`num_steps` must be a static Python int"):
        jax.jit(lambda n: vd.betas_from_alpha(lambda t: 1.0 - t, n))(5)
    # Static under jit, as documented, it works.
    betas = jax.jit(vd.absorbing_betas, static_argnums=0)(4)
    np.testing.assert_allclose(betas, [0.25, 1 / 3, 0.5, 1.0], rtol=1e-6)
