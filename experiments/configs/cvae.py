"""Conditional VAE (Sohn et al. 2015) on digits given the class label, ELBO with K=1."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """Conditional VAE (Sohn et al. 2015) on digits given the class label, ELBO with K=1."""
    config = get_base_config(model=("cvae", {}), objective=("elbo", {"num_samples": 1}))
    return smoke_vae(config) if variant == "smoke" else config
