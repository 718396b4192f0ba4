"""Reweighted wake-sleep with K=10 (self-normalised importance-sampled wake-phi)."""

from experiments.configs.base import get_base_config


def get_config():
    """Reweighted wake-sleep with K=10 (self-normalised importance-sampled wake-phi)."""
    config = get_base_config()
    config.objective.name = "rws"
    config.objective.estimator = "is"
    config.objective.num_samples = 10
    return config
