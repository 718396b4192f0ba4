"""IWAE with K=5 importance samples (reparameterised gradients) on digits."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """IWAE with K=5 importance samples (reparameterised gradients) on digits."""
    config = get_base_config(objective=("iwae", {"num_samples": 5}))
    return smoke_vae(config) if variant == "smoke" else config
