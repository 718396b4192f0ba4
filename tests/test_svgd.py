"""vb.svgd against a float64 loop formula, the one-particle limit and a Gaussian target."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vbounds as vb


def _loop_phi(x, g, h):
    n = len(x)
    phi = np.zeros_like(x)
    for i in range(n):
        for j in range(n):
            k = np.exp(-np.sum((x[j] - x[i]) ** 2) / h)
            phi[i] += k * g[j] - 2.0 / h * (x[j] - x[i]) * k
    return phi / n


def test_stein_direction_matches_a_loop_formula_in_float64():
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    pairs = ((x[:, None] - x[None]) ** 2).sum(-1)
    median_h = np.median(pairs) / np.log(7)
    with jax.enable_x64(True):
        np.testing.assert_allclose(vb.svgd.bandwidth_heuristic(x), median_h, rtol=1e-12)
        for h in (0.7, None):
            got = vb.svgd.stein_direction(x, g, bandwidth=h)
            np.testing.assert_allclose(got, _loop_phi(x, g, h or median_h), rtol=1e-12)


def test_one_particle_follows_the_gradient_exactly():
    x, g = jnp.array([[0.3, -2.0, 5.0]]), jnp.array([[1.5, 0.25, -3.0]])
    for h in (None, 0.1, 10.0):
        np.testing.assert_array_equal(vb.svgd.stein_direction(x, g, bandwidth=h), g)
    tx = vb.svgd.transform()
    updates, _ = tx.update(-g, tx.init(x), x)  # loss gradients are -grad log p
    np.testing.assert_array_equal(updates, -g)


def test_pytree_particles_are_the_concatenated_vectors():
    rng = np.random.default_rng(1)
    params = {"w": jnp.asarray(rng.normal(size=(5, 2, 2))), "b": jnp.asarray(rng.normal(size=5))}
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape)), params)
    tx = vb.svgd.transform(bandwidth=1.3)
    updates, _ = tx.update(grads, tx.init(params), params)

    def flat(tree):
        return jnp.concatenate([tree["b"][:, None], tree["w"].reshape(5, 4)], axis=1)

    want = -vb.svgd.stein_direction(flat(params), -flat(grads), bandwidth=1.3)
    np.testing.assert_allclose(flat(updates), want, rtol=1e-6)


def test_optax_chain_runs_svgd_to_a_gaussian_target():
    mean = jnp.array([1.0, -2.0])
    cov = jnp.array([[1.0, 0.6], [0.6, 0.8]])
    precision = jnp.linalg.inv(cov)
    n = 100
    tx = optax.chain(vb.svgd.transform(), optax.sgd(0.1))
    grad_loss = jax.grad(lambda x: 0.5 * jnp.sum(((x - mean) @ precision) * (x - mean)))

    @jax.jit
    def run(x):
        def step(carry, _):
            x, state = carry
            updates, state = tx.update(grad_loss(x), state, x)
            return (optax.apply_updates(x, updates), state), None

        (x, _), _ = jax.lax.scan(step, (x, tx.init(x)), None, length=1000)
        return x

    x = np.asarray(run(jax.random.normal(jax.random.key(0), (n, 2)) * 0.5 - 3.0))
    # Tolerances of an i.i.d. sample of n from the target (SVGD's deterministic particles do
    # at least as well on means and second moments of a Gaussian): the mean's standard error
    # sqrt(S_ii / n), a covariance entry's sqrt((S_ii S_jj + S_ij^2) / n); 4.5 of each.
    c = np.asarray(cov)
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 4.5 * np.sqrt(np.diag(c) / n))
    cov_se = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / n)
    np.testing.assert_array_less(np.abs(np.cov(x.T) - c), 4.5 * cov_se)
    # Without the repulsive term every particle would collapse onto the mode.
    assert np.cov(x.T)[0, 0] > 0.5


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: vb.svgd.stein_direction(jnp.zeros(3), jnp.zeros(3)), "`particles`"),
        (lambda: vb.svgd.stein_direction(jnp.zeros((3, 2)), jnp.zeros((2, 2))), "`grad_log_p`"),
        (
            lambda: vb.svgd.stein_direction(jnp.zeros((3, 2)), jnp.zeros((3, 2)), bandwidth=0.0),
            "`bandwidth`",
        ),
        (lambda: vb.svgd.transform(bandwidth=-1.0), "`bandwidth`"),
        (lambda: vb.svgd.transform().update(jnp.zeros((3, 2)), vb.svgd.SvgdState()), "`params`"),
        (
            lambda: vb.svgd.transform().update(
                {"a": jnp.zeros((3, 2)), "b": jnp.zeros(2)},
                vb.svgd.SvgdState(),
                {"a": jnp.zeros((3, 2)), "b": jnp.zeros(2)},
            ),
            "`params`",
        ),
    ],
)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
