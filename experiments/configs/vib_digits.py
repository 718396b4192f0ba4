"""The deep variational information bottleneck (Alemi et al. 2017) on the digits: one beta.

Encoder: an MLP 64-256-256 (ReLU) to a diagonal Gaussian ``q(z|x)`` over ``z`` in R^8;
decoder: a linear softmax ``q(y|z)``; prior ``N(0, I)``. The loss is the batch mean of
``vb.mi.vib_loss`` with one z draw per example; Adam 1e-3 (optax's default eps), batches
of 128, 1,500 steps. Data: the digits' pixels in [0, 1] with their labels, the stratified
75/25 split of ``data.seed`` (1,347 training, 450 test images). The test evaluation (12 z
draws per example) reports the accuracy of the averaged predictive probabilities, the rate
``E KL(q(z|x) || N(0, I))`` (an upper bound on ``I(x; z)``), the cross-entropy and the
Barber-Agakov lower bound ``I(z; y) >= H(y) - CE``.

One run (``objective.beta``, default 1e-3)::

    python -m experiments.main --config=experiments/configs/vib_digits.py \\
        --config.objective.beta=0.01 --workdir=runs/vib_beta0.01

The information plane (accuracy and the ``I(z; y)`` lower bound against the rate, one
point per beta: the sweep's ``report.png``, with the values in ``info_plane.md``)::

    python -m experiments.sweep --config=experiments/configs/vib_digits.py \\
        --sweep='objective.beta=1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,0.1,0.3,1' \\
        --sweep='seed=0,1,2' --workdir=runs/vib_digits --parallel=2

Variants: ``smoke`` (a few steps of a tiny network: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """The VIB of Alemi et al. at the digits' scale, beta = 1e-3."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("vib", {"z_dim": 8, "hidden": 256, "layers": 2, "activation": "relu"}),
        objective=("vib", {"beta": 1e-3, "num_samples": 1, "eval_num_samples": 12}),
        data=("digits_classification", {"seed": 0, "test_fraction": 0.25}),
    )
    config.num_steps = 1500
    config.batch_size = 128
    config.eval_every = 150
    config.checkpoint_every = 750
    config.log_every = 50
    config.optimizer.learning_rate = 1e-3
    config.optimizer.eps = 1e-8  # optax.adam's default, as the original experiment
    config.eval.batch_size = 160
    if variant == "smoke":
        config = smoke(config)
        config.model.z_dim = 2
        config.model.hidden = 16
        config.model.layers = 1
        config.objective.eval_num_samples = 3
        config.eval.batch_size = 64
    return config
