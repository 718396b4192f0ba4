"""The objective protocol: a loss, and optionally a test-set evaluation and a report.

An objective factory ``make(objective_config)`` returns either a loss function
``loss_fn(model, batch, key) -> (loss, metrics)`` (``metrics`` a dict of scalars, logged
by name) or an :class:`Objective`. The training loop minimises ``loss``; it evaluates the
test split with ``evaluate`` when the objective has one, else with the loss's metrics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Objective:
    """A training loss with its evaluation and report.

    Attributes:
      loss: ``(model, batch, key) -> (loss, metrics)``; the loop minimises ``loss`` and
        logs ``metrics`` (scalars) by name.
      evaluate: ``(model, batch, key) -> outputs``, a dict of per-example arrays (batch
        on axis 0, any pytree), or ``None`` to evaluate with the loss's metrics.
      summarize: ``outputs -> {name: float}`` over the whole test split (the per-example
        outputs concatenated); default: the mean of each top-level ``[N]`` array.
      report: ``(rows, path, *, model, key, title) -> None`` draws the run's
        ``report.png`` from the rows of ``metrics.jsonl`` and the trained model; default:
        the learning curves of every logged metric.
      sweep_report: ``(jobs, path) -> None`` draws a sweep's ``report.png`` across its
        jobs (each job a dict of its swept values and final ``test_*`` metrics, e.g.
        accuracy against rate over a beta sweep); default: none (``summary.png`` only).
    """

    loss: Callable
    evaluate: Callable | None = None
    summarize: Callable | None = None
    report: Callable | None = None
    sweep_report: Callable | None = None


def as_objective(made) -> Objective:
    """Wraps what a factory returned (a loss function or an :class:`Objective`)."""
    if isinstance(made, Objective):
        return made
    if hasattr(made, "loss") and callable(made.loss):
        return Objective(
            loss=made.loss,
            evaluate=getattr(made, "evaluate", None),
            summarize=getattr(made, "summarize", None),
            report=getattr(made, "report", None),
            sweep_report=getattr(made, "sweep_report", None),
        )
    if callable(made):
        return Objective(loss=made)
    raise TypeError(
        "an objective factory must return loss_fn(model, batch, key) -> (loss, metrics) "
        f"or an Objective, got {made!r}"
    )


def mean_summary(outputs: Mapping) -> dict:
    """The mean of each top-level per-example array of ``outputs``, as ``test_<name>``."""
    return {
        f"test_{k}": float(np.mean(np.asarray(v)))
        for k, v in outputs.items()
        if not isinstance(v, Mapping) and np.ndim(v) == 1
    }


def per_example(fn: Callable) -> Callable:
    """Batches a per-example objective.

    Args:
      fn: ``(model, example, key) -> (surrogate, metrics)`` for one example, where the
        gradient of ``surrogate`` is the estimator's gradient of the objective to
        maximise and ``metrics`` holds per-example scalars.

    Returns:
      ``loss(model, batch, key) -> (loss, metrics)``: ``loss`` is the negated batch mean
      of the surrogates, ``metrics`` the batch means.
    """

    def loss(model, batch, key):
        keys = jax.random.split(key, jax.tree.leaves(batch)[0].shape[0])
        surrogate, metrics = jax.vmap(lambda ex, k: fn(model, ex, k))(batch, keys)
        return -jnp.mean(surrogate), jax.tree.map(jnp.mean, metrics)

    return loss


def expected_calibration_error(confidence, correct, num_bins: int = 10) -> float:
    """``sum_b (n_b / N) |accuracy_b - confidence_b|`` over equal-width confidence bins.

    Naeini, Cooper & Hauskrecht (2015); Guo et al., On Calibration of Modern Neural
    Networks (2017). ``confidence`` is the largest predictive probability, ``correct``
    whether its class is the label; the top bin includes confidence 1.
    """
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, np.float64)
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        members = bins == b
        total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / confidence.size)
