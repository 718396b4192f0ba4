"""Smoke test of the benchmark suite: the IWAE-step comparison compares like with like.

Runs one step of the alternatives at a toy size and checks that the vbounds and
hand-written JAX steps report the same loss on the same inputs (the loss is computed
before the update, from the same initial parameters, batch and key). Never timings.
numpyro's step is left out here only because its compile alone takes most of the
time budget of a smoke test; the benchmark itself runs it.
"""

import importlib.util

import numpy as np

from benchmarks import common, iwae_step

# torch comes with the `bench` extra only; the JAX comparison runs everywhere.
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def test_iwae_step_alternatives_agree_on_the_loss():
    x_train, _ = common.digits()
    batches = [common.binarize(x_train[:8], seed=0)]
    names = ["handwritten", "vbounds/reparam", "vbounds/dreg"] + (["torch"] if HAVE_TORCH else [])
    alts = iwae_step.make_alternatives(3, batches, names)
    for alt in alts.values():
        alt()
    losses = {name: float(alt.loss) for name, alt in alts.items()}
    assert all(np.isfinite(v) for v in losses.values()), losses
    np.testing.assert_allclose(losses["vbounds/reparam"], losses["handwritten"], rtol=1e-5)
    np.testing.assert_allclose(losses["vbounds/dreg"], losses["handwritten"], rtol=1e-5)
    # torch draws its own noise: the same bound at the same parameters, another draw.
    if HAVE_TORCH:
        assert abs(losses["torch"] - losses["handwritten"]) < 0.2 * abs(losses["handwritten"])
