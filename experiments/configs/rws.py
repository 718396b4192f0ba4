"""Reweighted wake-sleep with K=10 (self-normalised importance-sampled wake-phi)."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """Reweighted wake-sleep with K=10 (self-normalised importance-sampled wake-phi)."""
    config = get_base_config(objective=("rws", {"estimator": "is", "num_samples": 10}))
    return smoke_vae(config) if variant == "smoke" else config
