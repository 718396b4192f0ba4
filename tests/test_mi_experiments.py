"""Smoke tests of the MI experiment scripts at tiny sizes: the Poole staircase trainer
(experiments/mi_gaussian.py), run directly and through experiments.sweep, and the VIB
sweep on digits (experiments/vib_digits.py)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import mi_gaussian, vib_digits
from experiments.configs.mi_gaussian import get_config


def tiny_config():
    config = get_config()
    config.dim, config.batch_size = 4, 16
    config.levels, config.steps_per_level, config.tail = (2.0, 4.0), 10, 5
    config.critic.hidden, config.critic.embed_dim, config.critic.baseline_hidden = 16, 8, 16
    return config


def test_config_is_the_poole_protocol():
    config = get_config()
    assert (config.dim, config.batch_size, config.steps_per_level) == (20, 64, 4000)
    assert config.optimizer.learning_rate == 5e-4
    assert set(config.estimators.split(",")) == set(mi_gaussian.ESTIMATORS)
    # rho_for inverts I = -(d/2) log(1 - rho^2).
    for mi in config.levels:
        rho = mi_gaussian.rho_for(mi, config.dim)
        assert -0.5 * config.dim * math.log(1 - rho**2) == pytest.approx(mi, rel=1e-12)


def test_estimators_trained_together_match_a_run_of_their_own():
    # Two compiled runs keep this under 20 s; the other estimators share the code path.
    config = tiny_config()
    curves, timing = mi_gaussian.train_many(config, ("infonce", "mine"), "concat")
    assert set(timing) == {"compile_s", "run_s"}
    alone = mi_gaussian.train(config, "mine", "concat")
    # Same initial critic, same batches, separate parameters and optimiser states.
    np.testing.assert_allclose(curves["mine"], alone, rtol=1e-5, atol=1e-5)
    for curve in curves.values():
        assert curve.shape == (20,)
        assert np.all(np.isfinite(curve))
    assert np.all(curves["infonce"] <= math.log(config.batch_size) + 1e-5)
    mean, std = mi_gaussian.level_stats(curves["infonce"], config)
    assert mean.shape == std.shape == (2,)
    np.testing.assert_allclose(mean, curves["infonce"].reshape(2, 10)[:, -5:].mean(axis=1))


def _write_job(directory, variant, results):
    os.makedirs(directory)
    job = {"true_mi": [2.0, 4.0], "variant": variant, "batch_size": 16, "results": results}
    with open(os.path.join(directory, "results.json"), "w") as f:
        json.dump(job, f)


def test_staircase_summary_combines_the_jobs(tmp_path):
    from vbounds.training.sweep import job_name, parse_sweep

    points = parse_sweep(["critics=separable,concat", "cubic=False,True"])
    for point in points[:3]:  # the last job has not finished
        critic, variant = point["critics"], "cubic" if point["cubic"] == "True" else "gaussian"
        shift = 0.5 if variant == "cubic" else 0.0
        results = {
            f"{critic}/nwj": {"mean": [1.0 + shift, 3.0], "std": [0.1, 0.25]},
            f"{critic}/infonce": {"mean": [1.5, 2.5 + shift], "std": [0.0, 0.2]},
        }
        _write_job(tmp_path / job_name(point), variant, results)
    rows = mi_gaussian.summarize_sweep(str(tmp_path), points)
    assert [(r["critic"], r["variant"], r["estimator"]) for r in rows] == [
        ("separable", "gaussian", "nwj"),
        ("separable", "gaussian", "infonce"),
        ("separable", "cubic", "nwj"),
        ("separable", "cubic", "infonce"),
        ("concat", "gaussian", "nwj"),
        ("concat", "gaussian", "infonce"),
    ]
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[0] == "| critic | variant | estimator | MI=2 | MI=4 |"
    assert table[4] == "| separable | cubic | nwj | 1.50 +- 0.10 | 3.00 +- 0.25 |"
    assert table[5] == "| separable | cubic | infonce | 1.50 +- 0.00 | 3.00 +- 0.20 |"
    assert len(table) == 2 + 6
    assert os.path.getsize(tmp_path / "report.png") > 0


def test_the_sweep_runs_the_staircase_end_to_end(tmp_path):
    # One tiny job through `python -m experiments.sweep`: the config's entry point runs
    # experiments.mi_gaussian, whose summary reads the job's results.json.
    tiny = {
        "critics": "concat",
        "estimators": "infonce",
        "dim": "4",
        "batch_size": "16",
        "steps_per_level": "10",
        "tail": "5",
        "critic.hidden": "16",
        "critic.embed_dim": "8",
        "critic.baseline_hidden": "16",
    }
    command = [
        sys.executable,
        "-m",
        "experiments.sweep",
        "--config=experiments/configs/mi_gaussian.py",
        "--sweep=cubic=True",
        *(f"--sweep={k}={v}" for k, v in tiny.items()),
        f"--workdir={tmp_path}",
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (job,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert os.path.getsize(job / "report.png") > 0
    result = json.loads((job / "results.json").read_text())
    assert result["variant"] == "cubic" and result["true_mi"] == list(get_config().levels)
    mean = result["results"]["concat/infonce"]["mean"]
    assert all(m <= math.log(16) + 1e-5 for m in mean)
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert len(table) == 3 and table[2].startswith("| concat | cubic | infonce | ")
    assert table[2].count("+-") == len(mean)
    assert os.path.getsize(tmp_path / "report.png") > 0


def test_vib_returns_accuracy_and_nonnegative_rate():
    results = vib_digits.train([1e-3, 1.0], steps=5, z_dim=2, hidden=16)
    assert [r["beta"] for r in results] == pytest.approx([1e-3, 1.0])
    for r in results:
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["rate"] >= 0.0
        assert math.isfinite(r["cross_entropy"]) and r["izy_lower"] <= r["entropy_y"] + 1e-6
