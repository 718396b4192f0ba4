"""Shared helpers: interleaved timing, the dense-matmul reference rate, data, memory."""

from __future__ import annotations

import functools
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def machine_slug() -> str:
    """A short name for the results file, e.g. ``cpu-2core`` or ``gpu-h100``."""
    backend = jax.default_backend()
    if backend == "cpu":
        return f"cpu-{os.cpu_count()}core"
    kind = jax.devices()[0].device_kind.lower().replace(" ", "-")
    return f"{backend}-{kind}"


def machine_info() -> dict:
    return {
        "slug": machine_slug(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in jax.devices()],
        "load_average_at_start": list(os.getloadavg()),
    }


def block(x):
    return jax.block_until_ready(x)


def interleaved(
    fns: dict[str, Callable[[], object]], *, repeats: int, inner: int = 1, warmup: int = 1
) -> dict[str, dict]:
    """Times each zero-argument callable ``repeats`` times, interleaving A, B, C, A, ...

    Interleaving makes slow drifts of a shared machine (other jobs, thermal) hit every
    alternative alike. Each sample is the mean over ``inner`` back-to-back calls, and the
    callable must block on its result itself (e.g. ``jax.block_until_ready``).

    Returns ``{name: {"median_s", "min_s", "iqr_s", "samples"}}``.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: summarize(s) for name, s in samples.items()}


def summarize(samples: list[float]) -> dict:
    q = np.percentile(samples, [25, 75]) if len(samples) > 1 else [samples[0]] * 2
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "iqr_s": float(q[1] - q[0]),
        "samples": [round(s, 6) for s in samples],
    }


def matmul_rate(
    *, n: int = 2048, repeats: int = 7, dtype=jnp.float32, precision: str | None = None
) -> dict:
    """Dense matmul rate of this backend (FLOP/s): the reference peak.

    ``precision``: ``None`` is JAX's default (on NVIDIA GPUs a float32 product may use the
    TF32 tensor cores), ``"highest"`` forces full float32 arithmetic.
    """
    ka, kb = jax.random.split(jax.random.key(0))
    # Several operand pairs, rotated, so repeated calls do not just measure a warm cache.
    pairs = [
        (
            jax.random.normal(jax.random.fold_in(ka, i), (n, n), dtype),
            jax.random.normal(jax.random.fold_in(kb, i), (n, n), dtype),
        )
        for i in range(3)
    ]
    mm = jax.jit(functools.partial(jnp.matmul, precision=precision))
    state = {"i": 0}

    def call():
        a, b = pairs[state["i"] % len(pairs)]
        state["i"] += 1
        block(mm(a, b))

    t = interleaved({"matmul": call}, repeats=repeats, warmup=2)["matmul"]
    return {
        "n": n,
        "dtype": jnp.dtype(dtype).name,
        "precision": precision or "default",
        "median_s": t["median_s"],
        "flops_per_s": 2.0 * n**3 / t["median_s"],
    }


def reference_rates(gpu: bool, quick: bool) -> dict:
    """The matmul rates a benchmark compares its FLOP rate with.

    On the CPU one float32 rate. On a GPU: float32 at JAX's default precision (what the
    benchmarked steps use), full-precision float32, and bfloat16 (the tensor-core peak).
    """
    if not gpu:
        return {"default": matmul_rate(n=1024 if quick else 2048, repeats=5 if quick else 9)}
    n = 2048 if quick else 8192
    return {
        "default": matmul_rate(n=n, repeats=10),
        "float32-highest": matmul_rate(n=n, repeats=10, precision="highest"),
        "bfloat16": matmul_rate(n=n, repeats=10, dtype=jnp.bfloat16),
    }


def is_gpu() -> bool:
    return jax.default_backend() == "gpu"


def compiled_flops(jitted, *args) -> float | None:
    """FLOPs of one call from XLA's cost analysis (None when the backend gives none)."""
    cost = jitted.lower(*args).compile().cost_analysis()
    if isinstance(cost, list):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def compiled_temp_bytes(jitted, *args) -> int | None:
    """Peak temporary buffer size XLA plans for one call (``memory_analysis``)."""
    mem = jitted.lower(*args).compile().memory_analysis()
    if mem is None:
        return None
    return int(mem.temp_size_in_bytes)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def digits(seed: int = 0):
    """The binarised digits: (x_train grey-level in [0, 1], x_test fixed binary)."""
    from vbounds.lab.data.digits import load_digits

    data = load_digits(seed=seed)
    return np.asarray(data.x_train, np.float32), np.asarray(data.x_test, np.float32)


def binarize(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(x.shape) < x).astype(np.float32)


def fmt_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GiB"
