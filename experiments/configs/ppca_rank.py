"""PPCA rank selection by the ELBO against the likelihood, on data of known rank.

Data (``ppca_rank``): 10-dimensional draws of a rank-3 PPCA (orthogonal loadings of
lengths 3, 2, 1; noise standard deviation 1), ``data.num_train`` training rows and 1,000
held-out rows, all from ``data.seed``. Model (``ppca``): rank ``model.rank`` with a
mean-field Gaussian ``q(W)``; ``z`` integrated out exactly. Objective (``ppca_elbo``): the
ELBO with a ``N(0, 1)`` prior on every loading, 4 reparameterised draws of ``W`` per step;
Adam 1e-2, batches of 48, 2,000 steps. The evaluation scores the training set: the ELBO
(128 draws of ``W``, closed-form KL), the maximum likelihood of a PPCA of that rank (closed
form) and the held-out log-likelihood.

One run::

    python -m experiments.main --config=experiments/configs/ppca_rank.py \\
        --config.model.rank=3 --config.data.num_train=500 --workdir=runs/ppca_r3

The rank each criterion selects against N (the sweep's ``report.png`` and
``selected_rank.md``)::

    python -m experiments.sweep --config=experiments/configs/ppca_rank.py \\
        --sweep='data.num_train=50,250,2000' --sweep='model.rank=1,2,3,4,5' \\
        --sweep='data.seed=0,1,2' --workdir=runs/ppca_rank --parallel=2

Variants: ``smoke`` (a few steps on tiny data: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Rank-3 PPCA data, a rank-2 model by default."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("ppca", {"rank": 2, "init_scale": 0.1}),
        objective=("ppca_elbo", {"prior_scale": 1.0, "num_samples": 4, "eval_num_samples": 128}),
        data=(
            "ppca_rank",
            {"seed": 0, "data_dim": 10, "true_rank": 3, "num_train": 200, "num_test": 1000},
        ),
    )
    config.num_steps = 2000
    config.batch_size = 48
    config.eval_every = 2000
    config.checkpoint_every = 2000
    config.log_every = 100
    config.optimizer.learning_rate = 1e-2
    config.eval.batch_size = 400
    if variant == "smoke":
        config = smoke(config)
        config.data.num_train = 40
        config.data.num_test = 24
        config.objective.eval_num_samples = 8
    return config
