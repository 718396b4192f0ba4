"""IWAE K=5 with the IWAE paper's two-stochastic-layer model (sizes scaled to digits)."""

import ml_collections

from experiments.configs.base import get_base_config


def get_config():
    """IWAE K=5, two stochastic layers (16 and 8 units; tanh MLPs of 100 and 50 units)."""
    config = get_base_config()
    config.model = ml_collections.ConfigDict(
        {"name": "two_layer_vae", "latent_dims": (16, 8), "hidden_sizes": ((100, 100), (50, 50))}
    )
    config.objective.num_samples = 5
    return config
