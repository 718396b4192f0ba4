"""Sparse GP regression on scikit-learn's diabetes set: Titsias' collapsed bound.

Model: a zero-mean GP with an ARD RBF kernel on the 10 standardised features, Gaussian
noise, ``model.num_inducing`` inducing inputs initialised at distinct training inputs; the
lengthscales, kernel variance, noise variance and inducing inputs are trained by Adam
(0.05, 100 full-batch steps) on minus the collapsed bound per training point
(``vb.gp.collapsed_elbo``). Each step also logs the exact ``log p(y)`` of the same
hyperparameters (``vb.gp.log_marginal_likelihood``) and the gap between them. Data: the
352 / 90 split of ``data.seed``, standardised on the training rows. The test evaluation
predicts with the optimal ``q(u)`` and reports RMSE and NLL per test point.

One run::

    python -m experiments.main --config=experiments/configs/gp_diabetes.py \\
        --config.model.num_inducing=8 --workdir=runs/gp_m8

The bound against M, with the exact value beside it (the sweep's ``report.png``)::

    python -m experiments.sweep --config=experiments/configs/gp_diabetes.py \\
        --sweep='model.num_inducing=2,8,32' --sweep='seed=0,1,2' \\
        --workdir=runs/gp_diabetes --parallel=3

``objective.bound=svgp`` trains SVGP's explicit ``q(u)`` instead (with minibatches, set
``objective.num_data=352``). Variants: ``smoke`` (a few steps on 8 points: the tests run it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Collapsed sparse GP regression on diabetes, M = 16 inducing points."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=(
            "sparse_gp",
            {
                "num_inducing": 16,
                "kernel": "rbf",
                "lengthscale": 3.0,
                "variance": 1.0,
                "noise_variance": 0.5,
            },
        ),
        objective=("sparse_gp", {"bound": "collapsed", "num_data": 0, "jitter": 1e-4}),
        data=("diabetes", {"seed": 0, "num_test": 90}),
    )
    config.num_steps = 100
    config.batch_size = 352  # the whole training split: the collapsed bound is not a sum
    config.eval_every = 100
    config.checkpoint_every = 100
    config.log_every = 10
    config.optimizer.learning_rate = 0.05
    config.eval.batch_size = 88
    if variant == "smoke":
        config = smoke(config)
        config.model.num_inducing = 4
    return config
