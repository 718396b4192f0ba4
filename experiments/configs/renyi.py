"""Renyi (VR) bound with alpha=0.5 and K=5 (Li & Turner 2016) on digits."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """Renyi (VR) bound with alpha=0.5 and K=5 (Li & Turner 2016) on digits."""
    config = get_base_config(objective=("renyi", {"alpha": 0.5, "num_samples": 5}))
    return smoke_vae(config) if variant == "smoke" else config
