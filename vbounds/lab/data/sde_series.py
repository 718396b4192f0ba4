"""A noisy double-well diffusion observed on a time grid: series for latent SDEs.

``double_well`` simulates ``dz = theta (z - z^3) dt + sigma dW`` (wells at -1 and +1)
with a fine Euler-Maruyama step from ``z_0 ~ N(0, 0.5^2)`` and observes ``z`` at
``num_obs`` equally spaced times on ``[0, horizon]`` with Gaussian noise ``noise``. Batches
are ``{"x": [B, M, 1], "t": [B, M]}`` (the observation times, the same for every
sequence). Training and test series are fixed draws from ``data.seed``; training batches
follow :func:`~vbounds.lab.data.batch_indices`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from vbounds.lab.data.dataset import batch_indices
from vbounds.lab.registry import register_dataset

#: Declared hyperparameters of ``double_well``.
DEFAULTS = {
    "seed": 0,
    "num_train": 256,
    "num_test": 64,
    "num_obs": 16,
    "horizon": 4.0,
    "theta": 1.0,
    "sigma": 0.6,
    "noise": 0.1,
}

_FINE = 20  # Euler-Maruyama sub-steps per observation interval


@dataclasses.dataclass(frozen=True)
class DoubleWell:
    """Fixed training and test series of a noisy double-well diffusion."""

    seed: int = 0
    num_train: int = 256
    num_test: int = 64
    num_obs: int = 16
    horizon: float = 4.0
    theta: float = 1.0
    sigma: float = 0.6
    noise: float = 0.1

    @property
    def times(self) -> np.ndarray:
        """``[num_obs]`` observation times."""
        return np.linspace(0.0, self.horizon, self.num_obs, dtype=np.float32)

    def _split(self, tag: int, num: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, tag]))
        z = 0.5 * rng.normal(size=num)
        h = self.horizon / (self.num_obs - 1) / _FINE
        series = np.empty((num, self.num_obs))
        for m in range(self.num_obs):
            series[:, m] = z
            for _ in range(_FINE):
                z = z + self.theta * (z - z**3) * h + self.sigma * np.sqrt(h) * rng.normal(size=num)
        noisy = series + self.noise * rng.normal(size=series.shape)
        return noisy[..., None].astype(np.float32)

    def _batch(self, x: np.ndarray) -> dict:
        return {"x": x, "t": np.broadcast_to(self.times, x.shape[:2]).copy()}

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The training series of ``step`` (a pure function of its arguments)."""
        rows = batch_indices(
            seed=seed, step=step, num_examples=self.num_train, batch_size=batch_size
        )
        return self._batch(_cached(self, 0, self.num_train)[rows])

    def test_split(self) -> dict:
        """The ``num_test`` test series."""
        return self._batch(_cached(self, 1, self.num_test))

    def validate(self, name: str = "data") -> DoubleWell:
        """Checks the settings; returns ``self``.

        Raises:
          ValueError: naming the setting and what it must be.
        """
        for key in ("num_train", "num_test"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{key} must be a positive int, got {value!r}")
        if isinstance(self.num_obs, bool) or not isinstance(self.num_obs, int) or self.num_obs < 2:
            raise ValueError(f"{name}.num_obs must be an int >= 2, got {self.num_obs!r}")
        for key in ("horizon", "sigma", "noise"):
            if not float(getattr(self, key)) > 0:
                raise ValueError(f"{name}.{key} must be positive, got {getattr(self, key)!r}")
        return self


@functools.lru_cache(maxsize=8)
def _cached(data: DoubleWell, tag: int, num: int) -> np.ndarray:
    # Simulated once per settings: every training step indexes the same arrays.
    return data._split(tag, num)


register_dataset(
    "double_well",
    lambda c: DoubleWell(**{k: c[k] for k in DEFAULTS}),
    defaults=DEFAULTS,
    doc="noisy observations of a double-well diffusion: [N, M, 1] series and their times",
)
