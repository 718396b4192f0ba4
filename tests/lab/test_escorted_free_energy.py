"""The escorted free-energy family of the framework: map, works and a smoke training."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.configs import free_energy_mixture
from vbounds.lab import train_and_evaluate
from vbounds.lab.models.escort import make_escort_map
from vbounds.lab.objectives import free_energy as objective


def _map(seed=0):
    config = free_energy_mixture.get_config("smoke").model
    return make_escort_map(config, rngs=nnx.Rngs(seed), example_batch={"x": np.zeros((4, 2))})


def test_escort_map_inverse_and_log_determinant_are_exact():
    model = _map()
    # Perturb every parameter so the couplings are not at their identity start.
    graphdef, params = nnx.split(model, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    leaves = [p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
    model = nnx.merge(graphdef, jax.tree.unflatten(tree, leaves))
    x = jax.random.normal(jax.random.key(2), (5, 2))
    y, log_det = model.forward(x)
    back, log_det_inv = model.inverse(y)
    np.testing.assert_allclose(back, x, atol=1e-5)
    np.testing.assert_allclose(log_det_inv, -log_det, atol=1e-5)
    jacobians = jax.jit(jax.vmap(jax.jacfwd(lambda v: model.forward(v[None])[0][0])))(x)
    np.testing.assert_allclose(log_det, jnp.linalg.slogdet(jacobians)[1], atol=1e-4)


def test_untrained_map_gives_the_plain_works_and_the_exact_delta_f():
    config = free_energy_mixture.get_config("smoke").objective
    assert objective.exact_delta_f(config) == math.log(9.0)
    # The potentials normalise to Z_A = 2 pi base^2 and Z_B = 2 pi mode^2: a grid sum.
    u_a, u_b = objective.potentials(config)
    grid = jnp.linspace(-8.0, 8.0, 321)
    points = jnp.stack(jnp.meshgrid(grid, grid), -1).reshape(-1, 2)
    cell = (grid[1] - grid[0]) ** 2
    z_a, z_b = [float(jnp.sum(jnp.exp(-u(points))) * cell) for u in (u_a, u_b)]
    np.testing.assert_allclose(-math.log(z_b / z_a), objective.exact_delta_f(config), rtol=1e-4)
    x = jax.random.normal(jax.random.key(0), (8, 2))
    y = objective.sample_b(jax.random.key(1), 8, config)
    w_f, w_r, w_f_map, w_r_map = objective.works(_map(), x, y, config)
    np.testing.assert_allclose(w_f_map, w_f, atol=1e-5)
    np.testing.assert_allclose(w_r_map, w_r, atol=1e-5)


def test_smoke_training_reports_rmse_per_sample_size(tmp_path):
    config = free_energy_mixture.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    for name in objective.ESTIMATORS:
        for n in config.objective.eval_sizes:
            assert np.isfinite(results[f"test_rmse_{name}_n{n}"])
    assert np.isfinite(results["test_lower_map"]) and np.isfinite(results["test_upper_map"])
