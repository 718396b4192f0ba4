"""The MI staircase of Poole et al. (2019): one estimator, one critic per run.

``x ~ N(0, I_20)``, ``y = rho x + sqrt(1 - rho^2) eps`` (``data.cubic=True``: ``y^3``)
with rho stepped so that the true MI is 2, 4, 6, 8, 10 nats for 4,000 steps each; batch
64, Adam 5e-4; critics of two ReLU layers of 256 (separable: embeddings of 32), baseline
of two layers of 512. The run and every evaluation (at the end of each level, on 1,024
held-out pairs of each level, in batches of 64) follow ``data.steps_per_level``, so
``--config.data.steps_per_level=300`` shortens the whole staircase.

One run (``objective.estimator``: infonce, nwj, tuba, interpolated, js, dv, mine,
smile; ``model.critic``: separable, concat, bilinear)::

    python -m experiments.main --config=experiments/configs/mi_gaussian.py \\
        --config.objective.estimator=smile --config.model.critic=concat --workdir=runs/smile

The figure of Poole et al. (the estimate at the end of each level against the true MI,
one panel per estimator, one line per critic) is the sweep's ``report.png``, with the
per-level values in ``staircase.md`` beside it::

    python -m experiments.sweep --config=experiments/configs/mi_gaussian.py \\
        --sweep='objective.estimator=infonce,nwj,tuba,interpolated,js,dv,mine,smile' \\
        --sweep='model.critic=separable,concat' --sweep='data.cubic=False,True' \\
        --workdir=runs/mi_staircase --parallel=4

Variants: ``smoke`` (two levels of three steps, tiny critics: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config

LEVELS = (2.0, 4.0, 6.0, 8.0, 10.0)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Poole et al.'s protocol (section 4, figure 2) with InfoNCE and a separable critic."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    smoke = variant == "smoke"
    levels = (2.0, 4.0) if smoke else LEVELS
    model = {"critic": "separable"}
    if smoke:
        model.update(hidden=8, layers=1, embed_dim=4, baseline_hidden=8)
    config = get_base_config(
        model=("mi_critic", model),
        objective=("mi_bound", {"estimator": "infonce", "tail": 2 if smoke else 500}),
        data=(
            "gaussian_staircase",
            {
                "levels": levels,
                "steps_per_level": 3 if smoke else 4000,
                "num_test": 16 if smoke else 1024,
            },
        ),
    )
    config.batch_size = 8 if smoke else 64
    config.eval.batch_size = config.batch_size
    # The run follows the staircase: one evaluation and one checkpoint at the end of
    # each level (a reference, so an override of data.steps_per_level carries over).
    steps_per_level = config.data.get_ref("steps_per_level")
    config.num_steps = steps_per_level * len(levels)
    config.eval_every = steps_per_level
    config.checkpoint_every = steps_per_level
    config.log_every = 1 if smoke else 50
    config.optimizer.learning_rate = 5e-4
    config.optimizer.eps = 1e-8  # optax's default, as in the paper's Adam
    return config
