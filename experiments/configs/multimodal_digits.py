"""Multimodal VAEs on the digits: image and label as two modalities (PoE, MoE, MoPoE).

Model ``multimodal_vae``: an image expert (MLP 64-128-128, ReLU, pixels thresholded at
1/2) and a label expert (one-hot, MLP 10-128) to Gaussians over ``z`` in R^8, a Bernoulli
image decoder and a categorical label decoder, prior ``N(0, I)``. Objective
``multimodal`` (``vb.multimodal``) with ``method`` ``"poe"`` (MVAE: joint and unimodal
PoE ELBOs), ``"moe"`` (MMVAE: stratified IWAE with K = 4 and DReG) or ``"mopoe"``
(MoPoE). Adam 1e-3, batches of 128, 1,000 steps; the stratified 75/25 digits split
(1,347 training, 450 test images). The test evaluation reports the method's own
joint ELBO, an IWAE bound with 64 samples from its joint posterior (comparable across
methods) and the cross-modal coherence in both directions.

The comparison (three methods, three seeds)::

    python -m experiments.sweep --config=experiments/configs/multimodal_digits.py \\
        --sweep='objective.method=poe,moe,mopoe' --sweep='seed=0,1,2' \\
        --workdir=runs/multimodal_digits --parallel=2

Variants: ``smoke`` (a few steps of a tiny network: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """MoPoE on (image, label) of the digits."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("multimodal_vae", {"latent_dim": 8, "hidden": 128, "activation": "relu"}),
        objective=("multimodal", {"method": "mopoe", "num_samples": 4, "eval_num_samples": 64}),
        data=("digits_classification", {"seed": 0, "test_fraction": 0.25}),
    )
    config.num_steps = 1000
    config.batch_size = 128
    config.eval_every = 500
    config.checkpoint_every = 500
    config.log_every = 50
    config.optimizer.learning_rate = 1e-3
    config.eval.batch_size = 160
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden = 16
        config.model.latent_dim = 2
        config.objective.num_samples = 2
        config.objective.eval_num_samples = 4
        config.eval.batch_size = 64
    return config
