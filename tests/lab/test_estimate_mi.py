"""estimate_mi: the held-out estimate on Gaussians of known MI, and its input errors."""

import math

import numpy as np
import pytest
from scipy.special import logsumexp

from vbounds.lab.mi_estimate import estimate_mi

D, TRUE_MI = 2, 1.0
RHO = math.sqrt(1.0 - math.exp(-2.0 * TRUE_MI / D))  # I = -D/2 log(1 - rho^2)
Z = 4.5


def gaussian_pairs(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    return x, RHO * x + math.sqrt(1.0 - RHO**2) * rng.normal(size=(n, D))


def exact_infonce_rows(x, y):
    """Per-row InfoNCE terms of the exact critic log p(y|x) - log p(y), in float64."""
    var = 1.0 - RHO**2
    log_ratio = (
        -((y[None] - RHO * x[:, None]) ** 2).sum(-1) / (2 * var)
        + (y[None] ** 2).sum(-1) / 2
        - D / 2 * math.log(var)
    )
    return np.diag(log_ratio) - logsumexp(log_ratio, axis=1) + math.log(len(x))


def test_held_out_infonce_recovers_one_nat():
    x, y = gaussian_pairs(2000)
    result = estimate_mi(
        x,
        y,
        critic="separable",
        hidden=(32, 32),
        batch_size=64,
        max_steps=400,
        eval_every=100,
        learning_rate=2e-3,
        seed=0,
    )
    assert result.num_test == 500 and result.num_validation == 300 and result.num_train == 1200
    assert result.readout == "best" and 0 < result.step <= result.steps_run <= 400
    assert result.eval_bound == "infonce" and result.cap == pytest.approx(math.log(500))
    assert len(result.curve["train_batch_mi"]) == result.steps_run
    # The tolerance is the sampling noise of InfoNCE on these 500 test pairs: 4.5 standard
    # errors of the exact critic's per-row terms (its bias at N = 500 and 1 nat is far
    # smaller). A critic trained short of the density ratio falls below this band.
    rows = exact_infonce_rows(x[result.test_indices], y[result.test_indices])
    se = rows.std(ddof=1) / math.sqrt(len(rows))
    assert abs(result.mi - TRUE_MI) <= Z * se, (result.mi, se)
    # The fitted critic, applied to raw inputs, reproduces the reported value.
    scores = np.asarray(result.scores(x[result.test_indices], y[result.test_indices]), float)
    value = np.mean(np.diag(scores) - logsumexp(scores, axis=1)) + math.log(len(scores))
    assert value == pytest.approx(result.mi, abs=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=np.zeros((9, 2))), "same number of pairs"),
        (dict(bound="infomax"), "bound must be one of"),
        (dict(critic="attention"), "critic must be one of"),
        (dict(activation="swish"), "activation must be one of"),
        (dict(hidden=()), "hidden"),
        (dict(batch_size=1), "batch_size"),
        (dict(test_fraction=1.0), "test_fraction"),
        (dict(batch_size=64), "too few pairs"),
        (dict(x=np.full((10, 2), np.nan)), "x contains NaN"),
        (dict(max_steps=0), "max_steps"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, match):
    x, y = gaussian_pairs(10)
    args = {"x": x, "y": y, **kwargs}
    with pytest.raises(ValueError, match=match):
        estimate_mi(args.pop("x"), args.pop("y"), **args)


def test_mi_critic_takes_any_hidden_widths():
    from flax import nnx

    from vbounds.lab.registry import resolve

    factory, config = resolve(
        "model",
        {"name": "mi_critic", "critic": "concat", "hidden_sizes": (7, 5, 3), "activation": "gelu"},
    )
    batch = {"x": np.zeros((4, 2), np.float32), "y": np.zeros((4, 3), np.float32)}
    model = factory(config, rngs=nnx.Rngs(0), example_batch=batch)
    shapes = [layer.kernel.shape for layer in model.critic.mlp.layers]
    assert shapes == [(5, 7), (7, 5), (5, 3), (3, 1)]
    assert model.critic(batch["x"], batch["y"]).shape == (4, 4)
    assert len(model.baseline.mlp.layers) == 4  # as many hidden layers as the critic
    bad = resolve("model", {"name": "mi_critic", "hidden_sizes": (4, 0)})[1]
    with pytest.raises(ValueError, match="model.hidden_sizes"):
        factory(bad, rngs=nnx.Rngs(0), example_batch=batch)
