"""IWAE K=5 with two stochastic layers (the IWAE paper's second architecture, scaled)."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """IWAE K=5, two stochastic layers (16 and 8 units; tanh MLPs of 100 and 50 units)."""
    model = {"latent_dims": (16, 8), "hidden_sizes": ((100, 100), (50, 50))}
    config = get_base_config(model=("two_layer_vae", model), objective=("iwae", {"num_samples": 5}))
    return smoke_vae(config) if variant == "smoke" else config
