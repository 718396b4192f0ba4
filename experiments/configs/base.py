"""Shared defaults of the digits experiments; each config file changes what it is about."""

import ml_collections


def get_base_config() -> ml_collections.ConfigDict:
    """The fields every config has (DESIGN.md), at the digits scale.

    The model is the IWAE paper's one-stochastic-layer VAE, scaled to 8x8 digits
    (64 inputs): tanh MLPs of 100 units, 16 latent units.
    """
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.num_steps = 3000
    config.batch_size = 100
    config.eval_every = 1500
    config.checkpoint_every = 500
    config.log_every = 50

    config.model = ml_collections.ConfigDict(
        {"name": "vae", "latent_dim": 16, "hidden_sizes": (100, 100), "activation": "tanh"}
    )
    config.objective = ml_collections.ConfigDict(
        {"name": "iwae", "estimator": "reparam", "num_samples": 5, "alpha": 0.0, "kl": "analytic"}
    )
    config.data = ml_collections.ConfigDict(
        {"name": "digits", "path": "", "seed": 0, "binarize": True}
    )
    config.optimizer = ml_collections.ConfigDict(
        {"name": "adam", "learning_rate": 1e-3, "eps": 1e-4, "schedule": "constant"}
    )
    # chunk_size None: vb.default_chunk_size() of the backend (100 on CPU, 1000 on GPU).
    config.eval = ml_collections.ConfigDict(
        {
            "num_samples": 5000,
            "chunk_size": ml_collections.config_dict.placeholder(int),
            "batch_size": 100,
        }
    )
    config.distributed = ml_collections.ConfigDict(
        {"coordinator_address": "", "num_processes": 1, "process_id": 0}
    )
    return config
