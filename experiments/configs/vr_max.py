"""VR-max (the alpha -> -inf Renyi bound) with K=5 on digits."""

from experiments.configs.base import get_base_config


def get_config():
    """VR-max (the alpha -> -inf Renyi bound) with K=5 on digits."""
    config = get_base_config()
    config.objective.name = "vr_max"
    config.objective.num_samples = 5
    return config
