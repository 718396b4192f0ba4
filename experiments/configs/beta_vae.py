"""beta-VAE (Higgins et al. 2017): the weighted ELBO with beta = 4. Not a bound at beta != 1:
the run logs ``objective`` and the test ELBO beside it, never calling it a bound."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """The weighted ELBO with beta = 4 on the digits VAE."""
    config = get_base_config(objective=("weighted_elbo", {"beta": 4.0}))
    return smoke_vae(config) if variant == "smoke" else config
