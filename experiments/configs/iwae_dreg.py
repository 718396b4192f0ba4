"""IWAE with K=50 and doubly-reparameterised encoder gradients (Tucker et al. 2019)."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """IWAE with K=50 and doubly-reparameterised encoder gradients (Tucker et al. 2019)."""
    config = get_base_config(objective=("iwae", {"estimator": "dreg", "num_samples": 50}))
    return smoke_vae(config) if variant == "smoke" else config
