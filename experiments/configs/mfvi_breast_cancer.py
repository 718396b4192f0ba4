"""Bayesian logistic regression on scikit-learn's breast cancer set by a mean-field ELBO.

The baseline of ``svgd_breast_cancer.py``: the same prior ``N(0, I)``, data split and
evaluation, with ``q(w) = N(mean, diag scale^2)`` trained on minus the reparameterised
ELBO per training point (8 draws per step, full batch, Adam 0.05, 500 steps); the test
predictive averages 200 draws of ``q``::

    python -m experiments.sweep --config=experiments/configs/mfvi_breast_cancer.py \\
        --sweep='seed=0,1,2' --workdir=runs/mfvi_breast_cancer

Variants: ``smoke`` (a few steps: the tests run it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Mean-field Gaussian VI for Bayesian logistic regression on breast cancer."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("logreg_mean_field", {"init_scale": 0.1}),
        objective=(
            "bayes_logreg",
            {"method": "elbo", "prior_variance": 1.0, "num_samples": 8, "eval_num_samples": 200},
        ),
        data=("breast_cancer", {"seed": 0, "num_test": 113}),
    )
    config.num_steps = 500
    config.batch_size = 456  # the whole training split
    config.eval_every = 250
    config.checkpoint_every = 500
    config.log_every = 25
    config.optimizer.learning_rate = 0.05
    config.eval.batch_size = 116
    if variant == "smoke":
        config = smoke(config)
        config.objective.num_samples = 2
        config.objective.eval_num_samples = 4
    return config
