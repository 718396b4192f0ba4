"""vbounds.lab: the research framework around the bounds (``pip install "vbounds[lab]"``).

A config selects a model, an objective and a dataset, each a factory found by a
registered name or an import path ``"package.module:attr"``; ``train_and_evaluate`` runs
it data-parallel over every device, with orbax checkpoints, ``metrics.jsonl`` and a
report. Everything here needs flax, optax, orbax-checkpoint, ml-collections,
scikit-learn, matplotlib and tqdm; the core ``vbounds`` needs none of them.
"""

from vbounds.lab.config import REQUIRED_FIELDS, make_optimizer, validate
from vbounds.lab.data import Dataset, load_dataset
from vbounds.lab.metrics import MetricsLog, read_metrics
from vbounds.lab.mi_estimate import MIEstimate, estimate_mi
from vbounds.lab.models import build_model
from vbounds.lab.objectives import Objective, make_objective, per_example
from vbounds.lab.registry import (
    Component,
    register_dataset,
    register_model,
    register_objective,
    registered,
)
from vbounds.lab.report import format_table
from vbounds.lab.train import (
    TrainingDivergedError,
    create_state,
    eval_step,
    train_and_evaluate,
    train_step,
)

__all__ = [
    "REQUIRED_FIELDS",
    "Component",
    "Dataset",
    "MIEstimate",
    "MetricsLog",
    "Objective",
    "TrainingDivergedError",
    "build_model",
    "create_state",
    "estimate_mi",
    "eval_step",
    "format_table",
    "load_dataset",
    "make_objective",
    "make_optimizer",
    "per_example",
    "read_metrics",
    "register_dataset",
    "register_model",
    "register_objective",
    "registered",
    "train_and_evaluate",
    "train_step",
    "validate",
]
