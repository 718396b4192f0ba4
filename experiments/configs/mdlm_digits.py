"""Continuous-time discrete diffusion on binarised digits: MDLM (masking) or UDLM (uniform).

Same data and network as ``d3pm_digits`` (binarised digits; an MLP predicting
``p(x_0 | x_t)``), trained on the continuous-time negative ELBO: MDLM's masked-diffusion
bound (``objective.name=mdlm``, the default) or UDLM's uniform-noise bound
(``--config.objective.name=udlm``), with keep probability ``alpha(t) = 1 - t``
(``objective.schedule=cosine`` for ``cos(pi t / 2)``). The report's samples discretise the
process on ``objective.sample_steps`` steps.

    python -m experiments.main --config=experiments/configs/mdlm_digits.py --workdir=runs/mdlm
    python -m experiments.sweep --config=experiments/configs/mdlm_digits.py \\
        --sweep='objective.name=mdlm,udlm' --sweep='seed=0,1,2' \\
        --workdir=runs/mdlm_digits --parallel=2

Variants: ``smoke`` (a few steps, tiny network: the test suite runs it).
"""

from experiments.configs._diffusion import diffusion_config


def get_config(variant: str = ""):
    """MDLM with the linear schedule, 4,000 steps of batch 128."""
    return diffusion_config(
        variant,
        model=("discrete_denoiser", {"num_classes": 2, "hidden_sizes": (256, 256)}),
        objective=("mdlm", {"schedule": "linear"}),
        data=("digits_binary", {"threshold": 8}),
        smoke_model={"hidden_sizes": (16,)},
    )
