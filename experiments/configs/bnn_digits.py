"""A Bayesian digits classifier by weight-space VI, against its point estimate.

Model (``bnn``): a ReLU MLP 64-100-10 with a mean-field Gaussian ``q(w)`` over every weight
and bias. Objective (``bnn``): the per-datum ELBO with Blundell et al.'s scale-mixture prior
(``pi = 0.5``, ``sigma_1 = 1``, ``sigma_2 = e^-6``), the likelihood through Flipout and the
KL by Monte Carlo (``objective.estimator``: ``weights`` for Bayes by backprop,
``local_reparam``, ``flipout``; ``map`` trains the same network's means alone, the MAP point
estimate under the same prior). Adam 1e-3, batches of 64, 4,000 steps. Data: the digits'
pixels in [0, 1], the stratified 75/25 split (1,347 training images: ``objective.num_data``
must match). The test evaluation averages 32 weight draws and reports the NLL, the accuracy
and the expected calibration error (15 bins).

Calibration of the Bayesian network against the point estimate over 3 seeds::

    python -m experiments.sweep --config=experiments/configs/bnn_digits.py \\
        --sweep='objective.estimator=map,flipout,local_reparam,weights' \\
        --sweep='seed=0,1,2' --workdir=runs/bnn_digits --parallel=2

Variants: ``smoke`` (a few steps of a tiny network: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Flipout weight-space VI of a 64-100-10 MLP on the digits."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("bnn", {"hidden": 100, "layers": 1, "num_classes": 10, "init_scale": 0.01}),
        objective=("bnn", {"estimator": "flipout", "num_data": 1347, "eval_num_samples": 32}),
        data=("digits_classification", {"seed": 0, "test_fraction": 0.25}),
    )
    config.num_steps = 4000
    config.batch_size = 64
    config.eval_every = 4000
    config.checkpoint_every = 4000
    config.log_every = 100
    config.optimizer.learning_rate = 1e-3
    config.eval.batch_size = 160
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden = 8
        config.objective.eval_num_samples = 2
    return config
