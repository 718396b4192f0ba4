"""The digits as integer classes: 17 grey levels (VDM, MuLAN) or binarised (D3PM, MDLM, UDLM).

scikit-learn's 8x8 digits hold integer grey levels 0..16. ``digits_levels`` keeps them as
they are (a Gaussian diffusion objective maps level ``k`` to the grid value
``-1 + 2k / 16`` and scores it with the discretised decoder, so the bound is on the discrete
likelihood); ``digits_binary`` thresholds them (``level > threshold``) into the two classes
0 and 1 of a discrete-state diffusion. Both use the split of :func:`load_digits` (a
permutation drawn from ``seed``, the first ``num_test`` images for testing), so every run
that keeps ``data.seed`` evaluates on the same 297 test images.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_digits as _sklearn_digits

from vbounds.lab.data.dataset import batch_indices
from vbounds.lab.registry import register_dataset

#: The digits' grey levels are the integers 0..16.
NUM_GREY_LEVELS = 17
NUM_TEST = 297


class ClassDataset(NamedTuple):
    """A train/test split of flat vectors of integer classes, held in host memory.

    Attributes:
      x_train: ``[N_train, D]`` int32 classes in ``[0, num_classes)``.
      x_test: ``[N_test, D]`` int32 classes.
      num_classes: the number of classes a coordinate takes.
    """

    x_train: np.ndarray
    x_test: np.ndarray
    num_classes: int

    @property
    def data_dim(self) -> int:
        """Dimension of one flattened input."""
        return int(self.x_train.shape[1])

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The training batch of ``step``: ``{"x": [batch_size, D] int32}``."""
        rows = batch_indices(
            seed=seed, step=step, num_examples=len(self.x_train), batch_size=batch_size
        )
        return {"x": self.x_train[rows]}

    def test_split(self) -> dict:
        """The whole test split: ``{"x": [N_test, D] int32}``."""
        return {"x": self.x_test}

    def validate(self, name: str = "data") -> ClassDataset:
        """Checks shapes, dtype and class range; returns ``self``.

        Raises:
          ValueError: naming the split and what is wrong.
        """
        for split, x in (("x_train", self.x_train), ("x_test", self.x_test)):
            if x.ndim != 2 or len(x) == 0:
                raise ValueError(f"{name}.{split} must be [examples, dim], got {x.shape}")
            if not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"{name}.{split} must hold integer classes, got {x.dtype}")
            if x.min() < 0 or x.max() >= self.num_classes:
                raise ValueError(
                    f"{name}.{split} classes must lie in [0, {self.num_classes}), got "
                    f"[{x.min()}, {x.max()}]"
                )
        return self


def _split_levels(seed: int, num_test: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(num_test, bool) or not isinstance(num_test, int) or not 0 < num_test < 1797:
        raise ValueError(f"data.num_test must be an int in (0, 1797), got {num_test!r}")
    images = _sklearn_digits().images.reshape(-1, 64).astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(images))
    return images[order[num_test:]], images[order[:num_test]]


def load_digit_levels(*, seed: int = 0, num_test: int = NUM_TEST) -> ClassDataset:
    """The digits as their 17 integer grey levels (0..16), flat 64-dimensional.

    Args:
      seed: seed of the train/test permutation (the split of ``load_digits``).
      num_test: number of test images (the rest train).

    Returns:
      A :class:`ClassDataset` with ``num_classes = 17``.
    """
    train, test = _split_levels(seed, num_test)
    return ClassDataset(train, test, NUM_GREY_LEVELS)


def load_binary_digits(*, seed: int = 0, num_test: int = NUM_TEST, threshold: int = 8):
    """The digits binarised at a fixed threshold: class 1 where ``level > threshold``.

    Args:
      seed: seed of the train/test permutation (the split of ``load_digits``).
      num_test: number of test images.
      threshold: grey level in ``[0, 16)`` above which a pixel is 1.

    Returns:
      A :class:`ClassDataset` with ``num_classes = 2``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold < 16:
        raise ValueError(f"data.threshold must be an int in [0, 16), got {threshold!r}")
    train, test = _split_levels(seed, num_test)
    return ClassDataset(
        (train > threshold).astype(np.int32), (test > threshold).astype(np.int32), 2
    )


register_dataset(
    "digits_levels",
    lambda c: load_digit_levels(seed=c.seed, num_test=c.num_test),
    defaults={"seed": 0, "num_test": NUM_TEST},
    doc="the digits' 17 integer grey levels (0..16), for Gaussian diffusion on a grid",
)
register_dataset(
    "digits_binary",
    lambda c: load_binary_digits(seed=c.seed, num_test=c.num_test, threshold=c.threshold),
    defaults={"seed": 0, "num_test": NUM_TEST, "threshold": 8},
    doc="the digits binarised at a fixed threshold (classes 0 and 1), for discrete diffusion",
)
