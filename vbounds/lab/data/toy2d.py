"""Two-dimensional toy densities for continuous generative models (CFM, VDM), standardised.

``toy2d`` with ``data.density``:

- ``"ring8"``: an equal mixture of 8 isotropic Gaussians on a circle, with centres
  ``R (cos 2 pi k / 8, sin 2 pi k / 8)`` and standard deviation ``s = R / 8`` (the ratio of the
  "8 Gaussians" of the FFJORD paper). ``R`` is fixed by ``R^2 / 2 + s^2 = 1``, so the mixture
  itself has mean 0 and covariance ``I``: standardised exactly, and its log-density is known
  in closed form (:func:`ring8_log_prob`). The test split carries ``log_p``, the true
  log-density of each test point, so its mean ``-log_p`` (the Monte Carlo entropy) is the
  floor of any model's test NLL.
- ``"moons"``: scikit-learn's ``make_moons`` with Gaussian noise ``data.noise`` (0.05),
  standardised per coordinate with the training split's mean and standard deviation. No
  closed-form density.

Both are sampled once from ``data.seed`` (``num_train`` training and ``num_test`` test points,
no downloads); the training batches are a permutation of ``(run seed, epoch)`` as for every
in-memory set (:func:`vbounds.lab.data.dataset.batch_indices`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp
from sklearn.datasets import make_moons

from vbounds.lab.data.dataset import batch_indices
from vbounds.lab.registry import register_dataset

DENSITIES = ("ring8", "moons")
#: The ring's radius and component standard deviation: R^2 / 2 + s^2 = 1 with s = R / 8.
RING_RADIUS = 1.0 / math.sqrt(0.5 + 1.0 / 64.0)
RING_SCALE = RING_RADIUS / 8.0
RING_COMPONENTS = 8


def ring8_centres() -> np.ndarray:
    """``[8, 2]`` centres of the ring's components."""
    angles = 2.0 * np.pi * np.arange(RING_COMPONENTS) / RING_COMPONENTS
    return RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def ring8_log_prob(x: np.ndarray) -> np.ndarray:
    """The exact log-density (nats) of the standardised 8-Gaussian ring at ``x [..., 2]``."""
    x = np.asarray(x, np.float64)
    if x.shape[-1:] != (2,):
        raise ValueError(f"`x` must end in 2 coordinates, got shape {x.shape}")
    sq = np.sum((x[..., None, :] - ring8_centres()) ** 2, axis=-1)
    log_comp = -0.5 * sq / RING_SCALE**2 - math.log(2.0 * math.pi * RING_SCALE**2)
    return logsumexp(log_comp, axis=-1) - math.log(RING_COMPONENTS)


def sample_ring8(rng: np.random.Generator, n: int) -> np.ndarray:
    """``[n, 2]`` draws from the standardised 8-Gaussian ring."""
    k = rng.integers(RING_COMPONENTS, size=n)
    return ring8_centres()[k] + RING_SCALE * rng.normal(size=(n, 2))


class Toy2D(NamedTuple):
    """A fixed train/test sample of a 2-D density, float32, in host memory.

    Attributes:
      x_train: ``[N_train, 2]`` training points.
      x_test: ``[N_test, 2]`` test points.
      log_p_test: ``[N_test]`` true log-density of the test points (nats), or ``None``.
      density: the density's name.
    """

    x_train: np.ndarray
    x_test: np.ndarray
    log_p_test: np.ndarray | None
    density: str

    @property
    def data_dim(self) -> int:
        """Dimension of one point (2)."""
        return int(self.x_train.shape[1])

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The training batch of ``step``: ``{"x": [batch_size, 2] float32}``."""
        rows = batch_indices(
            seed=seed, step=step, num_examples=len(self.x_train), batch_size=batch_size
        )
        return {"x": self.x_train[rows]}

    def test_split(self) -> dict:
        """The test split: ``{"x"}``, and ``{"log_p"}`` (the true log-density) when known."""
        split = {"x": self.x_test}
        if self.log_p_test is not None:
            split["log_p"] = self.log_p_test
        return split

    def validate(self, name: str = "data") -> Toy2D:
        """Checks shapes and finiteness; returns ``self``."""
        for split, x in (("x_train", self.x_train), ("x_test", self.x_test)):
            if x.ndim != 2 or len(x) == 0 or not np.all(np.isfinite(x)):
                raise ValueError(f"{name}.{split} must be finite [examples, dim], got {x.shape}")
        return self


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"data.{name} must be a positive int, got {value!r}")
    return value


def load_toy2d(
    *,
    density: str = "ring8",
    seed: int = 0,
    num_train: int = 20000,
    num_test: int = 2000,
    noise: float = 0.05,
) -> Toy2D:
    """Samples a fixed train/test split of a 2-D toy density.

    Args:
      density: ``"ring8"`` (closed-form log-density) or ``"moons"``.
      seed: seed of the samples.
      num_train: training points.
      num_test: test points.
      noise: standard deviation of ``make_moons``' noise (before standardising; ``moons``
        only).

    Returns:
      A :class:`Toy2D`; ``log_p_test`` is set for ``ring8``.
    """
    if density not in DENSITIES:
        raise ValueError(f"data.density must be one of {DENSITIES}, got {density!r}")
    _check_count(num_train, "num_train")
    _check_count(num_test, "num_test")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"data.seed must be an int in [0, 2**32), got {seed!r}")
    n = num_train + num_test
    if density == "ring8":
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x2D8]))
        x = sample_ring8(rng, n)
        log_p = ring8_log_prob(x[num_train:]).astype(np.float32)
    else:
        if not noise >= 0:
            raise ValueError(f"data.noise must be >= 0, got {noise!r}")
        x, _ = make_moons(n, noise=noise, random_state=seed)
        x = x[np.random.default_rng(np.random.SeedSequence([seed, 0x2DA])).permutation(n)]
        train = x[:num_train]
        x = (x - train.mean(0)) / train.std(0)
        log_p = None
    x = x.astype(np.float32)
    return Toy2D(x[:num_train], x[num_train:], log_p, density)


register_dataset(
    "toy2d",
    lambda c: load_toy2d(
        density=c.density,
        seed=c.seed,
        num_train=c.num_train,
        num_test=c.num_test,
        noise=c.noise,
    ),
    defaults={"density": "ring8", "seed": 0, "num_train": 20000, "num_test": 2000, "noise": 0.05},
    doc="2-D toy densities (8-Gaussian ring with its exact log-density, moons), standardised",
)
