"""The SO(3) density experiment: the data's exact log-density, the mixture model, a smoke run."""

import math

import jax
import jax.numpy as jnp
import numpy as np

import vbounds as vb
from experiments.configs import so3_mixture
from vbounds.lab import train_and_evaluate
from vbounds.lab.data.rotations import RotationMixture
from vbounds.lab.models.rotations import IGSO3Mixture


def test_one_component_mixture_is_igso3_and_data_carry_their_density():
    data = RotationMixture(sigmas=(0.4,), num_train=32, num_test=8, seed=3)
    batch = data.test_split()
    x, log_p = batch["x"], batch["log_p_true"]
    centre = data._arrays[2][0]
    expected = vb.diffusion.igso3_log_prob(x, 0.4, mean=centre)
    np.testing.assert_allclose(log_p, expected, rtol=1e-5, atol=1e-5)
    # Angles to the centre follow IGSO(3): none far beyond a few sigma.
    rel = vb.diffusion.so3_log(
        jnp.swapaxes(vb.diffusion.so3_exp(centre), -1, -2) @ vb.diffusion.so3_exp(x)
    )
    assert float(jnp.max(jnp.linalg.norm(rel, axis=-1))) < 6 * 0.4


def test_mixture_model_density_normalises_over_so3():
    # Haar-uniform rotations: E_uniform[p_model(R)] = 1 for any normalised density.
    model = IGSO3Mixture(2, 0.5, rngs=__import__("flax").nnx.Rngs(0))
    n = 20000
    v = vb.diffusion.igso3_sample(jax.random.key(5), 20.0, (n,))  # uniform to float precision
    p = np.exp(np.asarray(jax.jit(lambda v: model.log_prob(v))(v), np.float64))
    assert abs(p.mean() - 1.0) < 4.5 * p.std() / math.sqrt(n)


def test_so3_mixture_smoke_run(tmp_path):
    results = train_and_evaluate(so3_mixture.get_config("smoke"), str(tmp_path))
    assert np.isfinite(results["test_nll"]) and np.isfinite(results["test_true_nll"])
    np.testing.assert_allclose(
        results["test_kl_gap"], results["test_nll"] - results["test_true_nll"], rtol=1e-4
    )
