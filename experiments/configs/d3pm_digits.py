"""D3PM on binarised digits: the T = 50 step bound, uniform or absorbing noise.

The data are the digits binarised at a fixed threshold (grey level > 8, ``digits_binary``).
The model is an MLP (two hidden layers of 256, GELU) on the one-hot ``x_t`` and an embedding
of ``t / T`` predicting ``p(x_0 | x_t)``; the reverse step is the mixture
``sum_x0 q(x_{t-1} | x_t, x_0) p(x_0 | x_t)``. ``objective.noise`` selects uniform noise
(``x_T`` uniform) or absorbing noise (``x_T`` the mask; the mask's logit is ``-inf``); both
use ``beta_t = 1 / (T - t + 1)``. Reported: the negative ELBO in bits per pixel.

    python -m experiments.main --config=experiments/configs/d3pm_digits.py --workdir=runs/d3pm
    python -m experiments.sweep --config=experiments/configs/d3pm_digits.py \\
        --sweep='objective.noise=uniform,absorbing' --sweep='seed=0,1,2' \\
        --workdir=runs/d3pm_digits --parallel=2

Variants: ``smoke`` (a few steps, tiny network: the test suite runs it).
"""

from experiments.configs._diffusion import diffusion_config


def get_config(variant: str = ""):
    """D3PM with uniform noise, T = 50, 4,000 steps of batch 128."""
    config = diffusion_config(
        variant,
        model=("discrete_denoiser", {"num_classes": 2, "hidden_sizes": (256, 256)}),
        objective=("d3pm", {"noise": "uniform", "num_steps": 50}),
        data=("digits_binary", {"threshold": 8}),
        smoke_model={"hidden_sizes": (16,)},
    )
    if variant == "smoke":
        config.objective.num_steps = 5
    return config
