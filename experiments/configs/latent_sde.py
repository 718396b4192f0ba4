"""A latent SDE fitted to a noisy double-well diffusion by its ELBO (Li et al. 2020).

Data: ``dz = (z - z^3) dt + 0.6 dW`` observed at 16 times on [0, 4] with noise 0.1 (256
training and 64 test series, fixed by ``data.seed``). Model: a 2-dimensional latent SDE
with MLP prior and posterior drifts (the posterior sees a context vector encoding the
whole series), a learned diagonal diffusion and a linear Gaussian emission. Objective:
the ELBO with the Girsanov path KL on one Euler-Maruyama path (4 steps per observation
interval). Adam 3e-3, batches of 32, 1,000 steps. The run's ``report.png`` draws posterior
sample paths of three test series.

Three seeds::

    python -m experiments.sweep --config=experiments/configs/latent_sde.py \\
        --sweep='seed=0,1,2' --workdir=runs/latent_sde --parallel=2

Variants: ``smoke`` (a few steps of a tiny model: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """The double-well latent SDE."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("latent_sde", {"z_dim": 2, "hidden": 32, "context": 8}),
        objective=("latent_sde", {"substeps": 4, "eval_num_samples": 8}),
        data=("double_well", {"seed": 0, "num_train": 256, "num_test": 64}),
    )
    config.num_steps = 1000
    config.batch_size = 32
    config.eval_every = 500
    config.checkpoint_every = 500
    config.log_every = 50
    config.optimizer.learning_rate = 3e-3
    config.optimizer.grad_clip_norm = 10.0
    config.eval.batch_size = 32
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden = 8
        config.model.context = 2
        config.objective.eval_num_samples = 2
        config.data.num_train = 16
        config.data.num_test = 8
        config.data.num_obs = 5
    return config
