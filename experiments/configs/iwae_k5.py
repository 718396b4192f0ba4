"""IWAE with K=5 importance samples (reparameterised gradients) on digits."""

from experiments.configs.base import get_base_config


def get_config():
    """IWAE with K=5 importance samples (reparameterised gradients) on digits."""
    config = get_base_config()
    config.objective.name = "iwae"
    config.objective.num_samples = 5
    return config
