"""VAE trained on the ELBO (K=1, analytic KL) on digits: the IWAE paper's baseline."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """VAE trained on the ELBO (K=1, analytic KL) on digits: the IWAE paper's baseline."""
    config = get_base_config(objective=("elbo", {"num_samples": 1}))
    return smoke_vae(config) if variant == "smoke" else config
