"""The dataset protocol, the in-memory container, dynamic binarisation, the batch order.

The training loop needs three things of a dataset (any object will do):

- ``train_batch(*, seed, step, batch_size) -> dict``: the global training batch of ``step``
  as host arrays with the batch on axis 0 (``"x"``, and ``"y"`` where labelled), a pure
  function of its arguments so that a resumed run sees the same data;
- ``test_split() -> dict``: the whole test split, same keys;
- ``train_transform(key, batch) -> batch`` (optional): a jittable per-step transform of a
  training batch inside the compiled step (dynamic binarisation, for example).

:class:`Dataset` implements it for arrays held in memory; a generated dataset (the MI
staircase) implements ``train_batch`` by sampling from ``(seed, step)``.
"""

import functools
from typing import NamedTuple

import jax
import numpy as np

# Inputs whose square overflows float32 are almost surely a unit or loading error.
MAX_ABS_VALUE = 1e6


class Dataset(NamedTuple):
    """A train/test split held in host memory as flat float32 vectors.

    Attributes:
      x_train: ``[N_train, D]`` training inputs (grey levels in [0, 1] when
        ``binarize`` is true: they are binarised per batch).
      y_train: ``[N_train]`` integer labels, or ``None``.
      x_test: ``[N_test, D]`` test inputs, already binarised once with a fixed draw
        when ``binarize`` is true, so every evaluation sees the same test set.
      y_test: ``[N_test]`` integer labels, or ``None``.
      likelihood: ``"bernoulli"`` or ``"gaussian"``: the observation model it suits.
      binarize: whether training batches are binarised dynamically.
      num_classes: number of label classes (0 when there are no labels).
      true_log_likelihood: ``[N_test]`` exact ``log p(x)`` of the test points when the
        data come from a model with a closed form (synthetic sets), else ``None``.
    """

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    likelihood: str
    binarize: bool
    num_classes: int = 0
    true_log_likelihood: np.ndarray | None = None

    @property
    def data_dim(self) -> int:
        """Dimension of one flattened input."""
        return int(self.x_train.shape[1])

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The training batch of ``step`` (see :func:`batch_indices`)."""
        rows = batch_indices(
            seed=seed, step=step, num_examples=len(self.x_train), batch_size=batch_size
        )
        return _rows(self.x_train, self.y_train, rows)

    def test_split(self) -> dict:
        """The whole test split: ``{"x"}`` or ``{"x", "y"}``."""
        return _rows(self.x_test, self.y_test, slice(None))

    def train_transform(self, key: jax.Array, batch: dict) -> dict:
        """Dynamic binarisation of ``batch["x"]`` when ``binarize`` is set."""
        if not self.binarize:
            return batch
        return {**batch, "x": binarize(key, batch["x"])}

    def validate(self, name: str = "data") -> "Dataset":
        """Checks the arrays before training; returns ``self``.

        Raises:
          ValueError: naming the split and what is wrong: non-finite values, values
            beyond ``MAX_ABS_VALUE`` (rescale the data), inputs outside [0, 1] for a
            Bernoulli / binarised set, or labels outside ``[0, num_classes)``.
        """
        for split, x in (("x_train", self.x_train), ("x_test", self.x_test)):
            x = np.asarray(x)
            if x.ndim < 2 or len(x) == 0:
                raise ValueError(f"{name}.{split} must hold examples on axis 0, got {x.shape}")
            bad = ~np.isfinite(x)
            if bad.any():
                raise ValueError(
                    f"{name}.{split} has {int(bad.sum())} non-finite values "
                    f"(first at example {int(np.argwhere(bad)[0][0])})"
                )
            if np.abs(x).max() > MAX_ABS_VALUE:
                raise ValueError(
                    f"{name}.{split} has values up to {np.abs(x).max():.3g}, beyond "
                    f"{MAX_ABS_VALUE:g}: rescale or standardise the data"
                )
            if (self.binarize or self.likelihood == "bernoulli") and (x.min() < 0 or x.max() > 1):
                raise ValueError(
                    f"{name}.{split} must lie in [0, 1] for a Bernoulli likelihood, got "
                    f"[{x.min():.3g}, {x.max():.3g}]"
                )
        for split, y in (("y_train", self.y_train), ("y_test", self.y_test)):
            if y is not None and self.num_classes and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(
                    f"{name}.{split} labels must lie in [0, {self.num_classes}), got "
                    f"[{y.min()}, {y.max()}]"
                )
        return self


def _rows(x, y, rows) -> dict:
    batch = {"x": x[rows]}
    if y is not None:
        batch["y"] = y[rows]
    return batch


def binarize(key: jax.Array, x: jax.Array) -> jax.Array:
    """Draws a binary image with pixel probabilities ``x`` (dynamic binarisation).

    Args:
      key: a JAX PRNG key.
      x: grey levels in [0, 1].

    Returns:
      An array like ``x`` of zeros and ones (same dtype).
    """
    return jax.random.bernoulli(key, x).astype(x.dtype)


def binarize_fixed(x: np.ndarray, *, seed: int) -> np.ndarray:
    """Binarises ``x`` once on the host with a fixed numpy seed (for test sets)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB1]))
    return (rng.random(x.shape) < x).astype(np.float32)


def batch_indices(*, seed: int, step: int, num_examples: int, batch_size: int) -> np.ndarray:
    """Indices of the training examples of batch ``step``: a pure function of its arguments.

    Each epoch is a fresh permutation drawn from ``(seed, epoch)`` with the remainder
    dropped, so the data order of a resumed run is exactly that of an uninterrupted one.

    Args:
      seed: the run's seed.
      step: the global step (0-based).
      num_examples: size of the training set.
      batch_size: the global batch size.

    Returns:
      ``[batch_size]`` integer indices into the training set.
    """
    if not 0 < batch_size <= num_examples:
        raise ValueError(
            f"batch_size must be in [1, {num_examples}] (the training set size), got {batch_size}"
        )
    per_epoch = num_examples // batch_size
    epoch, position = divmod(step, per_epoch)
    order = _epoch_order(seed, epoch, num_examples)
    return order[position * batch_size : (position + 1) * batch_size]


@functools.lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The permutation of one epoch (cached: every step of the epoch reads it)."""
    order = np.random.default_rng(np.random.SeedSequence([seed, epoch])).permutation(num_examples)
    order.flags.writeable = False
    return order
