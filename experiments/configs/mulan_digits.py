"""MuLAN on the digits' 17 grey levels: a learned, input-adaptive noise schedule.

The data and the decoder of ``vdm_digits`` (integer grey levels mapped to the grid, the
discretised decoder over 17 levels). The model is ``vbounds.lab.models.denoisers.MuLAN``:
an encoder ``q(u | x)`` of an 8-dimensional auxiliary latent, a per-pixel polynomial
schedule ``gamma(t; u)`` on ``[-13.3, 5]``, and a denoiser ``eps_hat(z_t, t, u)``: by default
``GridDenoiser`` (VDM's per-pixel posterior over the 17 levels, here under each pixel's own
``gamma(t; u)``, one hidden layer of 128, ``u`` as context); ``model.denoiser=fourier`` is
MuLAN's own Fourier-feature MLP (use ``model.hidden_sizes=(128,128)``), which cannot snap to
the grid and ends far above the per-pixel baseline. The bound adds ``KL(q(u | x) || N(0, I))``
(logged as ``latent``) to VDM's terms. Evaluated in continuous time and with T = 100 and
1,000 steps.

    python -m experiments.main --config=experiments/configs/mulan_digits.py --workdir=runs/mulan
    python -m experiments.sweep --config=experiments/configs/mulan_digits.py \\
        --sweep='seed=0,1,2' --workdir=runs/mulan_digits --parallel=2

Variants: ``smoke`` (a few steps, tiny networks: the test suite runs it).
"""

from experiments.configs._diffusion import diffusion_config


def get_config(variant: str = ""):
    """MuLAN with the grid denoiser, 4,000 steps of batch 128."""
    return diffusion_config(
        variant,
        model=("mulan", {"denoiser": "grid", "latent_dim": 8, "hidden_sizes": (128,)}),
        objective=("mulan", {"num_bins": 17, "eval_num_steps": (100, 1000)}),
        data=("digits_levels", {}),
        smoke_model={
            "latent_dim": 2,
            "hidden_sizes": (16,),
            "encoder_hidden_sizes": (8,),
            "schedule_hidden_sizes": (8,),
            "fourier_exponents": (4,),
        },
    )
