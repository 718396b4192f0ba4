"""A noisy pendulum: sequences for latent state-space models.

``noisy_pendulum`` simulates a damped pendulum, ``theta'' = -(g/L) sin(theta) - c theta'``,
with a fine Euler-Cromer step, and observes ``(sin theta_t, cos theta_t)`` every
``stride`` fine steps with Gaussian noise of standard deviation ``noise``. Initial angles
are uniform in ``[-2.5, 2.5]`` radians and angular velocities standard normal, so swings
range from small and nearly linear to large and strongly nonlinear. Batches are
``{"x": [B, T, 2]}`` (time on axis 1). The training and test sequences are fixed draws from
``data.seed``; training batches follow :func:`~vbounds.lab.data.batch_indices`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from vbounds.lab.data.dataset import batch_indices
from vbounds.lab.registry import register_dataset

#: Declared hyperparameters of ``noisy_pendulum``.
DEFAULTS = {
    "seed": 0,
    "num_train": 512,
    "num_test": 128,
    "num_steps": 25,
    "noise": 0.1,
    "dt": 0.1,
    "damping": 0.1,
}

_FINE = 10  # Euler-Cromer sub-steps per observation


def simulate(rng: np.random.Generator, num: int, *, num_steps: int, dt: float, damping: float):
    """``[num, num_steps]`` angles of pendulums started at random (``g/L = 9.81``)."""
    theta = rng.uniform(-2.5, 2.5, size=num)
    omega = rng.normal(size=num)
    angles = np.empty((num, num_steps))
    h = dt / _FINE
    for t in range(num_steps):
        angles[:, t] = theta
        for _ in range(_FINE):
            omega = omega + h * (-9.81 * np.sin(theta) - damping * omega)
            theta = theta + h * omega
    return angles


@dataclasses.dataclass(frozen=True)
class NoisyPendulum:
    """Fixed training and test sequences of noisy pendulum observations."""

    seed: int = 0
    num_train: int = 512
    num_test: int = 128
    num_steps: int = 25
    noise: float = 0.1
    dt: float = 0.1
    damping: float = 0.1

    def _split(self, tag: int, num: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, tag]))
        angles = simulate(rng, num, num_steps=self.num_steps, dt=self.dt, damping=self.damping)
        clean = np.stack([np.sin(angles), np.cos(angles)], axis=-1)
        return (clean + self.noise * rng.normal(size=clean.shape)).astype(np.float32)

    @property
    def train(self) -> np.ndarray:
        """``[num_train, num_steps, 2]`` training sequences."""
        return _cached(self, 0, self.num_train)

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The training sequences of ``step`` (a pure function of its arguments)."""
        rows = batch_indices(
            seed=seed, step=step, num_examples=self.num_train, batch_size=batch_size
        )
        return {"x": self.train[rows]}

    def test_split(self) -> dict:
        """The ``num_test`` test sequences."""
        return {"x": _cached(self, 1, self.num_test)}

    def validate(self, name: str = "data") -> NoisyPendulum:
        """Checks the settings; returns ``self``.

        Raises:
          ValueError: naming the setting and what it must be.
        """
        for key in ("num_train", "num_test", "num_steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{key} must be a positive int, got {value!r}")
        for key in ("noise", "dt"):
            if not float(getattr(self, key)) > 0:
                raise ValueError(f"{name}.{key} must be positive, got {getattr(self, key)!r}")
        if not float(self.damping) >= 0:
            raise ValueError(f"{name}.damping must be >= 0, got {self.damping!r}")
        return self


@functools.lru_cache(maxsize=8)
def _cached(data: NoisyPendulum, tag: int, num: int) -> np.ndarray:
    # Simulated once per settings: every training step indexes the same arrays.
    return data._split(tag, num)


register_dataset(
    "noisy_pendulum",
    lambda c: NoisyPendulum(**{k: c[k] for k in DEFAULTS}),
    defaults=DEFAULTS,
    doc="noisy (sin, cos) observations of damped pendulums: [N, T, 2] sequences",
)
