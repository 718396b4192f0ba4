"""VDM on a 2-D toy density: the continuous-time negative ELBO in nats (Gaussian decoder).

A Gaussian diffusion model of the standardised data (``toy2d``: ``data.density=ring8`` or
``moons``) with an eps-MLP (three hidden layers of 128, GELU, a sinusoidal embedding of
``gamma(t)``) and a fixed linear schedule ``gamma`` from -10 to 6, trained on
``vb.diffusion.gaussian_vlb`` (continuous time, ``decoder="gaussian"``); the same optimiser,
batch and steps as ``cfm_toy2d``. The test bound averages 200 draws per test point.
``model.schedule=learned`` learns the schedule (VDM's monotone network and end points).

    python -m experiments.sweep --config=experiments/configs/vdm_toy2d.py \\
        --sweep='data.density=ring8,moons' --sweep='seed=0,1,2' --workdir=runs/vdm_toy2d

Variants: ``smoke`` (a few steps, a tiny network: the test suite runs it).
"""

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = ""):
    """VDM with an eps-MLP and a fixed linear schedule on ``toy2d`` (the ring by default)."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("vdm_continuous", {"hidden_sizes": (128, 128, 128), "schedule": "fixed"}),
        objective=("vdm_toy2d", {"eval_repeats": 200, "sample_steps": 200}),
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
        config.objective.eval_repeats = 4
        config.objective.grid_repeats = 2
        config.objective.sample_steps = 2
        config.objective.grid_size = 8
        config.objective.num_report_samples = 16
        config.data.num_train = 64
        config.data.num_test = 16
    return config
