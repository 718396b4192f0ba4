"""Free energy between a Gaussian and a two-mode mixture, with a learned escort map.

State A is ``N(0, 1.5^2 I_2)``, state B an equal mixture of ``N((+-2, 0), 0.5^2 I_2)``;
the exact ``dF = 2 log 3 = 2.197`` kT. The model ``escort_map`` (elementwise affine then
4 RealNVP couplings of 32-unit MLPs) is trained to close the bracket of the mapped works
(objective ``escorted_free_energy``: loss ``mean(w_forward) + mean(w_reverse)``); Adam
1e-3, batches of 256 samples of each state, 2,000 steps. The test evaluation (4,096
samples of each state) reports the RMSE against the exact ``dF`` of Jarzynski, BAR,
targeted FEP and FEAT (BAR of the mapped works) for 16 to 1,024 samples per state.

Three seeds, RMSE against the sample size in the sweep's ``report.png``::

    python -m experiments.sweep --config=experiments/configs/free_energy_mixture.py \\
        --sweep='seed=0,1,2' --workdir=runs/free_energy_mixture

Variants: ``smoke`` (a few steps of a tiny map: the test suite runs it).
"""

import ml_collections

from experiments.configs.base import get_base_config, smoke


def get_config(variant: str = "") -> ml_collections.ConfigDict:
    """Escorted free-energy estimation, Gaussian -> mixture in the plane."""
    if variant not in ("", "smoke"):
        raise ValueError(f"variant must be '' or 'smoke', got {variant!r}")
    config = get_base_config(
        model=("escort_map", {"hidden": 32, "num_layers": 4}),
        objective=("escorted_free_energy", {"eval_sizes": (16, 64, 256, 1024)}),
        data=("design_prior", {"dim": 2, "num_test": 4096, "seed": 0}),
    )
    config.num_steps = 2000
    config.batch_size = 256
    config.eval_every = 1000
    config.checkpoint_every = 1000
    config.log_every = 50
    config.optimizer.learning_rate = 1e-3
    config.eval.batch_size = 512
    if variant == "smoke":
        config = smoke(config)
        config.model.hidden = 8
        config.model.num_layers = 2
        config.objective.eval_sizes = (4, 16)
        config.data.num_test = 16
    return config
