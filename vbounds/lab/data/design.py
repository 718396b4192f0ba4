"""Prior draws of the parameters of a design experiment (``design_prior``).

For experimental design the "data" are the parameters ``theta ~ N(0, I_dim)`` that
generate the outcomes: the objective simulates the experiments itself. A training batch
is a pure function of ``(seed, step)`` (numpy), so a resumed run sees the same draws; the
test split holds ``num_test`` fixed draws.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vbounds.lab.registry import register_dataset

_TRAIN_TAG, _TEST_TAG = 0xDE1, 0xDE2


@dataclasses.dataclass(frozen=True)
class DesignPrior:
    """Standard-normal parameter draws ``{"x": theta [batch, dim]}``.

    Attributes:
      dim: dimension of ``theta`` (2 for one source in the plane).
      num_test: number of held-out draws.
      seed: seed of the held-out draws (training draws use the run's seed).
    """

    dim: int = 2
    num_test: int = 512
    seed: int = 0

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The fresh draws of ``step``, a pure function of the arguments."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, step, _TRAIN_TAG]))
        return {"x": rng.standard_normal((batch_size, self.dim)).astype(np.float32)}

    def test_split(self) -> dict:
        """``num_test`` fixed draws."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _TEST_TAG]))
        return {"x": rng.standard_normal((self.num_test, self.dim)).astype(np.float32)}

    def validate(self, name: str = "data") -> DesignPrior:
        """Checks the settings; returns ``self``."""
        for key in ("dim", "num_test"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{key} must be a positive int, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"{name}.seed must be a non-negative int, got {self.seed!r}")
        return self


def make_design_prior(config) -> DesignPrior:
    """The ``design_prior`` dataset of a ``data`` section."""
    return DesignPrior(dim=config.dim, num_test=config.num_test, seed=config.seed)


#: Declared hyperparameters of ``design_prior``.
DEFAULTS = {"dim": 2, "num_test": 512, "seed": 0}

register_dataset(
    "design_prior",
    make_design_prior,
    defaults=DEFAULTS,
    doc="standard-normal parameter draws for experimental design (the objective simulates)",
)
