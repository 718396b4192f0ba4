"""A latent state-space model of a noisy pendulum, trained by the per-step ELBO or FIVO.

Data: damped pendulums observed as noisy ``(sin theta, cos theta)``, 25 steps of 0.1 s
(512 training and 128 test sequences, fixed by ``data.seed``). Model: a 3-dimensional
latent state with residual MLP transitions, an MLP emission and a filtering proposal
``q(z_t | z_{t-1}, x_t)`` (32 hidden units each). Objective: ``objective.bound`` in
``elbo`` / ``iwae`` / ``fivo`` with 4 particles (FIVO: systematic resampling at
ESS < K/2), Adam 3e-3, batches of 32, 1,500 steps. The test evaluation estimates each
sequence's ``log p(x)`` with a 256-particle filter using the learned proposal, and reports
the three bounds with 4 particles, all in nats per sequence.

ELBO against FIVO over three seeds::

    python -m experiments.sweep --config=experiments/configs/ssm_pendulum.py \\
        --sweep='objective.bound=elbo,fivo' --sweep='seed=0,1,2' \\
        --workdir=runs/ssm_pendulum --parallel=2

Variants: ``smoke`` (a few steps of a tiny model: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """The noisy-pendulum state-space model, FIVO with 4 particles."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("latent_ssm", {"z_dim": 3, "hidden": 32}),
        objective=(
            "sequential",
            {
                "bound": "fivo",
                "num_particles": 4,
                "resampling": "systematic",
                "ess_threshold": 0.5,
                "eval_num_particles": 256,
            },
        ),
        data=("noisy_pendulum", {"seed": 0, "num_train": 512, "num_test": 128}),
    )
    config.num_steps = 1500
    config.batch_size = 32
    config.eval_every = 500
    config.checkpoint_every = 500
    config.log_every = 50
    config.optimizer.learning_rate = 3e-3
    config.optimizer.grad_clip_norm = 10.0
    config.eval.batch_size = 64
    if variant == "smoke":
        config = smoke(config)
        config.model.z_dim = 2
        config.model.hidden = 8
        config.objective.eval_num_particles = 8
        config.data.num_train = 32
        config.data.num_test = 8
        config.data.num_steps = 6
    return config
