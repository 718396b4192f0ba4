"""Conditional VAE (Sohn et al. 2015) on digits given the class label, ELBO with K=1."""

from experiments.configs.base import get_base_config


def get_config():
    """Conditional VAE (Sohn et al. 2015) on digits given the class label, ELBO with K=1."""
    config = get_base_config()
    config.model.name = "cvae"
    config.objective.name = "elbo"
    config.objective.num_samples = 1
    return config
