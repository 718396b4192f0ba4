"""VR-max (the alpha -> -inf Renyi bound) with K=5 on digits: not a bound, reported as such."""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """VR-max (the alpha -> -inf Renyi bound) with K=5 on digits."""
    config = get_base_config(objective=("vr_max", {"num_samples": 5}))
    return smoke_vae(config) if variant == "smoke" else config
