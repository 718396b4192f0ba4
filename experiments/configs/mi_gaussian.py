"""The Poole et al. (2019) MI staircase on correlated Gaussians (``experiments/mi_gaussian.py``).

``x ~ N(0, I_20)``, ``y = rho x + sqrt(1 - rho^2) eps`` with rho stepped so that the true
MI is 2, 4, 6, 8, 10 nats; batch 64, Adam 5e-4, 4,000 steps per level. Comma-separated
``estimators`` and ``critics`` select the runs, e.g. ``--config.critics=concat``;
``--config.quick=True`` is the CPU-sized check. ``experiments.sweep`` launches
``entry_point`` for each grid point and writes the combined staircase figure:

    python -m experiments.sweep --config=experiments/configs/mi_gaussian.py \
        --sweep='critics=separable,concat' --sweep='cubic=False,True' --workdir=runs/mi
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The protocol of Poole et al. (2019), section 4 / figure 2."""
    config = ml_collections.ConfigDict()
    # The script the sweep runs for each grid point (its summarize_sweep writes the summary).
    config.entry_point = "experiments.mi_gaussian"
    # 150 steps per level and smaller critics (experiments.mi_gaussian.quick).
    config.quick = False
    config.seed = 0
    config.dim = 20
    config.levels = (2.0, 4.0, 6.0, 8.0, 10.0)
    config.steps_per_level = 4000
    config.batch_size = 64
    # y -> y^3: invertible, so the MI is unchanged, but the critic has more to learn.
    config.cubic = False
    config.estimators = "infonce,nwj,tuba,interpolated,js,dv,mine,smile"
    config.critics = "separable,concat"
    # Reported estimate per level: mean over this many final steps of the level.
    config.tail = 500

    config.critic = ml_collections.ConfigDict(
        {"hidden": 256, "layers": 2, "embed_dim": 32, "baseline_hidden": 512}
    )
    config.optimizer = ml_collections.ConfigDict({"name": "adam", "learning_rate": 5e-4})
    config.bounds = ml_collections.ConfigDict(
        {"smile_clip": 5.0, "interpolated_alpha": 0.01, "mine_decay": 0.99}
    )
    return config
