"""The MI staircase as a config of the framework: the ``gaussian_staircase`` data, the
``mi_bound`` objective at the exact critic, MINE's moving average through a resume, the
per-level reports.

Statistical checks compare sample means with standard errors computed from the samples
(4.5 standard errors, fixed seeds)."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import vbounds as vb
from experiments.configs import mi_gaussian
from vbounds.lab import read_metrics, train_and_evaluate
from vbounds.lab.config import validate
from vbounds.lab.data import load_dataset
from vbounds.lab.data.staircase import GaussianStaircase
from vbounds.lab.models.mi import MICritic
from vbounds.lab.objectives import make_objective
from vbounds.lab.objectives import mi as mi_objective
from vbounds.lab.registry import lookup
from vbounds.lab.sweep import summarize_sweep

Z = 4.5
DIM = 20


def mean_se(values):
    values = np.asarray(values, np.float64).ravel()
    return values.mean(), values.std(ddof=1) / math.sqrt(values.size)


def rho_of(mi_nats, dim=DIM):
    # I(x; y) = -(d/2) log(1 - rho^2) for y = rho x + sqrt(1 - rho^2) eps.
    return math.sqrt(1.0 - math.exp(-2.0 * mi_nats / dim))


def log_ratio(x, y, rho):
    """``[.., i, j] = log p(y_j | x_i) - log p(y_j)`` of the Gaussian pairs (float64)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x.shape[-1]
    diff = y[..., None, :, :] - rho * x[..., :, None, :]
    return (
        -0.5 * d * np.log1p(-(rho**2))
        - 0.5 * np.sum(diff**2, -1) / (1 - rho**2)
        + 0.5 * np.sum(y**2, -1)[..., None, :]
    )


def joint_log_ratio(x, y, rho):
    """``log p(y_i | x_i) - log p(y_i)`` of each pair (float64)."""
    d = x.shape[-1]
    return (
        -0.5 * d * math.log1p(-(rho**2))
        - 0.5 * np.sum((y - rho * x) ** 2, -1) / (1 - rho**2)
        + 0.5 * np.sum(y**2, -1)
    )


def staircase(**overrides):
    return load_dataset({"name": "gaussian_staircase", **overrides})


# The data ------------------------------------------------------------------------------


@pytest.mark.parametrize("cubic", [False, True])
def test_pairs_have_the_correlation_and_mi_they_claim(cubic):
    levels = (2.0, 6.0, 10.0)
    data = staircase(levels=levels, steps_per_level=8, cubic=cubic, num_test=2000)
    test = data.test_split()
    for index, mi in enumerate(levels):
        rho = rho_of(mi)
        steps = range(8 * index, 8 * (index + 1))
        batches = [data.train_batch(seed=3, step=s, batch_size=250) for s in steps]
        rows = slice(2000 * index, 2000 * (index + 1))
        held_out = {k: v[rows] for k, v in test.items()}
        for split in ({k: np.concatenate([b[k] for b in batches]) for k in batches[0]}, held_out):
            assert split["x"].shape == (2000, DIM) and split["x"].dtype == np.float32
            np.testing.assert_array_equal(split["true_mi"], np.float32(mi))
            x = split["x"].astype(np.float64)
            y = np.cbrt(split["y"].astype(np.float64)) if cubic else split["y"]
            # Unit variances and correlation rho in every coordinate (pooled).
            for values, target in ((x * x, 1.0), (y * y, 1.0), (x * y, rho)):
                m, se = mean_se(values)
                assert abs(m - target) <= Z * se, (mi, m, target, se)
            # The MI is the mean log density ratio of the joint pairs.
            m, se = mean_se(joint_log_ratio(x, y, rho))
            assert abs(m - mi) <= Z * se, (mi, m, se)
            assert se < 0.1


def test_batches_follow_the_staircase_and_are_pure_functions_of_seed_and_step():
    data = staircase(levels=(2.0, 4.0), steps_per_level=5, dim=3)
    levels = [data.train_batch(seed=0, step=s, batch_size=4)["true_mi"][0] for s in range(12)]
    assert levels == [2.0] * 5 + [4.0] * 7  # the last level holds
    a, b = (data.train_batch(seed=1, step=7, batch_size=6) for _ in range(2))
    for key in ("x", "y", "true_mi"):
        np.testing.assert_array_equal(a[key], b[key])
    other = data.train_batch(seed=1, step=8, batch_size=6)
    assert not np.allclose(a["x"], other["x"])
    assert not np.allclose(a["x"], data.train_batch(seed=2, step=7, batch_size=6)["x"])
    np.testing.assert_array_equal(
        data.test_split()["x"],
        staircase(levels=(2.0, 4.0), steps_per_level=5, dim=3).test_split()["x"],
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"levels": ()}, "data.*levels"),
        ({"levels": (2.0, -1.0)}, "positive finite"),
        ({"levels": (2.0, 2.0)}, "change"),
        ({"dim": 0}, "dim"),
        ({"steps_per_level": 0}, "steps_per_level"),
        ({"levels": (400.0,), "dim": 2}, "inside"),
    ],
)
def test_bad_data_settings_name_the_setting(overrides, message):
    with pytest.raises(ValueError, match=message):
        staircase(**overrides)
    with pytest.raises(ValueError, match="data.cubic"):
        GaussianStaircase(cubic="yes").validate()  # a config section type-checks it first


# The objective at the exact critic -------------------------------------------------------


class ExactCritic(nnx.Module):
    """``shift + log p(y | x) / p(y)`` of the Gaussian pairs at correlation ``rho``."""

    def __init__(self, rho: float, shift: float = 0.0):
        self.rho, self.shift = rho, shift

    def __call__(self, x, y):
        d, rho = x.shape[-1], self.rho
        diff = y[None, :, :] - rho * x[:, None, :]
        return (
            self.shift
            - 0.5 * d * jnp.log1p(-(rho**2))
            - 0.5 * jnp.sum(diff**2, -1) / (1 - rho**2)
            + 0.5 * jnp.sum(y**2, -1)[None, :]
        )


class ZeroBaseline(nnx.Module):
    """``log a(y) = 0``: TUBA's optimal baseline for the critic ``log r``."""

    def __call__(self, y):
        return jnp.zeros(y.shape[:1], y.dtype)


def np_offdiag_logmeanexp(s):
    n = s.shape[-1]
    masked = np.where(np.eye(n, dtype=bool), -np.inf, s)
    top = masked.max(axis=(-2, -1), keepdims=True)
    return np.log(np.exp(masked - top).sum(axis=(-2, -1)) / (n * (n - 1))) + top[..., 0, 0]


def np_bound(name, s, *, clip=5.0):
    """Each reported bound from its formula, in numpy (batches on the leading axis)."""
    n = s.shape[-1]
    diag = np.diagonal(s, 0, -2, -1).mean(-1)
    if name == "infonce":
        top = s.max(-1, keepdims=True)
        row_lse = np.log(np.exp(s - top).sum(-1)) + top[..., 0]
        return (np.diagonal(s, 0, -2, -1) - row_lse).mean(-1) + math.log(n)
    if name in ("nwj", "tuba", "js"):
        # NWJ of the critic (js: of the critic plus one; tuba: with log a = 0, shift one).
        shift = {"nwj": 0.0, "tuba": 1.0, "js": 1.0}[name]
        return diag + shift - np.exp(np_offdiag_logmeanexp(s + shift) - 1.0)
    if name in ("dv", "mine"):
        return diag - np_offdiag_logmeanexp(s)
    if name == "smile":
        return diag - np_offdiag_logmeanexp(np.clip(s, -clip, clip))
    raise ValueError(name)


#: What the exact critic is for each estimator: log r, or 1 + log r for NWJ.
SHIFT = {"nwj": 1.0}


@pytest.mark.parametrize("estimator", mi_objective.ESTIMATORS)
def test_objective_at_the_exact_critic_gives_each_bound(estimator):
    mi_nats, batch, num_batches = 2.0, 64, 300
    rho = rho_of(mi_nats)
    data = staircase(levels=(mi_nats,), steps_per_level=num_batches)
    batches = [data.train_batch(seed=5, step=s, batch_size=batch) for s in range(num_batches)]
    stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
    objective = make_objective(
        lookup("objective", "mi_bound").config(
            "mi_bound", estimator=estimator, interpolated_alpha=0.5, eval_chunk_size=40
        )
    )
    model = MICritic(ExactCritic(rho, SHIFT.get(estimator, 0.0)), ZeroBaseline())
    graphdef, state = nnx.split(model)
    state = nnx.to_pure_dict(state)  # as the training loop holds it

    @jax.jit
    @jax.vmap
    def run(b):
        m = nnx.merge(graphdef, state)
        loss, metrics = objective.loss(m, b, jax.random.key(0))
        held = objective.evaluate(m, b, jax.random.key(1))  # after the loss set the level
        return loss, metrics, held

    loss, metrics, held = jax.tree.map(np.asarray, run(stacked))
    reported = metrics["mi"]
    np.testing.assert_array_equal(metrics["true_mi"], np.float32(mi_nats))
    # The same value through vb.mi.from_critic, in blocks of 40 rows (MINE's is DV's).
    np.testing.assert_allclose(held["mi"][:, 0], reported, rtol=2e-5, atol=2e-5)
    np.testing.assert_array_equal(held["at_trained_level"], True)
    scores = log_ratio(stacked["x"], stacked["y"], rho) + SHIFT.get(estimator, 0.0)
    s32 = scores.astype(np.float32)
    if estimator == "interpolated":
        expected = np.asarray(jax.vmap(lambda s: vb.mi.interpolated(s, 0.0, alpha=0.5))(s32))
    else:
        expected = np_bound(estimator, scores)
    np.testing.assert_allclose(reported, expected, rtol=1e-4, atol=1e-4)
    # The loss is minus the trained objective: JS for SMILE, the reported value otherwise.
    trained = np.asarray(jax.vmap(vb.mi.js)(s32)) if estimator == "smile" else reported
    np.testing.assert_allclose(loss, -trained, rtol=1e-5, atol=1e-5)

    m, se = mean_se(reported)
    if estimator in ("nwj", "tuba", "js"):  # unbiased at their optimal critics
        assert abs(m - mi_nats) <= Z * se, (m, se)
    elif estimator in ("dv", "mine", "smile"):  # the log of a sample mean reads high
        assert m >= mi_nats - Z * se, (m, se)
    elif estimator == "infonce":
        assert reported.max() <= math.log(batch) + 1e-5
        assert m + Z * se < mi_nats
    else:  # I_alpha lies between InfoNCE and the MI
        m_nce, se_nce = mean_se(np_bound("infonce", scores - SHIFT.get(estimator, 0.0)))
        assert m_nce + Z * se_nce < m < mi_nats + Z * se


def test_mine_threads_its_moving_average_through_the_model():
    rho = rho_of(4.0)
    data = staircase(levels=(4.0,))
    config = lookup("objective", "mi_bound").config("mi_bound", estimator="mine", mine_decay=0.9)
    objective = make_objective(config)
    model = MICritic(ExactCritic(rho), ZeroBaseline())
    state = vb.mi.mine_init()
    for step in range(3):
        batch = data.train_batch(seed=0, step=step, batch_size=32)
        scores = ExactCritic(rho)(batch["x"], batch["y"])
        value, state = vb.mi.mine(scores, state, decay=0.9)
        _, metrics = objective.loss(model, batch, jax.random.key(0))
        np.testing.assert_allclose(metrics["mi"], value, rtol=1e-6)
        np.testing.assert_allclose(model.mine_state.log_ema, state.log_ema, rtol=1e-6)
        assert int(model.mine_state.count) == step + 1


# Through the framework -------------------------------------------------------------------


def _smoke(estimator="mine"):
    config = mi_gaussian.get_config("smoke")
    config.objective.estimator = estimator
    return config


def _restored_rest(workdir, step):
    import orbax.checkpoint as ocp

    manager = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")))
    restored = manager.restore(step, args=ocp.args.StandardRestore())
    manager.close()
    return jax.tree.map(np.asarray, restored["rest"])


def _training_rows(workdir):
    return [
        {k: v for k, v in r.items() if k != "wall_time"}
        for r in read_metrics(os.path.join(workdir, "metrics.jsonl"))
    ]


def test_mine_average_is_carried_and_resumed_exactly(tmp_path):
    config = _smoke("mine")
    total = config.num_steps
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train_and_evaluate(config, straight)
    config.num_steps = total // 2
    train_and_evaluate(config, resumed)
    config.num_steps = total
    results = train_and_evaluate(config, resumed)
    assert _training_rows(straight) == _training_rows(resumed)
    a, b = _restored_rest(straight, total), _restored_rest(resumed, total)
    assert int(a["mine_count"]) == int(b["mine_count"]) == total
    assert np.isfinite(a["mine_log_ema"]) and a["mine_log_ema"] == b["mine_log_ema"]
    assert float(a["trained_mi"]) == config.data.levels[-1] == results["test_true_mi"]
    assert os.path.getsize(os.path.join(resumed, "report.png")) > 0


def test_level_estimates_from_logged_rows():
    rows = [{"step": s, "loss": 0.0, "mi": float(s), "true_mi": 2.0} for s in (2, 4, 6)]
    rows += [{"step": 6, "test_mi": 1.5, "test_mi_stderr": 0.1, "test_true_mi": 2.0}]
    rows += [{"step": s, "loss": 0.0, "mi": 10.0 + s, "true_mi": 4.0} for s in (8, 10, 11)]
    rows += [{"step": 11, "test_mi": "nan", "test_mi_stderr": "nan", "test_true_mi": 4.0}]
    first, second = mi_objective.level_estimates(rows, tail=4)
    # Level 1: the rows ending at steps 4 and 6 (two steps each).
    assert first["end_step"] == 6 and first["tail_rows"] == 2
    assert first["train_mi"] == 5.0
    assert first["train_mi_se"] == pytest.approx(np.std([4.0, 6.0], ddof=1) / math.sqrt(2))
    assert (first["test_mi"], first["test_mi_se"]) == (1.5, 0.1)
    # Level 2: rows ending at 8, 10 and 11 lie in (7, 11]; weights 2, 2, 1.
    assert second["tail_rows"] == 3
    assert second["train_mi"] == pytest.approx((2 * 18 + 2 * 20 + 21) / 5)
    assert math.isnan(second["test_mi"])


def test_sweep_report_draws_the_staircase_of_each_job(tmp_path):
    points = [{"objective.estimator": e} for e in ("smile", "nwj")]
    for point in points:
        config = _smoke(point["objective.estimator"])
        train_and_evaluate(
            config, str(tmp_path / f"objective.estimator={point['objective.estimator']}")
        )
    objective = make_objective(_smoke().objective)
    summarize_sweep(str(tmp_path), points, sweep_report=objective.sweep_report)
    assert os.path.getsize(tmp_path / "report.png") > 0
    training_table = (tmp_path / "staircase.md").read_text().split("## Held-out")[0]
    rows = {
        line.split(" | ")[2]: line
        for line in training_table.splitlines()
        if line.startswith("| separable |")
    }
    assert set(rows) == {"smile", "nwj"}
    # The table's values are those of each job's logged rows.
    logged = read_metrics(str(tmp_path / "objective.estimator=nwj" / "metrics.jsonl"))
    levels = mi_objective.level_estimates(logged, tail=_smoke().objective.tail)
    cell = rows["nwj"].split(" | ")[3]
    assert cell == f"{levels[0]['train_mi']:.2f} +- {levels[0]['train_mi_se']:.2f}"
    with open(tmp_path / "objective.estimator=nwj" / "config.json") as f:
        assert json.load(f)["objective"]["estimator"] == "nwj"
    assert "test_mi" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("objective", "estimator", "mine_f", "objective.estimator"),
        ("objective", "smile_clip", -1.0, "objective.smile_clip"),
        ("objective", "interpolated_alpha", 0.0, "objective.interpolated_alpha"),
        ("objective", "mine_decay", 1.0, "objective.mine_decay"),
        ("objective", "tail", 0, "objective.tail"),
        ("model", "critic", "deep", "model.critic"),
    ],
)
def test_bad_settings_name_the_key(section, key, value, message):
    config = _smoke()
    config[section][key] = value
    with pytest.raises(ValueError, match=message):
        plan = validate(config, num_devices=1)
        data = load_dataset(config.data)
        plan.model[0](
            plan.model[1],
            rngs=nnx.Rngs(0),
            example_batch=data.train_batch(seed=0, step=0, batch_size=4),
        )


def test_the_config_follows_the_levels():
    config = mi_gaussian.get_config()
    assert config.num_steps == 5 * 4000 and config.eval_every == 4000
    assert (config.batch_size, config.optimizer.learning_rate, config.data.dim) == (64, 5e-4, 20)
    config.data.steps_per_level = 300
    assert (config.num_steps, config.eval_every, config.checkpoint_every) == (1500, 300, 300)
