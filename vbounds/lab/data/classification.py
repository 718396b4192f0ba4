"""The digits as a classification set: grey-level pixels in [0, 1] and their labels.

``digits_classification`` is scikit-learn's 1,797 8x8 digits with the pixels divided by 16
(continuous, never binarised) and a stratified split (``train_test_split(...,
stratify=labels, random_state=seed)``): with the default ``test_fraction`` of 0.25, 1,347
training and 450 test images with the ten classes in the same proportions in both. The
split depends on ``data.seed`` only, so runs that differ in their training seed evaluate on
the same test images. Training batches follow :func:`~vbounds.lab.data.batch_indices`
(a fresh permutation each epoch, the remainder dropped).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.datasets import load_digits as _sklearn_digits
from sklearn.model_selection import train_test_split

from vbounds.lab.data.dataset import Dataset
from vbounds.lab.registry import register_dataset

NUM_CLASSES = 10

#: Declared hyperparameters of ``digits_classification``.
DEFAULTS = {"seed": 0, "test_fraction": 0.25}


def load_digits_classification(*, seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """Loads the digits with labels and a stratified train/test split.

    Args:
      seed: ``random_state`` of the stratified split.
      test_fraction: the share of the images held out for testing, in (0, 1); each split
        must hold at least one image per class.

    Returns:
      A :class:`~vbounds.lab.data.Dataset` of flat float32 pixels in [0, 1]
      (``likelihood="gaussian"``, ``binarize=False``), int32 labels and ``num_classes=10``.

    Raises:
      ValueError: naming ``seed`` or ``test_fraction`` when out of range.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"data.seed must be an int in [0, 2**32), got {seed!r}")
    images, labels = _sklearn_digits(return_X_y=True)
    n = len(labels)
    valid = (
        isinstance(test_fraction, int | float)
        and not isinstance(test_fraction, bool)
        and math.isfinite(test_fraction)
        and 0 < test_fraction < 1
    )
    # train_test_split rounds the test share up and the training share down.
    num_test = math.ceil(test_fraction * n) if valid else 0
    if not valid or not NUM_CLASSES <= num_test <= n - NUM_CLASSES:
        raise ValueError(
            f"data.test_fraction must lie in (0, 1) and leave at least {NUM_CLASSES} images "
            f"(one per class) in each split of {n}, got {test_fraction!r}"
        )
    x_train, x_test, y_train, y_test = train_test_split(
        (images / 16.0).astype(np.float32),
        labels.astype(np.int32),
        test_size=test_fraction,
        random_state=seed,
        stratify=labels,
    )
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        likelihood="gaussian",
        binarize=False,
        num_classes=NUM_CLASSES,
    )


register_dataset(
    "digits_classification",
    lambda c: load_digits_classification(seed=c.seed, test_fraction=c.test_fraction),
    defaults=DEFAULTS,
    doc="the digits' pixels in [0, 1] with labels, a stratified 75/25 split (VIB)",
)
