"""beta-VAE against beta-TCVAE (Chen et al. 2018) on the procedural ``shapes`` images.

Model: the registered ``vae`` (Gaussian encoder, Bernoulli decoder), MLPs of 256-128
(ReLU) on 16x16 binary images, 6 latent units. Objective ``tcvae`` (``vb.disentangle``):
``method="tcvae"`` penalises the total correlation by ``beta`` (MI and dimension-wise KL
at weight 1, minibatch stratified sampling over the 972 training images); ``method=
"beta_vae"`` weighs the whole KL by ``beta``. Adam 1e-3, batches of 128, 1,000 steps. The
test evaluation (324 held-out images) reports the test ELBO, the KL decomposition of
the test set's aggregate posterior and MIG of the posterior means against the five
factors (shape, scale, rotation, x, y).

One run::

    python -m experiments.main --config=experiments/configs/tcvae_shapes.py \\
        --config.objective.beta=4 --workdir=runs/tcvae_b4

The comparison (MIG and the decomposition against beta, both objectives, three seeds)::

    python -m experiments.sweep --config=experiments/configs/tcvae_shapes.py \\
        --sweep='objective.method=beta_vae,tcvae' --sweep='objective.beta=2,8' \\
        --sweep='seed=0,1,2' --workdir=runs/tcvae_shapes --parallel=2

Variants: ``smoke`` (a few steps of a tiny network: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke
from vbounds.lab.data import shapes


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """beta-TCVAE with beta = 6 on the shapes images."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    data = {"size": 16, "num_scales": 3, "num_rotations": 4, "num_positions": 6}
    data.update({"test_fraction": 0.25, "seed": 0})
    config = get_base_config(
        model=(
            "vae",
            {
                "latent_dim": 6,
                "hidden_sizes": (256, 128),
                "activation": "relu",
                "likelihood": "bernoulli",
            },
        ),
        objective=(
            "tcvae",
            {
                "method": "tcvae",
                "alpha": 1.0,
                "beta": 6.0,
                "gamma": 1.0,
                "dataset_size": shapes.train_size(data),
                "estimator": "mss",
                "mig_bins": 20,
            },
        ),
        data=("shapes", data),
    )
    config.num_steps = 1000
    config.batch_size = 128
    config.eval_every = 500
    config.checkpoint_every = 500
    config.log_every = 100
    config.optimizer.learning_rate = 1e-3
    config.eval.batch_size = 108
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden_sizes = (16,)
        config.model.latent_dim = 3
        config.eval.batch_size = 36
    return config
