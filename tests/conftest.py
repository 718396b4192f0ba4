"""Test configuration: simulate four CPU devices before JAX is imported anywhere.

Every run of the suite also gets a fresh persistent compilation cache, shared by the xdist
workers and the subprocesses the tests start (through the environment): many tests train
the same tiny configurations, and each ``train_and_evaluate`` builds new jitted closures,
so without it the same XLA programs are compiled again and again. The cache starts empty
(a new temporary directory per run, removed at the end), so a run's time is a cold-cache
time, as on a clean checkout.
"""

import os
import shutil
import tempfile

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    # Only the first process (the xdist controller, or a plain pytest) gets here; the
    # workers it starts inherit the variable.
    _CACHE = tempfile.mkdtemp(prefix="vbounds-tests-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
else:
    _CACHE = None
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", False)


def pytest_unconfigure(config):
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)
