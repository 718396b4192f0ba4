"""Renyi (VR) bound with alpha=0.5 and K=5 (Li & Turner 2016) on digits."""

from experiments.configs.base import get_base_config


def get_config():
    """Renyi (VR) bound with alpha=0.5 and K=5 (Li & Turner 2016) on digits."""
    config = get_base_config()
    config.objective.name = "renyi"
    config.objective.alpha = 0.5
    config.objective.num_samples = 5
    return config
