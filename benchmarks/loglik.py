"""Benchmark 3: K = 5000 test log-likelihood, chunked ``vb.log_likelihood`` vs naive.

The 64-200-200-50 VAE (benchmarks.vae, initial parameters: throughput does not depend
on training) evaluates ``log p(x)`` with K = 5000 importance samples for every test
digit. All alternatives process the test set in the same example batches, vmapped:
``naive`` draws all K samples at once (``chunk_size=None``), ``chunk=C`` streams C
samples at a time through ``lax.scan``. Reported: examples per second, XLA's planned
temporary memory per call (``memory_analysis().temp_size_in_bytes``) and the spread
of the estimates between alternatives (different draws, same estimator).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import vbounds as vb
from benchmarks import common, vae

NUM_SAMPLES = 5000


def _loglik_fn(chunk_size):
    def one(params, x, key):
        return vb.log_likelihood(
            key,
            vae.log_joint_fn(params, x),
            vae.make_q,
            vae.encode(params, x),
            num_samples=NUM_SAMPLES,
            chunk_size=chunk_size,
        )

    @jax.jit
    def batch(params, x, key):
        keys = jax.random.split(key, x.shape[0])
        return jax.vmap(functools.partial(one, params))(x, keys)

    return batch


def run(quick: bool = False, gpu: bool = False) -> dict:
    _, x_test = common.digits()
    # CPU: 297 = 9 x 33, equal batches, one compile per alternative. GPU: the whole test
    # set in one call (the naive form then holds 297 x 5000 decoder activations, ~3 GB).
    example_batch = len(x_test) if gpu and not quick else 33
    num_examples = example_batch if quick else len(x_test)
    x = jnp.asarray(x_test[:num_examples])
    batches = [x[i : i + example_batch] for i in range(0, num_examples, example_batch)]
    params, _ = vae.init_state(0)
    if gpu:
        chunk_sizes = (250, 1000) if quick else (250, 1000, 2500)
    else:
        chunk_sizes = (100, 1000) if quick else (50, 100, 250, 1000)
    variants = {"naive (K at once)": None} | {f"chunk={c}": c for c in chunk_sizes}
    fns = {name: _loglik_fn(c) for name, c in variants.items()}
    key = jax.random.key(0)
    temp = {name: common.compiled_temp_bytes(f, params, batches[0], key) for name, f in fns.items()}
    # The work is the same for every chunking, and XLA's cost analysis counts a scan's body
    # once, not once per trip: the FLOPs of the unchunked call stand for all of them.
    work = common.compiled_flops(fns["naive (K at once)"], params, batches[0], key)
    flops = {name: work for name in fns}
    matmul = common.reference_rates(gpu, quick)["default"]
    estimates = {}

    def pass_over_test_set(name):
        f = fns[name]

        def go():
            out = [f(params, b, jax.random.fold_in(key, i)) for i, b in enumerate(batches)]
            estimates[name] = np.concatenate([np.asarray(o) for o in out])

        return go

    for f in fns.values():  # compile on one batch; the passes below are all warm
        jax.block_until_ready(f(params, batches[0], key))
    timings = common.interleaved(
        {name: pass_over_test_set(name) for name in fns}, repeats=3, warmup=0
    )
    naive = timings["naive (K at once)"]["median_s"]
    mean_ll = {name: float(np.mean(v)) for name, v in estimates.items()}
    rows = []
    for name, t in timings.items():
        rows.append(
            {
                "alternative": name,
                "median pass": common.fmt_time(t["median_s"]),
                "examples/s": f"{num_examples / t['median_s']:.1f}",
                "speed vs naive": f"{naive / t['median_s']:.2f}x",
                "temp memory/call": common.fmt_bytes(temp[name]),
                "mean log p(x)": f"{mean_ll[name]:.3f}",
            }
        )
        if flops[name]:
            rate = flops[name] * len(batches) / t["median_s"]
            rows[-1]["matmul fraction"] = f"{rate / matmul['flops_per_s']:.1%}"
    best = _recommend(timings, temp, chunk_sizes)
    return {
        "title": f"Test log-likelihood, K={NUM_SAMPLES}, {num_examples} digits "
        f"(batches of {example_batch} examples)",
        "num_examples": num_examples,
        "example_batch": example_batch,
        "timings": timings,
        "temp_bytes": temp,
        "flops_per_call": flops,
        "matmul": matmul,
        "mean_log_likelihood": mean_ll,
        "peak_rss_mb": common.peak_rss_mb(),
        "recommended_chunk_size": best,
        "rows": rows,
        "notes": [
            f"recommended default chunk_size: {best} (the smallest chunk whose throughput "
            "is within 5% of the fastest chunked run)"
        ],
    }


def _recommend(timings: dict, temp: dict, chunk_sizes) -> int:
    """Smallest chunk (least memory) within 5% of the fastest chunked throughput."""
    times = {c: timings[f"chunk={c}"]["median_s"] for c in chunk_sizes}
    fastest = min(times.values())
    return min(c for c, t in times.items() if t <= 1.05 * fastest)
