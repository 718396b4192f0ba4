"""VDM on the digits' 17 grey levels: the continuous-time bound with the discretised decoder.

The data are the integer grey levels 0..16 (``digits_levels``), mapped by the objective to
the grid ``-1 + 2k / 16`` and scored with VDM's discretised decoder over the 17 levels, so
the bound is on the discrete likelihood (bits per pixel of the 17-level image). The model
is ``GridDenoiser`` (a per-pixel posterior over the levels, one hidden layer of 128) with
the fixed linear schedule on ``[-13.3, 5]`` or, with ``--config.model.schedule=learned``,
VDM's learned monotone schedule (learned end points). Trained on the continuous-time bound
with times stratified over the batch; evaluated in continuous time and with T = 100 and
1,000 steps (``test_bpd``, ``test_bpd_T100``, ``test_bpd_T1000``).

    python -m experiments.main --config=experiments/configs/vdm_digits.py --workdir=runs/vdm
    python -m experiments.sweep --config=experiments/configs/vdm_digits.py \\
        --sweep='model.schedule=fixed,learned' --sweep='seed=0,1,2' \\
        --workdir=runs/vdm_digits --parallel=2

Variants: ``smoke`` (a few steps, tiny network: the test suite runs it).
"""

from experiments.configs._diffusion import diffusion_config


def get_config(variant: str = ""):
    """VDM with the fixed linear schedule, 4,000 steps of batch 128."""
    return diffusion_config(
        variant,
        model=("vdm", {"hidden_sizes": (128,), "schedule": "fixed"}),
        objective=("vdm", {"num_bins": 17, "eval_num_steps": (100, 1000)}),
        data=("digits_levels", {}),
        smoke_model={"hidden_sizes": (16,), "schedule_hidden": 8},
    )
