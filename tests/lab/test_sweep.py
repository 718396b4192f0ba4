"""Sweeps: grid expansion, parallel local jobs, and the mean +- standard-error summary."""

import json
import os
import sys

import numpy as np
import pytest

from vbounds.lab import sweep


def test_parse_sweep_is_a_cartesian_product():
    points = sweep.parse_sweep(["objective.num_samples=1,5,50", "seed=0,1"])
    assert len(points) == 6
    assert points[0] == {"objective.num_samples": "1", "seed": "0"}
    assert points[-1] == {"objective.num_samples": "50", "seed": "1"}
    assert sweep.parse_sweep([]) == [{}]
    with pytest.raises(ValueError, match="a.b=v1,v2"):
        sweep.parse_sweep(["seed"])
    with pytest.raises(ValueError, match="twice"):
        sweep.parse_sweep(["seed=0", "seed=1"])


def test_job_command_passes_overrides_to_main():
    cmd = sweep.job_command("c.py", "wd", {"objective.alpha": "0.5"}, ["--config.num_steps=3"])
    assert cmd[1:] == [
        "-m",
        "experiments.main",
        "--config=c.py",
        "--workdir=wd",
        "--config.num_steps=3",
        "--config.objective.alpha=0.5",
    ]


def test_tuple_values_are_not_split_and_one_value_axes_stay_out_of_names():
    points = sweep.parse_sweep(["model.hidden_sizes=(64,64),(128, 128)", "seed=0"])
    assert [p["model.hidden_sizes"] for p in points] == ["(64,64)", "(128, 128)"]
    assert sweep.varying_keys(points) == ["model.hidden_sizes"]
    assert sweep.job_name(points[1], sweep.varying_keys(points)) == "model.hidden_sizes=(128,128)"
    assert sweep.job_name({"seed": "0"}, []) == "default"


def _fake_job(values):
    """A job that writes the final test row a training run would, from its overrides."""
    script = (
        "import json, sys;"
        "a = dict(x[9:].split('=') for x in sys.argv[1:] if x.startswith('--config.'));"
        "wd = [x[10:] for x in sys.argv[1:] if x.startswith('--workdir=')][0];"
        f"v = {values!r}[(a['k'], a['seed'])];"
        "open(wd + '/metrics.jsonl', 'w').write(json.dumps({'step': 1, 'loss': 1.0}) + '\\n' + "
        "json.dumps({'step': 2, 'test_log_likelihood': v, 'test_bound': v - 1}) + '\\n')"
    )

    def command(config_path, workdir, point, overrides=()):
        overrides = [f"--config.{k}={v}" for k, v in point.items()]
        return [sys.executable, "-c", script, f"--workdir={workdir}", *overrides]

    return command


def test_run_and_summarize(tmp_path, monkeypatch):
    values = {
        ("1", "0"): -30.0,
        ("1", "1"): -31.0,
        ("1", "2"): -32.0,
        ("5", "0"): -29.0,
        ("5", "1"): -29.5,
        ("5", "2"): -29.0,
    }
    monkeypatch.setattr(sweep, "job_command", _fake_job(values))
    points = sweep.parse_sweep(["k=1,5", "seed=0,1,2"])
    codes = sweep.run_sweep("unused.py", str(tmp_path), points, parallel=2)
    assert codes == [0] * 6
    grouped = sweep.summarize_sweep(str(tmp_path), points)
    assert [row["k"] for row in grouped] == ["1", "5"]
    for row, k in zip(grouped, ["1", "5"], strict=True):
        data = np.array([values[(k, s)] for s in "012"])
        assert row["n"] == 3
        assert row["test_log_likelihood"] == pytest.approx(data.mean())
        assert row["test_log_likelihood_se"] == pytest.approx(data.std(ddof=1) / np.sqrt(3))
        assert row["test_bound"] == pytest.approx(data.mean() - 1)
    with open(tmp_path / "summary.md") as f:
        table = f.read()
    assert "| 1 | 3 | -31.00 +- 0.58 |" in table
    assert os.path.getsize(tmp_path / "summary.png") > 0
    with open(tmp_path / "summary.csv") as f:
        assert len(f.read().strip().splitlines()) == 7
    json.dumps(grouped)


def test_a_one_run_summary_has_no_nan_and_a_failed_job_is_listed(tmp_path, monkeypatch):
    values = {("1", "0"): -30.0}
    fake = _fake_job(values)

    def command(config_path, workdir, point, overrides=()):
        if point["k"] == "2":  # this job dies with an error
            return [sys.executable, "-c", "raise SystemExit('ValueError: config.k is bad')"]
        return fake(config_path, workdir, point, overrides)

    monkeypatch.setattr(sweep, "job_command", command)
    points = sweep.parse_sweep(["k=1,2", "seed=0"])
    codes = sweep.run_sweep("unused.py", str(tmp_path), points)
    assert codes[0] == 0 and codes[1] != 0
    grouped = sweep.summarize_sweep(str(tmp_path), points, codes=codes)
    assert len(grouped) == 1 and "test_log_likelihood_se" not in grouped[0]
    table = (tmp_path / "summary.md").read_text()
    assert "nan" not in table
    assert "| 1 | 1 | -30.00 | -31.00 |" in table
    assert "1 job(s) failed" in table and "`k=2`" in table and "config.k is bad" in table
