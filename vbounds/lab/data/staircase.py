"""The MI staircase of Poole et al. (2019): correlated Gaussians whose MI steps up.

``x ~ N(0, I_d)``, ``y = rho x + sqrt(1 - rho^2) eps`` with ``eps ~ N(0, I_d)``, so that
``I(x; y) = -(d/2) log(1 - rho^2)``; ``rho`` is chosen so the MI equals each of the
``levels`` in turn, for ``steps_per_level`` training steps each (the last level holds
after that). With ``cubic``, ``y`` is replaced by ``y^3``: an invertible map of ``y``, so
the MI is unchanged while a critic has more to learn.

Training batches are generated, not drawn from a fixed set: the batch of ``step`` is a
pure function of ``(seed, step)`` (numpy), so a resumed run sees the same pairs. Every
example carries ``"true_mi"``, the MI of the level it was drawn at.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from vbounds.lab.registry import register_dataset

# Domain tags of the numpy seed sequences (training pairs, held-out pairs).
_TRAIN_TAG, _TEST_TAG = 0x5A1, 0x5A2


def rho_for(mi_nats: float, dim: int) -> float:
    """The correlation with ``-(dim/2) log(1 - rho^2) = mi_nats``.

    Args:
      mi_nats: the mutual information, in nats (non-negative).
      dim: the dimension of ``x`` and ``y``.

    Returns:
      ``rho`` in ``[0, 1)``.
    """
    return math.sqrt(-math.expm1(-2.0 * mi_nats / dim))


def gaussian_mi(rho: float, dim: int) -> float:
    """``I(x; y) = -(dim/2) log(1 - rho^2)`` of the pairs at correlation ``rho``."""
    return -0.5 * dim * math.log1p(-(rho**2))


def _pairs(rng: np.random.Generator, rho: float, *, num: int, dim: int, cubic: bool):
    x = rng.standard_normal((num, dim))
    y = rho * x + math.sqrt(1.0 - rho**2) * rng.standard_normal((num, dim))
    if cubic:
        y = y**3
    return x.astype(np.float32), y.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class GaussianStaircase:
    """Correlated Gaussian pairs whose true MI steps through ``levels``.

    Attributes:
      dim: dimension of ``x`` and of ``y``.
      levels: the true MI of each level, in nats (positive), in training order.
      steps_per_level: training steps spent at each level.
      cubic: whether ``y`` is replaced by ``y^3``.
      num_test: held-out pairs per level in :meth:`test_split`.
      seed: seed of the held-out pairs (the training pairs use the run's seed).
    """

    dim: int = 20
    levels: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)
    steps_per_level: int = 4000
    cubic: bool = False
    num_test: int = 1024
    seed: int = 0

    @property
    def rhos(self) -> tuple[float, ...]:
        """The correlation of each level."""
        return tuple(rho_for(m, self.dim) for m in self.levels)

    @property
    def num_steps(self) -> int:
        """Training steps of the whole staircase."""
        return len(self.levels) * self.steps_per_level

    def level(self, step: int) -> int:
        """The level index of training step ``step`` (0-based; the last level holds)."""
        return min(step // self.steps_per_level, len(self.levels) - 1)

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The fresh pairs of ``step``: ``{"x", "y", "true_mi"}``, a pure function of its
        arguments (numpy's generator seeded with ``(seed, step)``).

        Args:
          seed: the run's seed.
          step: the global step (0-based).
          batch_size: the number of pairs.

        Returns:
          ``x``, ``y`` of shape ``[batch_size, dim]`` (float32) and ``true_mi`` of shape
          ``[batch_size]``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        level = self.level(step)
        rng = np.random.default_rng(np.random.SeedSequence([seed, step, _TRAIN_TAG]))
        x, y = _pairs(rng, self.rhos[level], num=batch_size, dim=self.dim, cubic=self.cubic)
        true_mi = np.full(batch_size, self.levels[level], np.float32)
        return {"x": x, "y": y, "true_mi": true_mi}

    def test_split(self) -> dict:
        """``num_test`` held-out pairs of each level, level after level, with their
        ``true_mi`` (an evaluation batch size dividing ``num_test`` keeps every
        evaluation batch within one level)."""
        xs, ys, mis = [], [], []
        for index, (mi, rho) in enumerate(zip(self.levels, self.rhos, strict=True)):
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, index, _TEST_TAG]))
            x, y = _pairs(rng, rho, num=self.num_test, dim=self.dim, cubic=self.cubic)
            xs.append(x)
            ys.append(y)
            mis.append(np.full(self.num_test, mi, np.float32))
        return {"x": np.concatenate(xs), "y": np.concatenate(ys), "true_mi": np.concatenate(mis)}

    def validate(self, name: str = "data") -> GaussianStaircase:
        """Checks the settings; returns ``self``.

        Raises:
          ValueError: naming the setting and what it must be.
        """
        for key in ("dim", "steps_per_level", "num_test"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{key} must be a positive int, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"{name}.seed must be a non-negative int, got {self.seed!r}")
        if not isinstance(self.cubic, bool):
            raise ValueError(f"{name}.cubic must be True or False, got {self.cubic!r}")
        levels = self.levels
        if not isinstance(levels, tuple | list) or not levels:
            raise ValueError(f"{name}.levels must be a non-empty tuple of nats, got {levels!r}")
        for mi in levels:
            if isinstance(mi, bool) or not isinstance(mi, int | float) or not 0 < mi < math.inf:
                raise ValueError(f"{name}.levels must hold positive finite nats, got {levels!r}")
        if any(a == b for a, b in zip(levels[:-1], levels[1:])):
            raise ValueError(f"{name}.levels must change from one level to the next: {levels!r}")
        if min(self.rhos) <= 0.0 or max(self.rhos) >= 1.0:
            raise ValueError(
                f"{name}.levels {levels!r} need correlations strictly inside (0, 1) in float64 "
                f"at dim {self.dim}: lower the largest level or raise dim"
            )
        return self


def make_staircase(config) -> GaussianStaircase:
    """The ``gaussian_staircase`` dataset of a ``data`` section (checked by ``validate``)."""
    levels = config.levels
    if isinstance(levels, tuple | list):
        levels = tuple(float(m) if type(m) is int else m for m in levels)
    return GaussianStaircase(
        dim=config.dim,
        levels=levels,
        steps_per_level=config.steps_per_level,
        cubic=config.cubic,
        num_test=config.num_test,
        seed=config.seed,
    )


#: Declared hyperparameters of ``gaussian_staircase``: Poole et al.'s protocol.
DEFAULTS = {
    "dim": 20,
    "levels": (2.0, 4.0, 6.0, 8.0, 10.0),
    "steps_per_level": 4000,
    "cubic": False,
    "num_test": 1024,
    "seed": 0,
}

register_dataset(
    "gaussian_staircase",
    make_staircase,
    defaults=DEFAULTS,
    doc="Poole et al.'s MI staircase: correlated Gaussians (or y^3) at 2, 4, ... nats",
)
