"""The learned-forward-process bound (NDM, DiffEnc) on the digits' grey levels.

``ndm``: ``vb.diffusion.ndm_vlb`` with the discretised decoder over ``num_bins`` levels,
continuous time (``num_steps=None``) or ``T`` steps; model ``ndm``; data ``digits_levels``.
Everything else (stratified training times, the test bound over ``eval_repeats`` draws with
its Monte Carlo error, the discrete-time bounds ``test_bpd_T<T>``, the reports) is the
``vdm`` objective's, so the two compare line for line.
"""

from __future__ import annotations

import vbounds as vb
from vbounds.lab.objectives.base import Objective
from vbounds.lab.objectives.diffusion import (
    _check_int,
    _Family,
    _gaussian_prepare,
    make_evaluate,
    make_loss,
    make_report,
    summarize,
    sweep_report,
)
from vbounds.lab.registry import register_objective


def _ndm_terms(config):
    def terms(model, x, key, t, num_steps):
        value = vb.diffusion.ndm_vlb(
            key,
            x,
            model.x_hat,
            model.transform,
            model.gamma,
            num_steps=num_steps,
            decoder="discretized",
            num_bins=config.num_bins,
            t=t,
        )
        return value._asdict()

    return terms


def make(config) -> Objective:
    """The NDM objective (negative ELBO in bits/dim) of the ``objective`` config section."""
    _check_int(config, "eval_repeats", even=True)
    _check_int(config, "sample_steps")
    _check_int(config, "num_bins")
    _check_int(config, "num_steps", allow_none=True)
    steps = config.eval_num_steps
    if not isinstance(steps, tuple | list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in steps
    ):
        raise ValueError(
            f"objective.eval_num_steps must be a tuple of positive ints, got {steps!r}"
        )
    family = _Family(
        name=config.name,
        prepare=_gaussian_prepare(config),
        terms=_ndm_terms(config),
        train_num_steps=config.num_steps,
        eval_modes=(("", None), *((f"_T{s}", s) for s in steps)),
        sample=lambda model, key, n: model.sample(key, n, config.sample_steps),
    )
    return Objective(
        loss=make_loss(family),
        evaluate=make_evaluate(family, config.eval_repeats),
        summarize=summarize,
        report=make_report(family, config),
        sweep_report=sweep_report,
    )


register_objective(
    "ndm",
    make,
    defaults={
        "num_bins": 17,
        "num_steps": None,
        "eval_num_steps": (100, 1000),
        "eval_repeats": 20,
        "sample_steps": 100,
    },
    doc="NDM / DiffEnc negative ELBO with a learned forward transform (Bartosh et al. 2024)",
)
