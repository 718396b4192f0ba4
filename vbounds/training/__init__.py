"""Training: ``train_and_evaluate`` (mesh, sharded jitted step, optax, orbax, reports)."""

from vbounds.training.evaluate import active_units, evaluate_batch
from vbounds.training.report import MetricsLog, format_table, plot_report, read_metrics
from vbounds.training.train import (
    check_config,
    initialize_distributed,
    make_mesh,
    make_optimizer,
    train_and_evaluate,
)

__all__ = [
    "MetricsLog",
    "active_units",
    "check_config",
    "evaluate_batch",
    "format_table",
    "initialize_distributed",
    "make_mesh",
    "make_optimizer",
    "plot_report",
    "read_metrics",
    "train_and_evaluate",
]
