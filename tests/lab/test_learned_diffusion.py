"""NDM / DiffEnc in the framework: at its zero-initialised transform the model is the plain
VDM (the ndm objective equals gaussian_vlb on the same draws), the objective's loss is
``ndm_vlb`` in bits/dim, and the smoke config trains the transform away from zero."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import vbounds as vb
from vbounds.lab import train_and_evaluate
from vbounds.lab.models.learned_diffusion import NDM
from vbounds.lab.objectives import make_objective
from vbounds.lab.registry import lookup

vd = vb.diffusion


def _levels(key, n):
    return jax.random.randint(key, (n, 64), 0, 17)


@pytest.mark.parametrize("transform", ["ndm", "diffenc"])
def test_zero_transform_is_vdm_and_the_loss_is_ndm_vlb(transform):
    model = NDM(
        64, transform=transform, hidden_sizes=(8,), transform_hidden_sizes=(4,), rngs=nnx.Rngs(0)
    )
    x = 2.0 * _levels(jax.random.key(0), 1)[0] / 16 - 1.0
    key, t = jax.random.key(1), 0.4
    options = {"decoder": "discretized", "num_bins": 17, "t": t}
    ndm = vd.ndm_vlb(key, x, model.x_hat, model.transform, model.gamma, **options)
    vdm = vd.gaussian_vlb(key, x, model.eps, model.gamma, **options)
    np.testing.assert_allclose(jnp.stack(ndm), jnp.stack(vdm), rtol=1e-4, atol=1e-4)

    # A non-zero transform changes the bound; the objective's loss is ndm_vlb in bits/dim.
    last = model.transform_net.layers[-1]
    last.kernel[...] = 0.1 * jnp.ones_like(last.kernel[...])
    objective = make_objective(lookup("objective", "ndm").config("ndm", eval_repeats=2))
    batch = {"x": _levels(jax.random.key(2), 4)}
    loss, _ = objective.loss(model, batch, jax.random.key(3))
    k_t, k = jax.random.split(jax.random.key(3))
    times = vd.stratified_times(k_t, 4)
    grid = 2.0 * batch["x"] / 16 - 1.0
    expected = jax.vmap(
        lambda xi, ki, ti: (
            vd.ndm_vlb(
                ki,
                xi,
                model.x_hat,
                model.transform,
                model.gamma,
                decoder="discretized",
                num_bins=17,
                t=ti,
            ).total
        )
    )(grid, jax.random.split(k, 4), times)
    np.testing.assert_allclose(loss, jnp.mean(expected) / (64 * math.log(2)), rtol=1e-5)
    assert not np.isclose(float(jnp.mean(expected)), float(vdm.total))
    samples = model.sample(jax.random.key(4), 3, num_steps=5)
    assert samples.shape == (3, 64) and samples.min() >= 0 and samples.max() <= 16


def test_ndm_digits_smoke_trains_the_transform(tmp_path):
    module = importlib.import_module("experiments.configs.ndm_digits")
    config = module.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(results["test_bpd"]) and 0 < results["test_bpd"] < 20
    assert np.isfinite(results["test_bpd_T10"])
