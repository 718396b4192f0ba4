"""Benchmark 4: MI bounds at large N, dense score matrix vs the chunked ``from_critic``.

A separable critic ``f(x, y) = (x W_x) . (y W_y)`` on correlated Gaussian pairs (16-dim,
64-dim embeddings); the timed call is the value and the gradient with respect to the
critic's parameters (a training step's work). ``dense`` builds the ``[N, N]`` scores and
calls ``vb.mi.<bound>``; ``chunk=C`` is ``vb.mi.from_critic(..., chunk_size=C)``, which
scans over blocks of C rows and rematerialises them in the backward pass.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import vbounds as vb
from benchmarks import common

DIM, EMBED = 16, 64


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    y = (0.8 * x + 0.6 * rng.standard_normal((n, DIM))).astype(np.float32)
    scale = 1.0 / np.sqrt(DIM)
    params = {
        "wx": (scale * rng.standard_normal((DIM, EMBED))).astype(np.float32),
        "wy": (scale * rng.standard_normal((DIM, EMBED))).astype(np.float32),
    }
    return jnp.asarray(x), jnp.asarray(y), jax.tree.map(jnp.asarray, params)


def _critic(params):
    def critic(xb, y):
        # Scaled so that scores are O(1) at initialisation (exp(scores) stays finite).
        return (xb @ params["wx"]) @ (y @ params["wy"]).T / EMBED

    return critic


def _dense_bound(bound: str, params, x, y):
    return getattr(vb.mi, bound)(_critic(params)(x, y))


def _chunked_bound(bound: str, chunk: int, params, x, y):
    return vb.mi.from_critic(_critic(params), x, y, bound=bound, chunk_size=chunk)


def _call_blocking(f, *args):
    return common.block(f(*args))


def run(quick: bool = False) -> dict:
    sizes = (4096,) if quick else (4096, 16384)
    chunks = (512,) if quick else (256, 1024)
    bounds = ("infonce",) if quick else ("infonce", "nwj")
    rows, results = [], {}
    for n in sizes:
        x, y, params = _data(n)
        for bound in bounds:
            fns = {"dense": functools.partial(_dense_bound, bound)}
            for c in chunks:
                fns[f"chunk={c}"] = functools.partial(_chunked_bound, bound, c)
            jitted = {name: jax.jit(jax.value_and_grad(f)) for name, f in fns.items()}
            temp = {name: common.compiled_temp_bytes(f, params, x, y) for name, f in jitted.items()}
            values = {name: float(f(params, x, y)[0]) for name, f in jitted.items()}
            timings = common.interleaved(
                {
                    name: functools.partial(_call_blocking, f, params, x, y)
                    for name, f in jitted.items()
                },
                repeats=3,
                warmup=0,
            )
            dense_t = timings["dense"]["median_s"]
            results[f"{bound} N={n}"] = {
                "timings": timings,
                "temp_bytes": temp,
                "values": values,
            }
            for name, t in timings.items():
                rows.append(
                    {
                        "bound": bound,
                        "N": n,
                        "form": name,
                        "median (value+grad)": common.fmt_time(t["median_s"]),
                        "vs dense": f"{t['median_s'] / dense_t:.2f}x",
                        "temp memory": common.fmt_bytes(temp[name]),
                        "value": f"{values[name]:.4f}",
                    }
                )
    return {
        "title": "MI bounds, value and gradient of a separable critic: dense vs chunked",
        "results": results,
        "rows": rows,
        "notes": [],
    }
