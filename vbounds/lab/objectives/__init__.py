"""Objectives: factories ``make(objective_config) -> loss_fn | Objective``, by name.

Registered names (``config.objective.name``): the latent-variable-model family of
:mod:`vbounds.lab.objectives.vae` and the other families' modules here; any other
objective by :func:`vbounds.lab.register_objective` or an import path
``"package.module:make"``.
"""

from vbounds.lab.objectives import diffusion, mi, vae, vib
from vbounds.lab.objectives.base import Objective, as_objective, mean_summary, per_example
from vbounds.lab.registry import import_submodules, resolve


def make_objective(config) -> Objective:
    """The :class:`Objective` a config's ``objective`` section names.

    Args:
      config: the ``objective`` section (a registered name or an import path, and the
        objective's declared hyperparameters).

    Returns:
      The objective (a bare loss function is wrapped).
    """
    factory, section = resolve("objective", config)
    return as_objective(factory(section))


__all__ = ["Objective", "as_objective", "make_objective", "mean_summary", "per_example", "vae"]

# Every module of this package registers its own components.
import_submodules("vbounds.lab.objectives")
