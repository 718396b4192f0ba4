"""Shared helpers: interleaved timing, the dense-matmul reference rate, data, memory."""

from __future__ import annotations

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


def matmul_rate(*, n: int = 2048, repeats: int = 7) -> dict:
    """Dense float32 matmul rate of this backend (FLOP/s): the reference peak."""
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    mm = jax.jit(jnp.matmul)
    t = interleaved({"matmul": lambda: block(mm(a, b))}, repeats=repeats, warmup=2)["matmul"]
    return {"n": n, "median_s": t["median_s"], "flops_per_s": 2.0 * n**3 / t["median_s"]}


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
    from vbounds.data.digits import load_digits

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
