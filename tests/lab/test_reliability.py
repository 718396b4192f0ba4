"""Nothing silent, nothing lost: divergence, bad data, a changed config, two processes on
one workdir, damaged checkpoints and logs, an unwritable workdir, and runs killed at
random points."""

import builtins
import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import ml_collections
import numpy as np
import pytest

from tests.lab.test_training import tiny_config
from vbounds.lab import TrainingDivergedError, read_metrics, train_and_evaluate
from vbounds.lab.workdir import ConfigMismatchError, WorkdirLockedError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHORT = {"num_steps": 4, "checkpoint_every": 2, "eval_every": 4, "log_every": 1}


def _rows(workdir):
    return read_metrics(os.path.join(workdir, "metrics.jsonl"))


def _no_time(rows):
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]


def test_divergence_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    workdir = str(tmp_path)
    train_and_evaluate(tiny_config(**SHORT), workdir)
    good = _rows(workdir)
    blowup = tiny_config(**{**SHORT, "num_steps": 40, "optimizer.learning_rate": 1e30})
    with pytest.raises(TrainingDivergedError, match=r"non-finite at step \d+") as error:
        train_and_evaluate(blowup, workdir, allow_config_change=True)
    step = int(str(error.value).split("at step ")[1].split()[0])
    assert 4 < step < 40
    rows = _rows(workdir)
    assert rows[: len(good)] == good
    assert all(np.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    saved = sorted(int(s) for s in os.listdir(tmp_path / "checkpoints") if s.isdigit())
    assert saved and max(saved) < step
    # The latest checkpoint is the last good one: a sane rerun resumes from it.
    sane = tiny_config(**{**SHORT, "num_steps": max(saved) + 2})
    assert train_and_evaluate(sane, workdir, allow_config_change=True)["step"] == max(saved) + 2


@pytest.mark.parametrize(
    ("value", "match"), [(np.nan, "non-finite values"), (1e30, "rescale or standardise")]
)
def test_bad_values_in_an_npz_fail_at_load(tmp_path, value, match):
    x = np.random.default_rng(0).random((40, 6)).astype(np.float32)
    x[3, 2] = value
    np.savez(tmp_path / "data.npz", x_train=x, x_test=x[:8].copy() * 0 + 0.5)
    config = tiny_config()
    config.data = ml_collections.ConfigDict(
        {"name": "npz", "path": str(tmp_path / "data.npz"), "binarize": False, "seed": 0}
    )
    config.model.likelihood = "gaussian"
    with pytest.raises(ValueError, match=f"x_train has .*{match}"):
        train_and_evaluate(config, str(tmp_path / "run"))


def test_a_changed_config_is_refused_then_allowed_and_recorded(tmp_path):
    workdir = str(tmp_path)
    train_and_evaluate(tiny_config(**{**SHORT, "num_steps": 2}), workdir)
    before = (tmp_path / "config.json").read_text()
    changed = tiny_config(**{**SHORT, "optimizer.learning_rate": 1e-2, "seed": 3})
    with pytest.raises(ConfigMismatchError, match="optimizer.learning_rate: 0.003 -> 0.01") as e:
        train_and_evaluate(changed, workdir)
    assert "seed: 0 -> 3" in str(e.value) and "--allow_config_change" in str(e.value)
    assert (tmp_path / "config.json").read_text() == before
    shapes = tiny_config(**{**SHORT, "model.latent_dim": 8})
    with pytest.raises(ConfigMismatchError, match="other shapes.*model.latent_dim: 4 -> 8"):
        train_and_evaluate(shapes, workdir, allow_config_change=True)
    train_and_evaluate(changed, workdir, allow_config_change=True)
    with open(tmp_path / "config_history.jsonl") as f:
        history = [json.loads(line) for line in f]
    assert history[0]["step"] == 2
    assert history[0]["changes"]["optimizer.learning_rate"] == [0.003, 0.01]
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 3
    # Only the run length changed: it resumes without asking.
    longer = tiny_config(**{**SHORT, "optimizer.learning_rate": 1e-2, "seed": 3, "num_steps": 6})
    assert train_and_evaluate(longer, workdir)["step"] == 6


def test_a_live_lock_refuses_and_a_stale_one_is_taken_over(tmp_path, caplog):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "lock.json").write_text(
            json.dumps({"host": os.uname().nodename, "pid": sleeper.pid})
        )
        with pytest.raises(WorkdirLockedError, match=f"in use by pid {sleeper.pid}"):
            train_and_evaluate(tiny_config(**{**SHORT, "num_steps": 2}), str(tmp_path))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert train_and_evaluate(tiny_config(**{**SHORT, "num_steps": 2}), str(tmp_path))
    assert "stale lock" in caplog.text
    assert not (tmp_path / "lock.json").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("finished")
    train_and_evaluate(tiny_config(**SHORT), str(workdir))
    return workdir


def _largest_file(directory):
    files = [os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs]
    return max(files, key=os.path.getsize)


CORRUPTIONS = {
    "deleted metadata": lambda d: os.remove(os.path.join(d, "default", "_METADATA")),
    "truncated data": lambda d: open(_largest_file(os.path.join(d, "default", "d")), "r+").truncate(
        7
    ),
    "garbage data": lambda d: open(_largest_file(os.path.join(d, "default")), "wb").write(
        b"x" * 64
    ),
    "emptied directory": lambda d: [shutil.rmtree(d), os.makedirs(d)],
    "state replaced by a file": lambda d: [
        shutil.rmtree(os.path.join(d, "default")),
        open(os.path.join(d, "default"), "w").write("{}"),
    ],
    "deleted manifest": lambda d: os.remove(os.path.join(d, "default", "manifest.ocdbt")),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_latest_checkpoint_falls_back_to_an_intact_one(
    tmp_path, finished_run, corruption, caplog
):
    caplog.set_level(logging.INFO, logger="vbounds")
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    CORRUPTIONS[corruption](str(workdir / "checkpoints" / "4"))
    results = train_and_evaluate(tiny_config(**SHORT), str(workdir))
    assert (
        "does not restore" in caplog.text and "resumed from the checkpoint at step 2" in caplog.text
    )
    assert results["step"] == 4
    steps = [(r["step"], "loss" in r) for r in _rows(workdir)]
    assert len(steps) == len(set(steps))
    assert _no_time(_rows(workdir)) == _no_time(_rows(finished_run))


def test_a_torn_metrics_line_is_repaired_on_resume(tmp_path, finished_run, caplog):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    with open(workdir / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "lo')
    train_and_evaluate(tiny_config(**{**SHORT, "num_steps": 6}), str(workdir))
    assert "torn last line" in caplog.text
    with open(workdir / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]  # every line parses
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]


def test_an_unwritable_workdir_fails_at_once(tmp_path, monkeypatch):
    real_open = builtins.open

    def read_only(path, *args, **kwargs):
        if ".write-test" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only)
    with pytest.raises(PermissionError, match="not writable.*Read-only file system"):
        train_and_evaluate(tiny_config(**SHORT), str(tmp_path))


def _main_with(workdir, override):
    """``experiments.main`` on the default config with one override."""
    config = os.path.join(ROOT, "experiments", "configs", "default.py")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.main",
            f"--config={config}",
            f"--workdir={workdir}",
            override,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def test_main_exits_non_zero_with_one_readable_line(tmp_path):
    run = _main_with(tmp_path, "--config.optimizer.eps=-1.0")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("error: ValueError: config.optimizer.eps")
    assert "Traceback" not in run.stderr


def test_a_resume_between_logged_rows_averages_the_same_steps(tmp_path):
    # Checkpoints at 3 and 6, rows every 2 steps: the checkpoint at 3 falls inside the
    # window of the row at 4. A run killed after it (simulated by deleting the newer
    # checkpoint) must log the row at 4 over steps 3-4, as the uninterrupted run did.
    config = tiny_config(num_steps=6, checkpoint_every=3, log_every=2, eval_every=6)
    train_and_evaluate(config, str(tmp_path / "clean"))
    shutil.copytree(tmp_path / "clean", tmp_path / "killed")
    shutil.rmtree(tmp_path / "killed" / "checkpoints" / "6")
    train_and_evaluate(config, str(tmp_path / "killed"))
    want = _no_time(_rows(tmp_path / "clean"))
    assert [r["step"] for r in want] == [2, 4, 6, 6]
    assert _no_time(_rows(tmp_path / "killed")) == want


_KILLABLE = [
    sys.executable,
    "-m",
    "experiments.main",
    f"--config={os.path.join(ROOT, 'experiments', 'configs', 'default.py')}:smoke",
    "--config.num_steps=40",
    "--config.checkpoint_every=3",
    "--config.log_every=2",
    "--config.eval_every=20",
]


def test_runs_killed_at_random_points_finish_bit_identical(tmp_path):
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": "2", "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
    started = time.monotonic()
    clean = subprocess.run(
        [*_KILLABLE, f"--workdir={tmp_path / 'clean'}"], cwd=ROOT, env=env, capture_output=True
    )
    assert clean.returncode == 0, clean.stderr[-2000:]
    # Kill times scale with this machine's speed: the clean run compiled everything (the
    # later runs find it in the tests' compilation cache and take about 0.6 of its time).
    duration = time.monotonic() - started
    rng = np.random.default_rng(0)
    killed = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [*_KILLABLE, f"--workdir={tmp_path / 'killed'}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.2, 0.55) * duration)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
    assert killed >= 1
    final = subprocess.run(
        [*_KILLABLE, f"--workdir={tmp_path / 'killed'}"], cwd=ROOT, env=env, capture_output=True
    )
    assert final.returncode == 0, final.stderr[-2000:]
    got, want = _no_time(_rows(tmp_path / "killed")), _no_time(_rows(tmp_path / "clean"))
    assert got == want  # bit-identical, and no duplicated rows


def test_an_unknown_override_names_the_key_and_the_valid_ones(tmp_path):
    run = _main_with(tmp_path, "--config.objective.foo=1")
    assert run.returncode == 1
    assert "config.objective has no field 'foo'; valid keys: estimator" in run.stderr
    assert "Traceback" not in run.stderr
