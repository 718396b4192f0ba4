"""A user's own model and objective, in a file outside the package and named by import
path in a config, train through ``experiments.main`` and sweep through
``experiments.sweep``; their metric reaches ``metrics.jsonl``. Nothing in the library
is edited."""

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

USER_MODULE = '''
import jax.numpy as jnp
from flax import nnx


class PixelSum(nnx.Module):
    """Predicts the number of lit pixels of a digit from the image."""

    def __init__(self, data_dim, hidden, *, rngs):
        self.hidden = nnx.Linear(data_dim, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))[:, 0]


def make_model(config, *, rngs, example_batch):
    return PixelSum(example_batch["x"].shape[1], config.hidden, rngs=rngs)


make_model.defaults = {"hidden": 8}


def make_objective(config):
    def loss_fn(model, batch, key):
        error = model(batch["x"]) - jnp.sum(batch["x"], axis=-1)
        squared = jnp.mean(error**2)
        return config.scale * squared, {"pixel_sum_mse": squared}

    return loss_fn


make_objective.defaults = {"scale": 1.0}
'''

USER_CONFIG = """
import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config():
    config = smoke(get_base_config())
    config.model = ml_collections.ConfigDict({"name": "my_research:make_model", "hidden": 8})
    config.objective = ml_collections.ConfigDict(
        {"name": "my_research:make_objective", "scale": 1.0}
    )
    return config
"""


def _run(args, tmp_path):
    env = {
        **os.environ,
        "JAX_NUM_CPU_DEVICES": "2",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT]),
    }
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_user_model_and_objective_train_and_sweep_by_import_path(tmp_path):
    (tmp_path / "my_research.py").write_text(textwrap.dedent(USER_MODULE))
    config = tmp_path / "my_config.py"
    config.write_text(textwrap.dedent(USER_CONFIG))

    run = _run(
        ["experiments.main", f"--config={config}", f"--workdir={tmp_path / 'run'}"], tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert any("pixel_sum_mse" in r for r in rows)
    assert rows[-1]["test_pixel_sum_mse"] > 0

    sweep = _run(
        [
            "experiments.sweep",
            f"--config={config}",
            "--sweep=objective.scale=1.0,2.0",
            "--config.num_steps=2",
            f"--workdir={tmp_path / 'sweep'}",
        ],
        tmp_path,
    )
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "sweep")) == [
        "objective.scale=1.0",
        "objective.scale=2.0",
        "summary.csv",
        "summary.md",
        "summary.png",
    ]
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert "test_pixel_sum_mse" in summary and "nan" not in summary
    with open(tmp_path / "sweep" / "objective.scale=2.0" / "metrics.jsonl") as f:
        assert json.loads(f.readlines()[-1])["step"] == 2

    unknown = _run(
        [
            "experiments.main",
            f"--config={config}",
            f"--workdir={tmp_path / 'bad'}",
            "--config.objective.scale=1.0",
            "--config.model.hidden=4",
        ],
        tmp_path,
    )
    assert unknown.returncode == 0, unknown.stderr[-2000:]
