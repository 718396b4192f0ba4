"""Adaptive experimental design for location finding (Foster et al. 2021), one policy.

A source ``theta ~ N(0, I_2)``; each of ``T = 10`` experiments measures the log-intensity
``log(0.1 + 1 / (1e-4 + |theta - xi|^2))`` with noise 0.5 at a design ``xi`` chosen by a
policy from the outcomes so far (model ``design_policy``: summed MLP codes of the past
experiments, 64 units). The loss is minus the sequential PCE bound on the policy's EIG
with 127 contrastive prior draws (objective ``location_spce``); Adam 3e-4 with gradients
clipped to norm 1 (a design landing on a source meets curvature ``1 / max_signal``),
batches of 128 sources, 1,500 steps. The test evaluation (512 fixed sources, 4,095
contrasts) reports the sPCE lower and sNMC upper bounds after each experiment, for the
policy and for random designs ``xi ~ N(0, I)``.

One run::

    python -m experiments.main --config=experiments/configs/eig_location.py \\
        --workdir=runs/eig_location

Three seeds, with the per-step comparison in the sweep's ``report.png``::

    python -m experiments.sweep --config=experiments/configs/eig_location.py \\
        --sweep='seed=0,1,2' --workdir=runs/eig_location

Variants: ``smoke`` (a few steps, 3 experiments, few contrasts: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Deep adaptive design for one source in the plane, 10 experiments."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("design_policy", {"hidden": 64, "num_experiments": 10, "adaptive": True}),
        objective=("location_spce", {"num_experiments": 10}),
        data=("design_prior", {"dim": 2, "num_test": 512, "seed": 0}),
    )
    config.num_steps = 1500
    config.batch_size = 128
    config.eval_every = 500
    config.checkpoint_every = 750
    config.log_every = 50
    config.optimizer.learning_rate = 3e-4
    config.optimizer.grad_clip_norm = 1.0
    config.eval.batch_size = 128
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden = 8
        config.model.num_experiments = 3
        config.objective.num_experiments = 3
        config.objective.num_contrasts = 7
        config.objective.eval_num_contrasts = 15
        config.data.num_test = 16
    return config
