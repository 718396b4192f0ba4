"""Two small real tabular sets that ship inside scikit-learn, standardised.

``diabetes`` (regression) and ``breast_cancer`` (binary classification, below).

442 patients, 10 baseline features, the target a measure of disease progression one year
later (Efron et al., Least Angle Regression, 2004); the data ship inside scikit-learn. The
split is a permutation of ``data.seed`` with ``num_test`` test rows (90 by default, leaving
352 training rows, a multiple of 8 for full-batch training on 1, 2, 4 or 8 devices). Inputs
and targets are standardised with the training split's mean and standard deviation, so a
predictor of the training mean has a test RMSE near 1; ``y`` is a float ``[N]`` target.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer as _sklearn_breast_cancer
from sklearn.datasets import load_diabetes as _sklearn_diabetes

from vbounds.lab.data.dataset import Dataset
from vbounds.lab.registry import register_dataset

#: Declared hyperparameters of ``diabetes``.
DEFAULTS = {"seed": 0, "num_test": 90}


def _split(x, y, *, seed: int, num_test: int, salt: int):
    """A permutation split of ``seed``; inputs standardised with the training rows' moments."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"data.seed must be an int in [0, 2**32), got {seed!r}")
    if isinstance(num_test, bool) or not isinstance(num_test, int) or not 0 < num_test < len(y):
        raise ValueError(f"data.num_test must be an int in [1, {len(y) - 1}], got {num_test!r}")
    order = np.random.default_rng(np.random.SeedSequence([seed, salt])).permutation(len(y))
    test, train = order[:num_test], order[num_test:]
    x = ((x - x[train].mean(0)) / x[train].std(0)).astype(np.float32)
    return x[train], y[train], x[test], y[test]


def load_diabetes(*, seed: int = 0, num_test: int = 90) -> Dataset:
    """Loads the diabetes regression set, split by ``seed`` and standardised on the train split.

    Args:
      seed: seed of the split's permutation.
      num_test: rows held out for testing, in ``[1, 441]``.

    Returns:
      A :class:`~vbounds.lab.data.Dataset` with float32 ``x [N, 10]`` and ``y [N]``
      (``num_classes=0``: real-valued targets).

    Raises:
      ValueError: naming ``seed`` or ``num_test`` when out of range.
    """
    x, y = _sklearn_diabetes(return_X_y=True)
    x_train, y_train, x_test, y_test = _split(x, y, seed=seed, num_test=num_test, salt=0xD1A)
    y_mean, y_std = y_train.mean(), y_train.std()
    return Dataset(
        x_train=x_train,
        y_train=((y_train - y_mean) / y_std).astype(np.float32),
        x_test=x_test,
        y_test=((y_test - y_mean) / y_std).astype(np.float32),
        likelihood="gaussian",
        binarize=False,
    )


def load_breast_cancer(*, seed: int = 0, num_test: int = 113) -> Dataset:
    """Loads the Wisconsin breast cancer set (569 x 30, labels 0 malignant / 1 benign).

    The split is a permutation of ``seed`` with ``num_test`` test rows (113 by default,
    leaving 456 training rows, a multiple of 8), the features standardised on the
    training rows.

    Args:
      seed: seed of the split's permutation.
      num_test: rows held out for testing, in ``[1, 568]``.

    Returns:
      A :class:`~vbounds.lab.data.Dataset` with float32 ``x [N, 30]``, int32 labels and
      ``num_classes=2``.
    """
    x, y = _sklearn_breast_cancer(return_X_y=True)
    x_train, y_train, x_test, y_test = _split(x, y, seed=seed, num_test=num_test, salt=0xBC)
    return Dataset(
        x_train=x_train,
        y_train=y_train.astype(np.int32),
        x_test=x_test,
        y_test=y_test.astype(np.int32),
        likelihood="gaussian",
        binarize=False,
        num_classes=2,
    )


register_dataset(
    "diabetes",
    lambda c: load_diabetes(seed=c.seed, num_test=c.num_test),
    defaults=DEFAULTS,
    doc="scikit-learn's diabetes regression set (442 x 10), standardised, 352/90 split",
)
register_dataset(
    "breast_cancer",
    lambda c: load_breast_cancer(seed=c.seed, num_test=c.num_test),
    defaults={"seed": 0, "num_test": 113},
    doc="scikit-learn's breast cancer set (569 x 30, two classes), standardised, 456/113 split",
)
