"""PAC-Bayes with backprop (Perez-Ortiz et al. 2021) on the digits: a certified classifier.

Model: an MLP 64-100-100-10 (ReLU) with a mean-field Gaussian posterior over every weight
and bias, prior ``N(mu_0, 0.03^2)``. Data: the digits' stratified 75/25 split of
``data.seed``; its 1,347 training images split at random into a prior set (673) and the
bound set (674); 450 test images. Training, Adam 1e-3, batches of 128: 1,000 steps of
cross-entropy on the prior set learn the prior means ``mu_0`` (a data-dependent prior), then
2,000 steps minimise the f-quad bound (``vb.pac_bayes.quadratic``) on the bounded
cross-entropy (``p_min = 1e-4``) of the bound set, one weight draw per batch, ``n = 674``,
``delta = 0.025``, the posterior starting at the prior. The final evaluation draws 1,000
networks from the posterior and reports the 0-1 risk certificate (``kl_inverse`` of the
Monte Carlo risk with ``mc_delta = 0.01``, then ``maurer``; it holds with probability
>= 0.965) next to the test error of the same stochastic classifier.

With a data-independent prior (the random initialisation, every training image in the
bound set)::

    python -m experiments.main --config=experiments/configs/pbb_digits.py \\
        --config.data.prior_fraction=0 --config.data.prior_steps=0 \\
        --config.objective.num_train=1347 --workdir=runs/pbb_random_prior

One run::

    python -m experiments.main --config=experiments/configs/pbb_digits.py --workdir=runs/pbb

Three seeds and the three training bounds (the sweep's ``report.png`` and
``certificates.md``)::

    python -m experiments.sweep --config=experiments/configs/pbb_digits.py \\
        --sweep='objective.bound=quad,classic,kl' --sweep='seed=0,1,2' \\
        --workdir=runs/pbb_digits --parallel=2

Variants: ``smoke`` (a few steps of a tiny network, 4 posterior draws: the test suite runs
it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """PBB's f-quad objective with a data-dependent prior on the digits."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("gaussian_mlp", {"hidden": 100, "layers": 2, "prior_scale": 0.03}),
        objective=("pac_bayes_bound", {"bound": "quad", "num_train": 674}),
        data=("digits_certificate", {"prior_fraction": 0.5, "prior_steps": 1000}),
    )
    config.num_steps = 3000
    config.batch_size = 128
    config.eval_every = 3000
    config.checkpoint_every = 1500
    config.log_every = 50
    config.optimizer.learning_rate = 1e-3
    config.optimizer.eps = 1e-8
    config.eval.batch_size = 300
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden = 8
        config.model.layers = 1
        config.data.prior_steps = 3
        config.objective.eval_num_samples = 4
        config.objective.eval_chunk = 2
        config.eval.batch_size = 300
    return config
