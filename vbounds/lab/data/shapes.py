"""A small procedurally rendered factor dataset (dSprites-like): ``shapes``.

Every combination of five factors on a grid is drawn once as a binary ``size x size``
image with NumPy (nothing is downloaded):

- ``shape``: square, ellipse (aspect 2:1), equilateral triangle;
- ``scale``: ``num_scales`` sizes, evenly spaced between 0.18 and 0.3 of the image;
- ``rotation``: ``num_rotations`` angles evenly spaced in [0, 90) degrees;
- ``pos_x``, ``pos_y``: ``num_positions`` positions each, evenly spaced so that the
  largest shape stays inside the image.

A pixel is on when its centre lies inside the shape. The defaults give 3 x 3 x 4 x 6 x 6
= 1,296 images of 16 x 16 pixels, split at random (``data.seed``) into training and test
images (``test_fraction``). Batches hold ``x`` (flat float32 pixels in {0, 1}) and
``factors`` (int32 ``[B, 5]``, the factor indices in the order above), which the
disentanglement metrics read (:func:`vbounds.disentangle.mig`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from vbounds.lab.data.dataset import batch_indices
from vbounds.lab.registry import register_dataset

FACTOR_NAMES = ("shape", "scale", "rotation", "pos_x", "pos_y")

#: Declared hyperparameters of ``shapes``.
DEFAULTS = {
    "size": 16,
    "num_scales": 3,
    "num_rotations": 4,
    "num_positions": 6,
    "test_fraction": 0.25,
    "seed": 0,
}


def render(shape: int, half_size: float, angle: float, cx: float, cy: float, size: int):
    """One binary image ``[size, size]``: shape 0 square, 1 ellipse, 2 triangle, with
    half-size (circumradius for the triangle) ``half_size`` pixels, rotated by ``angle``
    radians about its centre ``(cx, cy)`` (pixel units, x to the right, y down)."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    dx, dy = xs - cx, ys - cy
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy  # coordinates in the shape's frame
    if shape == 0:
        inside = np.maximum(np.abs(u), np.abs(v)) <= half_size * 0.8
    elif shape == 1:
        inside = (u / half_size) ** 2 + (v / (0.5 * half_size)) ** 2 <= 1.0
    else:
        # The triangle is the intersection of three half-planes at distance r/2 from the
        # centre, r the circumradius, with outward normals 120 degrees apart.
        inside = np.ones_like(u, bool)
        for k in range(3):
            phi = math.pi / 2 + 2 * math.pi * k / 3
            inside &= u * math.cos(phi) + v * math.sin(phi) <= 0.5 * half_size
    return inside.astype(np.float32)


def render_all(*, size: int, num_scales: int, num_rotations: int, num_positions: int):
    """Every factor combination: ``(images [N, size*size], factors [N, 5])``."""
    scales = np.linspace(0.18, 0.3, num_scales) * size
    angles = np.arange(num_rotations) * (math.pi / 2) / num_rotations
    margin = scales[-1] + 0.5
    positions = np.linspace(margin, size - margin, num_positions)
    images, factors = [], []
    grid = itertools.product(
        range(3),
        range(num_scales),
        range(num_rotations),
        range(num_positions),
        range(num_positions),
    )
    for shape, i_s, i_r, i_x, i_y in grid:
        image = render(shape, scales[i_s], angles[i_r], positions[i_x], positions[i_y], size)
        images.append(image.ravel())
        factors.append((shape, i_s, i_r, i_x, i_y))
    return np.stack(images), np.asarray(factors, np.int32)


@dataclasses.dataclass(frozen=True)
class FactorDataset:
    """Binary images with their factors of variation; follows the dataset protocol."""

    x_train: np.ndarray
    factors_train: np.ndarray
    x_test: np.ndarray
    factors_test: np.ndarray
    likelihood: str = "bernoulli"

    @property
    def data_dim(self) -> int:
        """Dimension of one flattened image."""
        return int(self.x_train.shape[1])

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The training batch of ``step``: ``{"x", "factors"}``."""
        rows = batch_indices(
            seed=seed, step=step, num_examples=len(self.x_train), batch_size=batch_size
        )
        return {"x": self.x_train[rows], "factors": self.factors_train[rows]}

    def test_split(self) -> dict:
        """All test images and their factors."""
        return {"x": self.x_test, "factors": self.factors_test}

    def train_transform(self, key, batch: dict) -> dict:
        """The images are binary already: nothing to do."""
        del key
        return batch

    def validate(self, name: str = "data") -> FactorDataset:
        """Checks shapes and ranges; returns ``self``."""
        for split, x, f in (
            ("train", self.x_train, self.factors_train),
            ("test", self.x_test, self.factors_test),
        ):
            if x.ndim != 2 or len(x) == 0 or f.shape != (len(x), len(FACTOR_NAMES)):
                raise ValueError(f"{name}.{split}: images {x.shape} and factors {f.shape} differ")
            if not np.all((x == 0) | (x == 1)):
                raise ValueError(f"{name}.{split}: images must be binary")
        return self


def _positive_int(value, key: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"data.{key} must be an int >= {minimum}, got {value!r}")
    return value


def train_size(config_or_none=None, **overrides) -> int:
    """The number of training images of a ``shapes`` section (``DEFAULTS`` completed).

    The beta-TCVAE objective needs it as its ``dataset_size``.
    """
    c = {**DEFAULTS, **(dict(config_or_none) if config_or_none is not None else {}), **overrides}
    n = 3 * c["num_scales"] * c["num_rotations"] * c["num_positions"] ** 2
    return n - math.ceil(c["test_fraction"] * n)


def load_shapes(
    *,
    size: int = 16,
    num_scales: int = 3,
    num_rotations: int = 4,
    num_positions: int = 6,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> FactorDataset:
    """Renders the dataset and splits it at random (``seed``); see the module docstring."""
    size = _positive_int(size, "size", 8)
    for key, value in (
        ("num_scales", num_scales),
        ("num_rotations", num_rotations),
        ("num_positions", num_positions),
    ):
        _positive_int(value, key, 2)
    if not isinstance(test_fraction, float) or not 0 < test_fraction < 1:
        raise ValueError(f"data.test_fraction must be a float in (0, 1), got {test_fraction!r}")
    images, factors = render_all(
        size=size, num_scales=num_scales, num_rotations=num_rotations, num_positions=num_positions
    )
    n = len(images)
    num_test = math.ceil(test_fraction * n)
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:num_test], order[num_test:]
    return FactorDataset(images[train], factors[train], images[test], factors[test])


register_dataset(
    "shapes",
    lambda c: load_shapes(
        size=c.size,
        num_scales=c.num_scales,
        num_rotations=c.num_rotations,
        num_positions=c.num_positions,
        test_fraction=c.test_fraction,
        seed=c.seed,
    ),
    defaults=DEFAULTS,
    doc="procedural dSprites-like binary shapes (16x16) with 5 factor labels (MIG)",
)
