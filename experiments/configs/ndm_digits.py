"""NDM / DiffEnc on the digits' 17 grey levels: VDM with a learned forward transform.

The ``vdm_digits`` protocol line for line (``GridDenoiser`` with one hidden layer of 128,
the fixed linear schedule on ``[-13.3, 5]``, the continuous-time bound with the discretised
decoder, 4,000 Adam steps of batch 128), plus a learned transform of the data in the
forward process, ``z_t = alpha_t F(x, t) + sigma_t eps`` (``vb.diffusion.ndm_vlb``):
``F = x + t g(x, t)`` (``model.transform=ndm``) or DiffEnc's ``x + sigma_t^2 g(x, t)``
(``model.transform=diffenc``), ``g`` an MLP with one hidden layer of 64 starting at zero.

    python -m experiments.sweep --config=experiments/configs/ndm_digits.py \\
        --sweep='model.transform=ndm,diffenc' --sweep='seed=0,1,2' \\
        --workdir=runs/ndm_digits --parallel=2

Variants: ``smoke`` (a few steps, tiny networks: the test suite runs it).
"""

from experiments.configs._diffusion import diffusion_config


def get_config(variant: str = ""):
    """NDM with the fixed linear schedule, 4,000 steps of batch 128."""
    return diffusion_config(
        variant,
        model=("ndm", {"hidden_sizes": (128,), "transform": "ndm"}),
        objective=("ndm", {"num_bins": 17, "eval_num_steps": (100, 1000)}),
        data=("digits_levels", {}),
        smoke_model={"hidden_sizes": (16,), "transform_hidden_sizes": (8,)},
    )
