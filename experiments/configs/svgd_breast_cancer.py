"""Bayesian logistic regression on scikit-learn's breast cancer set by SVGD.

Prior ``w ~ N(0, I)`` on the bias and the 30 standardised features' weights; 50 particles
(``model.num_particles``) started from ``N(0, 1)`` move along the Stein direction
(``vb.svgd.stein_direction``, RBF kernel, median-heuristic bandwidth) of the full-batch
posterior, with Adam's per-coordinate step sizes (0.05, 500 steps); see the
``bayes_logreg`` objective for the surrogate loss that makes the loop's optimiser take the
SVGD step. Data: the 456 / 113 split of ``data.seed``. The test evaluation averages the
predictive probability over the particles: test log-likelihood, accuracy and expected
calibration error. Compare with ``mfvi_breast_cancer.py`` (a mean-field Gaussian ELBO)::

    python -m experiments.sweep --config=experiments/configs/svgd_breast_cancer.py \\
        --sweep='seed=0,1,2' --workdir=runs/svgd_breast_cancer

Variants: ``smoke`` (a few steps, 8 particles: the tests run it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """SVGD for Bayesian logistic regression on breast cancer, 50 particles."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("logreg_particles", {"num_particles": 50, "init_scale": 1.0}),
        objective=("bayes_logreg", {"method": "svgd", "prior_variance": 1.0, "bandwidth": 0.0}),
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
        config.model.num_particles = 8
    return config
