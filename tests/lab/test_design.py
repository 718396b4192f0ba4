"""The adaptive-design family of the framework: location finding by sequential PCE."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import vbounds as vb
from experiments.configs import eig_location
from vbounds.lab import train_and_evaluate
from vbounds.lab.objectives import design as design_objective


def test_history_log_lik_at_a_fixed_design_gives_the_vb_eig_bounds():
    # With every design at the origin the per-step likelihoods are plain Gaussians of the
    # known mean: the cumulative log-likelihood must be their sum, and the bounds vb.eig's.
    config = eig_location.get_config("smoke").objective
    theta = jnp.array([[0.5, -0.2], [1.0, 1.0]])
    designs = jnp.zeros((2, 3, 2))
    outcomes = jnp.array([[0.1, 0.2, 0.3], [0.0, -0.5, 0.4]])
    thetas = design_objective._contrasts(theta, jax.random.key(0), 4)
    log_lik = design_objective.history_log_lik(designs, outcomes, thetas, config)
    signal = np.log(config.base + 1.0 / (config.max_signal + np.sum(np.asarray(thetas) ** 2, -1)))
    resid = np.asarray(outcomes)[:, None, :] - signal[..., None]
    expected = np.cumsum(
        -0.5 * (resid / config.noise_scale) ** 2 - np.log(config.noise_scale * np.sqrt(2 * np.pi)),
        axis=-1,
    )
    np.testing.assert_allclose(log_lik, expected, rtol=1e-5, atol=1e-5)
    per = design_objective._per_example(vb.eig.pce, log_lik)
    np.testing.assert_allclose(per.mean(0)[-1], vb.eig.pce(log_lik[..., -1]), rtol=1e-5)


def test_static_policy_ignores_the_history():
    model = eig_location.get_config("smoke").model
    model.adaptive = False
    from vbounds.lab.models.design import make_design_policy

    policy = make_design_policy(model, rngs=nnx.Rngs(0), example_batch={"x": np.zeros((4, 2))})
    code = jax.random.normal(jax.random.key(1), (4, 8))
    np.testing.assert_allclose(policy(code, 1), policy(jnp.zeros((4, 8)), 1))


def test_smoke_training_reports_eig_bounds_per_step(tmp_path):
    config = eig_location.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    for name in ("spce", "snmc", "random_spce", "random_snmc"):
        for t in (1, 2, 3):
            assert np.isfinite(results[f"test_{name}_t{t}"])
    # PCE never exceeds log(L + 1) for the L evaluation contrasts.
    assert results["test_spce"] <= np.log(config.objective.eval_num_contrasts + 1) + 1e-5
