"""The core stands alone: ``pip install vbounds`` declares jax, numpy and distrax only,
and ``vb``, ``vb.mi``, ``vb.diffusion`` and every lazily imported family (``vb.gp``,
``vb.eig``, ...) work with every framework package absent.

(`.ci/run` also installs the core into a throwaway virtual environment and runs it.)"""

import os
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORK = ("flax", "optax", "orbax", "ml_collections", "sklearn", "matplotlib", "tqdm")

# Runs with the framework packages made unimportable, as if they were not installed.
SCRIPT = """
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None

sys.meta_path.insert(0, NotInstalled())
import distrax, jax, jax.numpy as jnp
import vbounds as vb

log_w = jnp.array([[-1.0, -2.0], [-0.5, -3.0], [-2.0, -1.0]])
assert jnp.allclose(vb.iwae(log_w), jax.nn.logsumexp(log_w, 0) - jnp.log(3.0))

def make_q(p):
    return distrax.MultivariateNormalDiag(p["loc"], jnp.ones(2))

log_joint = lambda z: distrax.MultivariateNormalDiag(jnp.zeros(2)).log_prob(z)
grad = jax.grad(lambda p: vb.estimate(
    jax.random.key(0), log_joint, make_q, p, num_samples=4, estimator="dreg").surrogate
)({{"loc": jnp.zeros(2)}})
print("mi", float(vb.mi.infonce(jnp.eye(4) * 3.0)))
terms = vb.diffusion.gaussian_vlb(
    jax.random.key(1), jnp.zeros(3), lambda z, t: jnp.zeros_like(z),
    lambda t: vb.diffusion.linear_gamma(t, gamma_min=-10.0, gamma_max=5.0))
print("diffusion", float(terms.total))
for name in vb._LAZY_SUBMODULES:  # vb.gp, vb.eig, ...: each family imports without them
    getattr(vb, name)
print("loaded", sorted(m for m in {blocked!r} if m in sys.modules))
"""


def test_the_core_declares_jax_numpy_and_distrax_only():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip() for d in project["dependencies"]}
    assert names == {"jax", "numpy", "distrax"}
    lab = {d.split(">")[0].split("=")[0].strip() for d in project["optional-dependencies"]["lab"]}
    assert {"flax", "optax", "orbax-checkpoint", "ml-collections", "scikit-learn"} <= lab


def test_the_core_runs_without_the_framework_packages():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(blocked=FRAMEWORK)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "loaded []" in run.stdout


def test_the_families_are_submodules_imported_on_first_use():
    import pytest

    import vbounds as vb

    assert set(vb._LAZY_SUBMODULES) <= set(dir(vb))
    assert vb.gp.__name__ == "vbounds.gp"
    with pytest.raises(AttributeError, match="no_such_family"):
        vb.no_such_family  # noqa: B018
