"""Benchmark 6: the IWAE training step data-parallel over simulated CPU devices.

Runs in a subprocess with ``JAX_NUM_CPU_DEVICES=4`` (and the equivalent ``XLA_FLAGS``),
because the device count is fixed when JAX starts. The vbounds reparam step (K = 5,
batch 100) runs on a 1-D mesh ``jax.make_mesh((n,), ("data",))`` for n = 1, 2, 4: batch
sharded on ``"data"``, parameters and optimizer state replicated, one jitted step.
Simulated devices share the same two cores, so this measures the correctness of the
sharding (same losses as one device) and its overhead, not a speed-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

NUM_DEVICES = 4


def _worker(quick: bool) -> dict:
    import functools

    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    from benchmarks import common, iwae_step, vae

    k, num_steps = 5, 3
    batches = [jnp.asarray(b) for b in iwae_step._batches(num_steps)]
    keys = list(jax.random.split(jax.random.key(1), num_steps))
    loss_fn = functools.partial(vae.vbounds_loss, num_samples=k, estimator="reparam")

    def losses_and_runner(mesh):
        params, opt_state = vae.init_state(0)
        xs = batches
        if mesh is not None:
            replicated = NamedSharding(mesh, P())
            params, opt_state = jax.device_put((params, opt_state), replicated)
            xs = [jax.device_put(b, NamedSharding(mesh, P("data"))) for b in batches]
            # The per-example keys are split inside the loss from one replicated key; an
            # Auto mesh lets the compiler shard them like the batch (under Explicit axes
            # vmap would reject the unsharded keys against the sharded batch).
        step = vae.make_step(loss_fn)
        state = {"params": params, "opt": opt_state, "i": 0}
        losses = []
        for x, key in zip(xs, keys):
            state["params"], state["opt"], loss = step(state["params"], state["opt"], x, key)
            losses.append(float(loss))

        def run_one():
            i = state["i"] % num_steps
            state["params"], state["opt"], loss = step(
                state["params"], state["opt"], xs[i], keys[i]
            )
            jax.block_until_ready(loss)
            state["i"] += 1

        return losses, run_one, step, (state, xs)

    configs = {"1 device (no mesh)": None}
    for n in (1, 2, NUM_DEVICES):
        devices = jax.devices()[:n]
        configs[f"mesh data={n}"] = jax.make_mesh(
            (n,), ("data",), axis_types=(AxisType.Auto,), devices=devices
        )
    losses, runners, shardings = {}, {}, {}
    for name, mesh in configs.items():
        losses[name], runners[name], step, (state, xs) = losses_and_runner(mesh)
        shardings[name] = str(xs[0].sharding.spec) if mesh is not None else "single device"
    timings = common.interleaved(runners, repeats=7 if quick else 25, inner=5, warmup=1)
    ref = np.asarray(losses["1 device (no mesh)"])
    return {
        "devices": [str(d) for d in jax.devices()],
        "losses": losses,
        "max_rel_loss_difference": {
            name: float(np.max(np.abs(np.asarray(v) - ref) / np.abs(ref)))
            for name, v in losses.items()
        },
        "batch_sharding": shardings,
        "timings": timings,
    }


def run(quick: bool = False) -> dict:
    env = dict(os.environ)
    env["JAX_NUM_CPU_DEVICES"] = str(NUM_DEVICES)
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={NUM_DEVICES}"
    ).strip()
    cmd = [sys.executable, "-m", "benchmarks.multidevice", "--worker"]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"multidevice worker failed:\n{proc.stderr[-4000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = res["timings"]["1 device (no mesh)"]["median_s"]
    rows = []
    for name, t in res["timings"].items():
        rows.append(
            {
                "configuration": name,
                "median step": f"{t['median_s'] * 1e3:.2f} ms",
                "vs 1 device": f"{t['median_s'] / ref:.2f}x",
                "max rel. loss diff (3 steps)": f"{res['max_rel_loss_difference'][name]:.1e}",
                "batch sharding": res["batch_sharding"][name],
            }
        )
    worst = max(res["max_rel_loss_difference"].values())
    return {
        "title": f"IWAE step (vbounds reparam, K=5) on {NUM_DEVICES} simulated CPU devices",
        "results": res,
        "rows": rows,
        "notes": [
            f"sharded steps reproduce the single-device losses to {worst:.1e} (relative); "
            "simulated devices share the same cores, so the ratios are overhead, not speed-up"
        ],
    }


if __name__ == "__main__":
    if "--worker" in sys.argv:
        print(json.dumps(_worker("--quick" in sys.argv)))
