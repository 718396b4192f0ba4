"""Every experiment config: the shared top-level fields, valid for 4 devices, and (its
``smoke`` variant) trains a few steps on 2 devices through ``experiments.main`` and
resumes on a rerun without repeating a metric row."""

import glob
import importlib
import json
import os
import subprocess
import sys

import pytest

from vbounds.lab.config import REQUIRED_FIELDS, validate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_DIR = os.path.join(ROOT, "experiments", "configs")
NAMES = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(CONFIG_DIR, "*.py"))
    if not os.path.basename(p).startswith(("_", "base"))
)


def _load(name, variant=None):
    module = importlib.import_module(f"experiments.configs.{name}")
    return module.get_config() if variant is None else module.get_config(variant)


def test_the_issue_configs_exist():
    expected = {"default", "vae_elbo", "iwae_k5", "iwae_k50", "iwae_dreg", "renyi", "vr_max"}
    assert expected | {"cvae", "rws", "vod", "beta_vae"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_config_has_the_fields_and_validates(name):
    for variant in (None, "smoke"):
        config = _load(name, variant)
        assert all(field in config for field in REQUIRED_FIELDS)
        validate(config, num_devices=4)


# Each config's smoke variant: half the steps, then a rerun of the whole that resumes.
_DRIVER = """
import json, logging, os, sys
import jax
from experiments.configs import {name} as module
from vbounds.lab import read_metrics, train_and_evaluate

logger = logging.getLogger("vbounds")
logger.setLevel(logging.INFO)
logger.addHandler(logging.StreamHandler())
workdir = sys.argv[1]
config = module.get_config("smoke")
total = config.num_steps
config.num_steps = total // 2
train_and_evaluate(config, workdir)
config.num_steps = total
results = train_and_evaluate(config, workdir)
rows = read_metrics(os.path.join(workdir, "metrics.jsonl"))
print("RESULT", json.dumps(dict(devices=jax.device_count(), total=total, rows=rows)))
"""


def _train_twice(name, workdir):
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-c", _DRIVER.format(name=name), str(workdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


# One config per model-objective family; the other VAE configs differ from `default` only
# in their objective section (checked against exact answers in test_objectives) and model
# sizes (test_models), and each validates above.
TRAINED = ["default", "vod", "vib_digits", "mi_gaussian"]
TRAINED += ["vdm_digits", "d3pm_digits", "mdlm_digits", "mulan_digits"]  # diffusion


@pytest.mark.parametrize("name", TRAINED)
def test_config_trains_on_two_devices_and_resumes(name, tmp_path):
    run = _train_twice(name, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.split("RESULT ", 1)[1])
    total = result["total"]
    assert result["devices"] == 2
    assert f"resumed from the checkpoint at step {total // 2}" in run.stderr
    train = [r["step"] for r in result["rows"] if "loss" in r]
    test = [r["step"] for r in result["rows"] if any(k.startswith("test_") for k in r)]
    assert train == sorted(set(train)) and train[-1] == total
    assert test == sorted(set(test)) and test[-1] == total
    assert os.path.getsize(tmp_path / "report.png") > 0
