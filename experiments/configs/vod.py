"""VOD (Lievin et al. 2023): the self-normalised importance-weighted Renyi bound, on the VAE.

alpha = 0 with K = 5 samples from q (uniform ``s``); at alpha = 0 and q = p(z) it would be
IWAE's bound with the prior as proposal.
"""

from experiments.configs.base import get_base_config, smoke_vae


def get_config(variant: str = ""):
    """VOD with alpha=0 and K=5 on the digits VAE."""
    config = get_base_config(objective=("vod", {"alpha": 0.0, "num_samples": 5}))
    return smoke_vae(config) if variant == "smoke" else config
