"""The in-memory dataset container, dynamic binarisation and the step-indexed batch order."""

from typing import NamedTuple

import jax
import numpy as np


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
    order = np.random.default_rng(np.random.SeedSequence([seed, epoch])).permutation(num_examples)
    return order[position * batch_size : (position + 1) * batch_size]
