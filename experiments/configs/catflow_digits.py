"""CatFlow on binarised digits, for comparison with D3PM and MDLM on sample quality.

The ``d3pm_digits`` protocol (the binarised digits, grey level > 8; 4,000 Adam steps of
batch 128, learning rate 2e-3; the same split), with an MLP (two GELU layers of 256) of the
noisy simplex points ``x_t`` (a point of ``R^2`` per pixel, flattened) and an embedding of
``t``, giving end-point logits per pixel, trained by the CatFlow cross-entropy
``vb.flow.catflow_loss`` (Eijkelboom et al. 2024) on the straight path from ``N(0, I)`` to
the one-hot pixels. CatFlow's loss is not a likelihood bound; the comparison with the
bound-trained models is the test sample MMD^2 (``test_sample_mmd2``: 4 samples per test
image from 100 Euler steps of the flow, against the 297 test images), which the D3PM and
MDLM configs compute too with ``--config.objective.sample_metric=True``.

    python -m experiments.sweep --config=experiments/configs/catflow_digits.py \\
        --sweep='seed=0,1,2' --workdir=runs/catflow_digits --parallel=1

Variants: ``smoke`` (a few steps, a tiny network: the test suite runs it).
"""

from experiments.configs._diffusion import diffusion_config


def get_config(variant: str = ""):
    """CatFlow with an end-point MLP, 4,000 steps of batch 128 (``d3pm_digits``'s schedule)."""
    config = diffusion_config(
        variant,
        model=("catflow_mlp", {"num_classes": 2, "hidden_sizes": (256, 256)}),
        objective=("catflow", {"sample_steps": 100, "sample_repeats": 4}),
        data=("digits_binary", {"threshold": 8}),
        smoke_model={"hidden_sizes": (16,)},
    )
    if variant == "smoke":
        config.objective.sample_repeats = 2
    return config
