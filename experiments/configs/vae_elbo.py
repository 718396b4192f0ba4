"""VAE trained on the ELBO (K=1, analytic KL) on digits: the IWAE paper's baseline."""

from experiments.configs.base import get_base_config


def get_config():
    """VAE trained on the ELBO (K=1, analytic KL) on digits: the IWAE paper's baseline."""
    config = get_base_config()
    config.objective.name = "elbo"
    config.objective.num_samples = 1
    return config
