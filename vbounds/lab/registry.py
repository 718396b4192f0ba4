"""Open registries: a config names a model, objective or dataset by name or import path.

Each kind (``"model"``, ``"objective"``, ``"dataset"``) maps a name to a factory and the
hyperparameters it declares, with their defaults. A config section ``{"name": ..., **hp}``
is resolved by :func:`resolve`: the name is looked up in the registry, or, when it has the
form ``"package.module:attr"``, imported (so a sweep's subprocess reaches the user's code
too). ``attr`` is a factory, or a :class:`Component` that carries its declared defaults.

Factories:

- model: ``make(model_config, *, rngs, example_batch) -> nnx.Module``;
- objective: ``make(objective_config) -> loss_fn`` with ``loss_fn(model, batch, key) ->
  (loss, metrics)``, or an :class:`~vbounds.lab.objectives.Objective`;
- dataset: ``make(data_config) -> Dataset`` (:mod:`vbounds.lab.data`).

Declared hyperparameters are what makes ``--config.objective.beta=4`` meaningful: a key in
the section that the component does not declare is an error naming it and listing the
valid ones, and a declared key missing from the section takes its default.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

import ml_collections

KINDS = ("model", "objective", "dataset")
# Modules whose import registers the built-in components of each kind.
_BUILTINS = {
    "model": "vbounds.lab.models",
    "objective": "vbounds.lab.objectives",
    "dataset": "vbounds.lab.data",
}


@dataclasses.dataclass(frozen=True)
class Component:
    """A factory and the hyperparameters it declares.

    Attributes:
      factory: the callable a config section is passed to.
      defaults: declared hyperparameters and their defaults (``None`` for "unset").
      doc: one line for listings (defaults to the factory's first docstring line).
    """

    factory: Callable
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    doc: str = ""

    def config(self, name: str, **overrides) -> ml_collections.ConfigDict:
        """The full config section ``{"name": name, **defaults, **overrides}``."""
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"{name!r} does not declare {unknown}; valid keys: {sorted(self.defaults)}"
            )
        return ml_collections.ConfigDict({"name": name, **self.defaults, **overrides})


_REGISTRY: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}


def import_submodules(package: str) -> None:
    """Imports every module of ``package``, so that each registers its components.

    A new family adds a module to ``vbounds.lab.models`` (or ``objectives``, ``data``) and
    is registered without editing the package's ``__init__``.
    """
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        importlib.import_module(f"{package}.{info.name}")


def _register(kind: str, name: str, factory: Callable, defaults: Mapping | None, doc: str):
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a {kind} name must be a non-empty string without ':', got {name!r}")
    if not callable(factory):
        raise TypeError(f"the {kind} factory for {name!r} must be callable, got {factory!r}")
    doc = doc or (factory.__doc__ or "").strip().split("\n")[0]
    _REGISTRY[kind][name] = Component(factory, dict(defaults or {}), doc)
    return factory


def register_model(name: str, factory: Callable, *, defaults: Mapping | None = None, doc=""):
    """Registers ``make(model_config, *, rngs, example_batch) -> nnx.Module`` as ``name``.

    Args:
      name: the ``model.name`` that selects it.
      factory: the model factory.
      defaults: the hyperparameters it declares, with their defaults.
      doc: one line for listings.

    Returns:
      ``factory`` (so it can be used as a decorator's body).
    """
    return _register("model", name, factory, defaults, doc)


def register_objective(name: str, factory: Callable, *, defaults: Mapping | None = None, doc=""):
    """Registers ``make(objective_config) -> loss_fn | Objective`` as ``name``.

    Args:
      name: the ``objective.name`` that selects it.
      factory: the objective factory.
      defaults: the hyperparameters it declares, with their defaults.
      doc: one line for listings.

    Returns:
      ``factory``.
    """
    return _register("objective", name, factory, defaults, doc)


def register_dataset(name: str, factory: Callable, *, defaults: Mapping | None = None, doc=""):
    """Registers ``make(data_config) -> Dataset`` as ``name``.

    Args:
      name: the ``data.name`` that selects it.
      factory: the dataset factory.
      defaults: the hyperparameters it declares, with their defaults.
      doc: one line for listings.

    Returns:
      ``factory``.
    """
    return _register("dataset", name, factory, defaults, doc)


def registered(kind: str) -> dict[str, Component]:
    """The registered components of ``kind`` (built-ins included), by name."""
    _check_kind(kind)
    importlib.import_module(_BUILTINS[kind])
    return dict(_REGISTRY[kind])


def lookup(kind: str, name: str) -> Component:
    """The component a config's ``name`` selects: a registered name or ``"pkg.mod:attr"``.

    Raises:
      ValueError: for an unknown name (listing the registered ones) or an import path
        that does not resolve (naming what failed).
    """
    _check_kind(kind)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{_section(kind)}.name must be a non-empty string, got {name!r}")
    if ":" in name:
        return _import(kind, name)
    components = registered(kind)
    if name not in components:
        raise ValueError(
            f"unknown {_section(kind)}.name {name!r}; valid names: {', '.join(components)}, "
            "or an import path 'package.module:attr'"
        )
    return components[name]


def resolve(kind: str, section: Mapping) -> tuple[Callable, ml_collections.ConfigDict]:
    """The factory of a config section and the section completed with its defaults.

    Args:
      kind: ``"model"``, ``"objective"`` or ``"dataset"``.
      section: the config section (``name`` plus hyperparameters).

    Returns:
      ``(factory, full_section)``; ``full_section`` holds every declared key (the
      section's value where given, else the default) and ``name``.

    Raises:
      ValueError: for an unknown name, or a key the component does not declare (naming
        the key and listing the valid ones).
    """
    section = dict(section)
    component = lookup(kind, section.get("name"))
    given = {k: v for k, v in section.items() if k != "name"}
    if kind == "dataset" and "path" not in component.defaults and not given.get("path", "x"):
        # ``data.path`` is a field every config has; an empty one means "no file".
        given.pop("path")
    unknown = sorted(set(given) - set(component.defaults))
    if unknown:
        valid = ", ".join(sorted(component.defaults)) or "none"
        raise ValueError(
            f"{_section(kind)}.{unknown[0]} is not a hyperparameter of {section['name']!r}"
            f" (unknown keys: {unknown}); valid keys: {valid}"
        )
    full = ml_collections.ConfigDict({"name": section["name"], **component.defaults})
    for key, value in given.items():
        full[key] = _plain(value)
    return component.factory, full


def _plain(value):
    """ConfigDicts as plain dicts and lists as tuples, so factories see simple values."""
    if isinstance(value, ml_collections.ConfigDict):
        return value.to_dict()
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def _import(kind: str, path: str) -> Component:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(
            f"{_section(kind)}.name {path!r}: cannot import module {module_name!r} ({e}); "
            "is its directory on PYTHONPATH?"
        ) from e
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{_section(kind)}.name {path!r}: {module_name} has no {attr!r}")
        target = getattr(target, part)
    if isinstance(target, Component):
        return target
    if not callable(target):
        raise TypeError(f"{_section(kind)}.name {path!r} is not callable: {target!r}")
    return Component(target, dict(getattr(target, "defaults", {}) or {}))


def _section(kind: str) -> str:
    return "data" if kind == "dataset" else kind


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
