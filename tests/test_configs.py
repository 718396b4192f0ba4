"""Every latent-variable-model config (those ``train_and_evaluate`` runs) loads with the
shared top-level fields, passes the checks for 4 devices, and its model-objective pair
takes one gradient step on real digits."""

import glob
import importlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vbounds.data import load_dataset
from vbounds.models import MODELS
from vbounds.objectives import get_objective
from vbounds.training import check_config
from vbounds.training.train import REQUIRED_FIELDS, init_state

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "experiments", "configs")


def _load(name):
    return importlib.import_module(f"experiments.configs.{name}").get_config()


# Configs of other experiments (MI, diffusion) live beside these and have their own tests.
NAMES = sorted(
    name
    for name in (os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, "*.py")))
    if not name.startswith(("_", "base")) and _load(name).get("model", {}).get("name") in MODELS
)


def test_the_issue_configs_exist():
    expected = {"default", "vae_elbo", "iwae_k5", "iwae_k50", "iwae_dreg", "renyi", "vr_max"}
    assert expected | {"cvae", "rws"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_config_builds_and_takes_a_step(name):
    config = _load(name)
    assert all(field in config for field in REQUIRED_FIELDS)
    check_config(config, num_devices=4)
    dataset = load_dataset(config.data)
    graphdef, state, _ = init_state(config, dataset)
    params = state["params"]
    loss_fn = get_objective(config.objective)
    batch = {"x": jnp.asarray(dataset.x_test[:4]), "y": jnp.asarray(dataset.y_test[:4])}

    @jax.jit
    def step(p):
        return jax.value_and_grad(
            lambda p: loss_fn(nnx.merge(graphdef, p), batch, jax.random.key(0)), has_aux=True
        )(p)

    (loss, metrics), grads = step(params)
    assert np.isfinite(loss) and np.isfinite(metrics["bound"])
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
