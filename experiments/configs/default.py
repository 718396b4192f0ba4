"""The default experiment (``make demo``): IWAE with K=5 on the embedded digits."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """IWAE K=5, reparameterised gradients, one-stochastic-layer VAE on binarised digits."""
    config = get_base_config()
    return smoke_vae(config) if variant == "smoke" else config
