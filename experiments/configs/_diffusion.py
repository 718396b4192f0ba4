"""Shared settings of the diffusion configs on the digits (``vdm_digits``, ``d3pm_digits``,
``mdlm_digits``, ``mulan_digits``).

The protocol of the earlier digits study: 4,000 Adam steps (learning rate 2e-3, optax's
default eps), batch 128, the test split of 297 images evaluated every 1,000 steps. The
evaluation averages 100 draws of the one-draw bound per image (the earlier study used 20;
more draws only shrink the Monte Carlo error, reported as ``test_bpd_mc_se``).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke

VARIANTS = ("", "smoke")


def diffusion_config(
    variant: str,
    *,
    model: tuple[str, dict],
    objective: tuple[str, dict],
    data: tuple[str, dict],
    smoke_model: dict,
) -> ml_collections.ConfigDict:
    """The full config, or its ``smoke`` variant (``smoke_model`` overrides the model).

    Args:
      variant: ``""`` or ``"smoke"``.
      model: the model's name and overrides.
      objective: the objective's name and overrides.
      data: the dataset's name and overrides.
      smoke_model: model overrides of the smoke variant (tiny networks).

    Returns:
      The config.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    config = get_base_config(model=model, objective=objective, data=data)
    config.num_steps = 4000
    config.batch_size = 128
    config.eval_every = 1000
    config.checkpoint_every = 1000
    config.log_every = 50
    config.eval.batch_size = 100
    config.optimizer.learning_rate = 2e-3
    config.optimizer.eps = 1e-8
    config.objective.eval_repeats = 100
    if variant == "smoke":
        config = smoke(config)
        config.model.update(smoke_model)
        config.objective.eval_repeats = 2
        config.objective.sample_steps = 4
        if "eval_num_steps" in config.objective:
            config.objective.eval_num_steps = (10,)
        config.data.num_test = 16
    return config
