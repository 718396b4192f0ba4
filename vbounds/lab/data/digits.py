"""The scikit-learn digits: 1,797 real 8x8 handwritten digits, shipped with scikit-learn."""

import numpy as np
from sklearn.datasets import load_digits as _sklearn_digits

from vbounds.lab.data.dataset import Dataset, binarize_fixed

NUM_TEST = 297


def load_digits(*, seed: int = 0, num_test: int = NUM_TEST, binarize: bool = True) -> Dataset:
    """Loads the digits as flat 64-dimensional vectors in [0, 1] with a fixed split.

    The split is a permutation drawn from ``seed`` (the same for every run that keeps
    the seed), so runs with different training seeds evaluate on the same test set.

    Args:
      seed: seed of the train/test permutation and of the test set's fixed binarisation.
      num_test: number of test examples (the rest are training examples).
      binarize: if true, the training images stay grey-level (they are binarised
        dynamically, a fresh Bernoulli draw per batch) and the test images are
        binarised once with a fixed draw; if false both stay in [0, 1].

    Returns:
      A :class:`Dataset` with ``likelihood="bernoulli"`` when binarised, otherwise
      ``"gaussian"``, and the class labels.
    """
    if not 0 < num_test < 1797:
        raise ValueError(f"num_test must be in (0, 1797), got {num_test}")
    images, labels = _sklearn_digits(return_X_y=True)
    images = (images / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(images))
    train, test = order[num_test:], order[:num_test]
    x_test = images[test]
    if binarize:
        x_test = binarize_fixed(x_test, seed=seed)
    return Dataset(
        x_train=images[train],
        y_train=labels[train].astype(np.int32),
        x_test=x_test,
        y_test=labels[test].astype(np.int32),
        likelihood="bernoulli" if binarize else "gaussian",
        binarize=binarize,
        num_classes=10,
    )
