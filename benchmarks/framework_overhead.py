"""Benchmark: the cost of a training step through the framework against a bare jitted step.

The same model (the digits VAE of ``experiments/configs/default.py``), the same loss
(IWAE, K = 5, through ``vbounds.lab``'s objective) and the same optimiser, one step each:

* ``framework``: what ``train_and_evaluate`` does per step: the dataset's host batch of
  the step (``train_batch``), its placement on the mesh (``global_batch``) and the jitted
  ``vbounds.lab.train_step`` (dynamic binarisation inside, state dict with the PRNG key);
* ``bare``: a hand-written loop's step: the same host batch put on the device with
  ``jax.device_put`` and a jitted ``value_and_grad`` + ``optax`` update of ``nnx.split``
  parameters, binarising with the same kind of key;
* ``framework step only``: the jitted ``train_step`` on a batch already on the device
  (the framework's compiled step alone, without its data path).

The target: the framework step at most 1.05x the bare step.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from benchmarks import common
from experiments.configs.default import get_config
from vbounds.lab.config import validate
from vbounds.lab.distributed import global_batch, make_mesh, replicated, sharded_on_data
from vbounds.lab.train import build, create_state, train_step

TARGETS = {"framework_vs_bare": 1.05}


def run(quick: bool = False, gpu: bool = False) -> dict:
    del gpu
    config = get_config()
    plan = validate(config, num_devices=jax.device_count())
    dataset, model, tx = build(config, plan)
    loss_fn = plan.objective.loss
    mesh = make_mesh()

    graphdef, state = create_state(model, tx, seed=config.seed)
    state = jax.device_put(jax.tree.map(jnp.copy, state), replicated(mesh))
    framework_step = jax.jit(
        functools.partial(train_step, graphdef, tx, loss_fn, dataset.train_transform),
        donate_argnums=0,
        out_shardings=(replicated(mesh), replicated(mesh)),
    )

    # Copies: the framework's state donates (deletes) the model's own buffers.
    bare_graph, bare_params, bare_rest = nnx.split(model, nnx.Param, ...)
    bare_params = jax.tree.map(jnp.copy, nnx.to_pure_dict(bare_params))
    bare_opt = tx.init(bare_params)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def bare_step(params, opt_state, x, key):
        data_key, loss_key = jax.random.split(key)
        batch = {"x": jax.random.bernoulli(data_key, x).astype(x.dtype)}

        def loss(p):
            return loss_fn(nnx.merge(bare_graph, p, bare_rest), batch, loss_key)

        (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    counter = {"framework": 0, "bare": 0, "only": 0}
    holder = {"state": state, "bare": (bare_params, bare_opt)}
    base_key = jax.random.key(1)
    fixed = global_batch(
        dataset.train_batch(seed=0, step=0, batch_size=config.batch_size), sharded_on_data(mesh)
    )

    def framework():
        i = counter["framework"] = counter["framework"] + 1
        host = dataset.train_batch(seed=0, step=i, batch_size=config.batch_size)
        holder["state"], metrics = framework_step(
            holder["state"], global_batch(host, sharded_on_data(mesh))
        )
        common.block(metrics["loss"])

    def framework_only():
        holder["state"], metrics = framework_step(holder["state"], fixed)
        common.block(metrics["loss"])

    def bare():
        i = counter["bare"] = counter["bare"] + 1
        host = dataset.train_batch(seed=0, step=i, batch_size=config.batch_size)
        params, opt_state = holder["bare"]
        params, opt_state, value = bare_step(
            params, opt_state, jax.device_put(host["x"]), jax.random.fold_in(base_key, i)
        )
        holder["bare"] = (params, opt_state)
        common.block(value)

    timings = common.interleaved(
        {"framework": framework, "bare": bare, "framework step only": framework_only},
        repeats=10 if quick else 30,
        inner=5 if quick else 20,
        warmup=2,
    )
    bare_t = timings["bare"]["median_s"]
    rows = [
        {
            "alternative": name,
            "median step": common.fmt_time(t["median_s"]),
            "vs bare": f"{t['median_s'] / bare_t:.3f}x",
            "IQR": common.fmt_time(t["iqr_s"]),
        }
        for name, t in timings.items()
    ]
    ratio = timings["framework"]["median_s"] / bare_t
    return {
        "title": f"Training step through the framework vs a bare jitted step (IWAE K=5, "
        f"batch {config.batch_size}, {jax.device_count()} {jax.devices()[0].platform} device(s))",
        "timings": timings,
        "ratios": {"framework_vs_bare": ratio},
        "targets": TARGETS,
        "rows": rows,
        "notes": [
            f"framework / bare = {ratio:.3f} (target <= {TARGETS['framework_vs_bare']})",
        ],
    }
