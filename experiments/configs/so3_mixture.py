"""A density on SO(3): a mixture of IGSO(3) components fitted by maximum likelihood.

Data: 4,000 training and 1,000 test rotations from a three-component IGSO(3) mixture
(scales 0.2, 0.35, 0.5 about uniform random centres), each with its exact log-density
(``vb.diffusion.igso3_log_prob``). Model: a mixture of ``model.num_components`` IGSO(3)
densities with learned centres, scales and weights; the loss is the exact negative
log-likelihood (nats, with respect to the uniform measure on SO(3), so a uniform density
scores 0). The test evaluation reports ``test_nll`` beside ``test_true_nll`` (the generating
mixture's own NLL of the same points) and ``test_kl_gap``, their difference, an estimate of
``KL(p_data || p_model)``.

One run::

    python -m experiments.main --config=experiments/configs/so3_mixture.py \\
        --workdir=runs/so3_mixture

The sweep behind ``experiments/results/so3_mixture`` (components 1 to 4, three seeds)::

    python -m experiments.sweep --config=experiments/configs/so3_mixture.py \\
        --sweep='model.num_components=1,2,3,4' --sweep='seed=0,1,2' \\
        --workdir=runs/so3_mixture --parallel=2

Variants: ``smoke`` (a few steps; the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """The IGSO(3) mixture fit."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("igso3_mixture", {"num_components": 3, "init_sigma": 0.7}),
        objective=("so3_nll", {}),
        data=("so3_mixture", {}),
    )
    config.num_steps = 1500
    config.batch_size = 200
    config.eval_every = 500
    config.checkpoint_every = 500
    config.log_every = 50
    config.optimizer.learning_rate = 2e-2
    config.eval.batch_size = 200
    if variant == "smoke":
        config = smoke(config)
        config.data.num_train = 64
        config.data.num_test = 16
    return config
