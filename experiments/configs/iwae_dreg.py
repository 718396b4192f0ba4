"""IWAE with K=50 and doubly-reparameterised encoder gradients (Tucker et al. 2019)."""

from experiments.configs.base import get_base_config


def get_config():
    """IWAE with K=50 and doubly-reparameterised encoder gradients (Tucker et al. 2019)."""
    config = get_base_config()
    config.objective.name = "iwae"
    config.objective.estimator = "dreg"
    config.objective.num_samples = 50
    return config
