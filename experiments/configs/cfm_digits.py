"""Conditional flow matching on the digits' 17 grey levels, for comparison with VDM.

The ``vdm_digits`` protocol (4,000 Adam steps of batch 128, learning rate 2e-3, the same
split), with a velocity MLP (two hidden layers of 256) trained by the CFM loss on the
straight path from ``N(0, I)`` to uniformly dequantised grey levels. The test bound is the
dequantisation bound on the 17-level likelihood, estimated by the ODE log-likelihood
(20 RK4 steps, one Hutchinson probe), in bits per dimension like ``vdm_digits``.

    python -m experiments.sweep --config=experiments/configs/cfm_digits.py \\
        --sweep='seed=0,1,2' --workdir=runs/cfm_digits

Variants: ``smoke`` (a few steps, a tiny network: the test suite runs it).
"""

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = ""):
    """CFM with a velocity MLP, 4,000 steps of batch 128 (``vdm_digits``'s schedule)."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("velocity_mlp", {"hidden_sizes": (256, 256)}),
        objective=("cfm", {"num_bins": 17, "eval_ode_steps": 20, "sample_steps": 20}),
        data=("digits_levels", {}),
    )
    config.num_steps = 4000
    config.batch_size = 128
    config.eval_every = 1000
    config.checkpoint_every = 1000
    config.log_every = 50
    config.eval.batch_size = 100
    config.optimizer.learning_rate = 2e-3
    config.optimizer.eps = 1e-8
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden_sizes = (16,)
        config.objective.eval_ode_steps = 2
        config.objective.sample_steps = 2
        config.data.num_test = 16
    return config
