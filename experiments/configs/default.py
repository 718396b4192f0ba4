"""The default experiment (``make demo``): IWAE with K=5 on the embedded digits."""

from experiments.configs.base import get_base_config


def get_config():
    """IWAE K=5, reparameterised gradients, one-stochastic-layer VAE on binarised digits."""
    return get_base_config()
