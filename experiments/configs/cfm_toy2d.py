"""Conditional flow matching on a 2-D toy density, with exact-trace ODE test NLL in nats.

A velocity MLP (three hidden layers of 128, GELU) trained by ``vb.flow.cfm_loss`` on the
straight path from ``N(0, I)`` to the standardised data (``toy2d``: ``data.density=ring8``,
the 8-Gaussian ring with a closed-form density, or ``moons``), Adam 2e-3 with cosine decay,
batch 256. The test NLL is ``-log p(x)`` by the instantaneous change of variables with the
exact Jacobian trace and RK4, at 10 and 50 steps (``test_nll_S10``, ``test_nll_S50``).

    python -m experiments.sweep --config=experiments/configs/cfm_toy2d.py \\
        --sweep='data.density=ring8,moons' --sweep='seed=0,1,2' --workdir=runs/cfm_toy2d

Variants: ``smoke`` (a few steps, a tiny network: the test suite runs it).
"""

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = ""):
    """CFM with a velocity MLP on ``toy2d`` (the ring by default)."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("velocity_mlp", {"hidden_sizes": (128, 128, 128)}),
        objective=("cfm_toy2d", {"eval_ode_steps": (10, 50), "sample_steps": 50}),
        data=("toy2d", {"density": "ring8"}),
    )
    config.num_steps = 10000
    config.batch_size = 256
    config.eval_every = 2500
    config.checkpoint_every = 2500
    config.log_every = 100
    config.eval.batch_size = 500
    config.optimizer.learning_rate = 2e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.eps = 1e-8
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden_sizes = (16,)
        config.objective.eval_ode_steps = (2, 4)
        config.objective.sample_steps = 2
        config.objective.grid_size = 8
        config.objective.num_report_samples = 16
        config.data.num_train = 64
        config.data.num_test = 16
    return config
