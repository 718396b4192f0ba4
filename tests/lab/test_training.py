"""train_and_evaluate on 4 simulated devices: the loss falls, outputs are written, a
resumed run reproduces the uninterrupted one, and bad configs fail before compiling."""

import json
import logging
import os
import socket
import subprocess
import sys

import jax
import ml_collections
import pytest

from experiments.configs.base import get_base_config
from vbounds.lab import read_metrics, train_and_evaluate


def tiny_config(**changes):
    config = get_base_config()
    config.num_steps = 40
    config.batch_size = 16
    config.eval_every = 20
    config.checkpoint_every = 20
    config.log_every = 10
    config.model.latent_dim = 4
    config.model.hidden_sizes = (32,)
    config.optimizer.learning_rate = 3e-3
    config.objective.eval_num_samples = 20
    config.objective.eval_chunk_size = 10
    for key, value in changes.items():
        section, _, field = key.rpartition(".")
        (config[section] if section else config)[field] = value
    return config


def _strip_time(rows):
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in rows]


def test_training_lowers_the_loss_and_writes_the_outputs(tmp_path, caplog):
    assert jax.device_count() == 4
    caplog.set_level(logging.INFO, logger="vbounds")
    with jax.log_compiles(True):
        results = train_and_evaluate(tiny_config(), str(tmp_path))
    assert "devices: 4" in caplog.text and "'data': 4" in caplog.text
    # One compile per config: 40 steps and two evaluations reuse the first executables
    # (a weakly typed or Python-scalar leaf in the state would trigger a second compile).
    compiles = [
        r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()
    ]
    assert sum("jit(train_step)" in m for m in compiles) == 1, compiles
    assert sum("jit(eval_step)" in m for m in compiles) == 1, compiles
    rows = read_metrics(os.path.join(tmp_path, "metrics.jsonl"))
    train = [r for r in rows if "loss" in r]
    test = [r for r in rows if "test_log_likelihood" in r]
    assert [r["step"] for r in train] == [10, 20, 30, 40]
    assert [r["step"] for r in test] == [20, 40]
    assert train[-1]["loss"] < train[0]["loss"] - 1.0
    for row in train:
        assert {"step", "loss", "bound", "elbo", "wall_time"} <= set(row)
    assert results == test[-1] and results["step"] == 40
    assert 0 <= results["test_active_units"] <= 4
    # The importance-sampled log p(x) with 20 samples is above the 1-sample ELBO.
    assert results["test_log_likelihood"] > results["test_elbo"]
    with open(os.path.join(tmp_path, "config.json")) as f:
        assert json.load(f)["objective"]["num_samples"] == 5
    assert os.path.getsize(os.path.join(tmp_path, "report.png")) > 0
    assert sorted(os.listdir(os.path.join(tmp_path, "checkpoints"))) == ["20", "40"]


SHORT_RUN = {"num_steps": 8, "checkpoint_every": 4, "eval_every": 4, "log_every": 2}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The metrics of an uninterrupted 8-step run on this process's 4 devices."""
    workdir = str(tmp_path_factory.mktemp("uninterrupted"))
    train_and_evaluate(tiny_config(**SHORT_RUN), workdir)
    return _strip_time(read_metrics(os.path.join(workdir, "metrics.jsonl")))


def _assert_same_log(got, want, *, tol=1e-5):
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        assert g == pytest.approx(w, rel=tol, abs=tol), g["step"]


def test_resumed_run_reproduces_the_uninterrupted_run(tmp_path, caplog, uninterrupted):
    parts = str(tmp_path)
    train_and_evaluate(tiny_config(**{**SHORT_RUN, "num_steps": 6}), parts)
    caplog.set_level(logging.INFO, logger="vbounds")
    final = train_and_evaluate(tiny_config(**SHORT_RUN), parts)
    assert "resumed from the checkpoint at step 6" in caplog.text
    resumed = _strip_time(read_metrics(os.path.join(parts, "metrics.jsonl")))
    # The interrupted run evaluated at its last step (6) too; otherwise logs are equal.
    resumed = [r for r in resumed if not (r["step"] == 6 and "test_bound" in r)]
    _assert_same_log(resumed, uninterrupted)
    assert final["step"] == 8
    # A rerun of the finished run trains nothing, reports the same, and logs nothing new.
    again = train_and_evaluate(tiny_config(**SHORT_RUN), parts)
    assert _strip_time([again]) == _strip_time([final])
    assert len(read_metrics(os.path.join(parts, "metrics.jsonl"))) == len(resumed) + 1


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"objective.name": "nce"}, ValueError, "objective.name .nce.; valid names: .*iwae"),
        ({"objective.estimator": "vimco", "objective.num_samples": 1}, ValueError, "vimco"),
        ({"batch_size": 6}, ValueError, "divisible by the number of devices \\(4\\)"),
        ({"eval.batch_size": 10}, ValueError, "eval.batch_size=10"),
        ({"objective.eval_chunk_size": 0}, ValueError, "eval_chunk_size"),
        ({"objective.eval_num_samples": 0}, ValueError, "eval_num_samples"),
        ({"model.name": "gan"}, ValueError, "unknown model.name .gan.; valid names: .*vae"),
        ({"optimizer.name": "adamm"}, ValueError, "optimizer.name"),
        ({"optimizer.eps": -1.0}, ValueError, "optimizer.eps"),
        ({"optimizer.learning_rate": -1e-3}, ValueError, "optimizer.learning_rate"),
        ({"optimizer.grad_clip_norm": 0.0}, ValueError, "optimizer.grad_clip_norm"),
        ({"log_every": 0}, ValueError, "log_every"),
        ({"seed": -1}, ValueError, "seed"),
        ({"num_steps": 0}, ValueError, "num_steps"),
    ],
)
def test_bad_configs_fail_before_compiling(tmp_path, monkeypatch, changes, error, match):
    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled before the config was checked")

    monkeypatch.setattr(jax, "jit", no_compiling)
    with pytest.raises(error, match=match):
        train_and_evaluate(tiny_config(**changes), str(tmp_path))


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"data.name": "mnist", "data.path": "/nonexistent/mnist"}, FileNotFoundError, "idx3"),
        ({"model.name": "cvae", "data.name": "linear_gaussian"}, ValueError, "labelled"),
    ],
)
def test_bad_data_fails_before_training(tmp_path, changes, error, match):
    config = tiny_config()
    if changes.get("data.name") == "linear_gaussian":
        config.data = ml_collections.ConfigDict({"name": "linear_gaussian", "path": ""})
        config.model.likelihood = "gaussian"
        config.model.name = "cvae"
    else:
        config.data = ml_collections.ConfigDict({"name": "mnist", "path": changes["data.path"]})
    with pytest.raises(error, match=match):
        train_and_evaluate(config, str(tmp_path))


_WORKER = """
import sys
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
from tests.lab.test_training import SHORT_RUN, tiny_config
from vbounds.lab import train_and_evaluate
process_id, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
config = tiny_config(**SHORT_RUN, **{
    "distributed.coordinator_address": f"127.0.0.1:{port}",
    "distributed.num_processes": 2,
    "distributed.process_id": process_id,
})
train_and_evaluate(config, workdir)
print("devices", jax.device_count(), "processes", jax.process_count())
"""


def test_two_processes_on_loopback_match_one_process(tmp_path, uninterrupted):
    # Two JAX processes with 2 CPU devices each form one 4-device mesh over gloo and must
    # train exactly like this process's 4 devices on the same global batches.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "JAX_PLATFORMS": "cpu", "PYTHONPATH": root}
    multi = str(tmp_path / "multi")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(i), port, multi],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=400)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
        assert "devices 4 processes 2" in output
    got = _strip_time(read_metrics(os.path.join(multi, "metrics.jsonl")))
    # gloo sums across processes in another order than XLA's CPU all-reduce.
    _assert_same_log(got, uninterrupted, tol=1e-4)
