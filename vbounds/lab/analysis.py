"""Post-hoc analysis of a trained run: reload it, measure gradient signal-to-noise."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp
from flax import nnx

import vbounds as vb
from vbounds.lab.config import validate
from vbounds.lab.objectives import make_objective
from vbounds.lab.train import build, create_state


def load_run(workdir: str, *, step: int | None = None):
    """Rebuilds a trained model from a workdir's ``config.json`` and checkpoint.

    Args:
      workdir: the run's directory.
      step: checkpoint step (the latest when ``None``).

    Returns:
      ``(config, dataset, model)``.
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"expected the run's config at {os.path.abspath(path)}")
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    dataset, model, tx = build(config, validate(config, num_devices=1))
    graphdef, state = create_state(model, tx, seed=config.seed)
    with ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints"))) as manager:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {os.path.abspath(workdir)}/checkpoints")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return config, dataset, nnx.merge(graphdef, state["params"], state["rest"])


def gradient_snr(model, batch, key, *, objective_config, num_draws: int = 100) -> dict:
    """Mean per-parameter gradient SNR of an objective's loss, per top-level submodule.

    The gradient of the batch loss is drawn ``num_draws`` times with independent keys;
    :func:`vbounds.gradient_snr` gives each parameter's ``|mean| / std`` and the result
    averages it over the parameters of each submodule (``encoder``, ``decoder``, ...).

    Args:
      model: a model of :mod:`vbounds.lab.models`.
      batch: dict of arrays with a leading batch axis.
      key: PRNG key.
      objective_config: the ``objective`` section (name, estimator, num_samples, ...).
      num_draws: independent gradient draws (at least 2).

    Returns:
      ``{submodule: mean SNR}``.

    References:
      Rainforth et al., Tighter Variational Bounds are Not Necessarily Better, 2018.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = nnx.to_pure_dict(params)
    loss_fn = make_objective(objective_config).loss

    @jax.jit
    def draws(keys):
        def grad(k):
            return jax.grad(lambda p: loss_fn(nnx.merge(graphdef, p, rest), batch, k)[0])(params)

        return jax.lax.map(grad, keys)

    snr = vb.gradient_snr(draws(jax.random.split(key, num_draws)))
    return {
        name: float(jnp.mean(jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(sub)])))
        for name, sub in snr.items()
    }
