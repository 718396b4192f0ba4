"""The one place that checks an experiment config, before anything compiles.

:func:`validate` resolves the model, objective and dataset sections through the
registries (unknown names and keys are errors naming them), builds the objective (its
own checks run), and checks every top-level and optimizer field. It returns the resolved
pieces so the loop does not resolve them twice.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import math
from collections.abc import Callable

import ml_collections
import optax

from vbounds.lab.objectives import Objective, as_objective
from vbounds.lab.registry import resolve

#: The top-level fields every config has (sweeps, notebooks and scripts rely on them).
REQUIRED_FIELDS = (
    "seed",
    "num_steps",
    "batch_size",
    "eval_every",
    "checkpoint_every",
    "model",
    "objective",
    "data",
    "optimizer",
    "distributed",
)
#: Optional top-level fields and their defaults.
OPTIONAL_FIELDS = {"log_every": 50, "eval": {"batch_size": None}}
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adabelief", "lamb")
SCHEDULES = ("constant", "cosine")
# Optimizer keys the loop reads itself; the rest go to the optax constructor.
_LOOP_OPTIMIZER_KEYS = ("name", "learning_rate", "schedule", "grad_clip_norm")


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated config's resolved pieces.

    Attributes:
      model: ``(factory, section)`` of the model.
      objective: the built :class:`~vbounds.lab.objectives.Objective`.
      objective_section: the objective's full section (declared defaults filled in).
      dataset: ``(factory, section)`` of the dataset.
      log_every: training-metric logging cadence.
      eval_batch_size: global batch size of the test evaluation.
    """

    model: tuple[Callable, ml_collections.ConfigDict]
    objective: Objective
    objective_section: ml_collections.ConfigDict
    dataset: tuple[Callable, ml_collections.ConfigDict]
    log_every: int
    eval_batch_size: int


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"config.{name} must be a positive int, got {value!r}")
    return value


def _number(value, name: str, *, low: float, high: float = math.inf, closed=True) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"config.{name} must be a finite number, got {value!r}")
    if value < low or value > high or (not closed and value == low):
        interval = f"{'[' if closed else '('}{low:g}, {high:g}]"
        raise ValueError(f"config.{name} must lie in {interval}, got {value!r}")


def check_optimizer(section) -> None:
    """Checks the ``optimizer`` section: name, rate, schedule, clipping, optax keywords."""
    name = section.get("name")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer.name {name!r}; valid: {', '.join(OPTIMIZERS)}")
    _number(section.get("learning_rate"), "optimizer.learning_rate", low=0.0, closed=False)
    if section.get("schedule", "constant") not in SCHEDULES:
        raise ValueError(
            f"optimizer.schedule must be one of {SCHEDULES}, got {section.get('schedule')!r}"
        )
    clip = section.get("grad_clip_norm")
    if clip is not None:
        _number(clip, "optimizer.grad_clip_norm", low=0.0, closed=False)
    accepted = set(inspect.signature(getattr(optax, name)).parameters) - {"learning_rate"}
    for key, value in section.items():
        if key in _LOOP_OPTIMIZER_KEYS:
            continue
        if key not in accepted:
            raise ValueError(
                f"optimizer.{key} is not an option of optax.{name}; valid keys: "
                f"{', '.join(sorted(accepted | set(_LOOP_OPTIMIZER_KEYS)))}"
            )
        if key in ("b1", "b2", "decay", "momentum") and value is not None:
            _number(value, f"optimizer.{key}", low=0.0, high=1.0)
        if key in ("eps", "eps_root", "weight_decay", "initial_scale") and value is not None:
            _number(value, f"optimizer.{key}", low=0.0)


def make_optimizer(section, *, num_steps: int) -> optax.GradientTransformation:
    """Builds the optax optimiser of a config's ``optimizer`` section.

    ``name`` is an optax optimiser, ``learning_rate`` its rate; ``schedule`` is
    ``"constant"`` (default) or ``"cosine"`` (decay to 0 over ``num_steps``);
    ``grad_clip_norm`` (``None`` for none) clips the global gradient norm; the other
    fields go to the optax constructor (``b1``, ``b2``, ``eps``, ``weight_decay``, ...).
    """
    check_optimizer(section)
    kwargs = {k: v for k, v in dict(section).items() if k not in _LOOP_OPTIMIZER_KEYS}
    learning_rate = section["learning_rate"]
    if section.get("schedule", "constant") == "cosine":
        learning_rate = optax.cosine_decay_schedule(learning_rate, num_steps)
    tx = getattr(optax, section["name"])(learning_rate=learning_rate, **kwargs)
    clip = section.get("grad_clip_norm")
    return optax.chain(optax.clip_by_global_norm(clip), tx) if clip else tx


def validate(config, *, num_devices: int, num_processes: int = 1) -> Plan:
    """Checks a config before any compilation and resolves its components.

    Args:
      config: the experiment config.
      num_devices: devices in the mesh (the global batch is split over them).
      num_processes: JAX processes (each feeds an equal share of the batch).

    Returns:
      The :class:`Plan`.

    Raises:
      ValueError: naming the field and what it must be.
    """
    missing = [k for k in REQUIRED_FIELDS if k not in config]
    if missing:
        raise ValueError(f"config lacks the top-level fields {missing}")
    unknown = sorted(set(config) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ValueError(
            f"config.{unknown[0]} is not a field of an experiment config (unknown: {unknown}); "
            f"valid: {', '.join([*REQUIRED_FIELDS, *OPTIONAL_FIELDS])}"
        )
    seed = config.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"config.seed must be an int in [0, 2**32), got {seed!r}")
    for name in ("num_steps", "batch_size", "eval_every", "checkpoint_every"):
        _positive_int(config[name], name)
    log_every = _positive_int(config.get("log_every", OPTIONAL_FIELDS["log_every"]), "log_every")
    eval_section = dict(config.get("eval") or {})
    bad = sorted(set(eval_section) - {"batch_size"})
    if bad:
        raise ValueError(f"config.eval.{bad[0]} is not a field of eval; valid keys: batch_size")
    eval_batch = eval_section.get("batch_size") or config.batch_size
    _positive_int(eval_batch, "eval.batch_size")
    for name, size in (("batch_size", config.batch_size), ("eval.batch_size", eval_batch)):
        if size % num_devices or size % num_processes:
            raise ValueError(
                f"config.{name}={size} must be divisible by the number of devices "
                f"({num_devices}) and processes ({num_processes}): the batch is split evenly"
            )
    check_optimizer(config.optimizer)
    distributed = dict(config.distributed)
    bad = sorted(set(distributed) - {"coordinator_address", "num_processes", "process_id"})
    if bad:
        raise ValueError(f"config.distributed.{bad[0]} is not a field of distributed")
    model = resolve("model", config.model)
    dataset = resolve("dataset", config.data)
    objective_factory, objective_section = resolve("objective", config.objective)
    objective = as_objective(objective_factory(objective_section))
    return Plan(model, objective, objective_section, dataset, log_every, eval_batch)


def unknown_override(argv) -> str | None:
    """Names the first ``--config.a.b=v`` argument that the config file does not have.

    ml_collections reports such an override as a bare ``AttributeError``; this finds the
    key, the section it was looked up in, and that section's valid keys.

    Args:
      argv: the command line (``sys.argv``), with ``--config=<file>[:variant]``.

    Returns:
      A one-line message, or ``None`` when every override exists.
    """
    spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if spec is None:
        return None
    path, _, variant = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location("_checked_config", path)
    if module_spec is None or module_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(variant) if variant else module.get_config()
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        keys = arg[len("--config.") :].split("=", 1)[0].split(".")
        node, seen = config, "config"
        for key in keys:
            if not isinstance(node, ml_collections.ConfigDict) or key not in node:
                valid = (
                    ", ".join(sorted(node)) if isinstance(node, ml_collections.ConfigDict) else ""
                )
                return f"{arg.split('=', 1)[0]}: {seen} has no field {key!r}" + (
                    f"; valid keys: {valid}" if valid else ""
                )
            node, seen = node[key], f"{seen}.{key}"
    return None
