"""Synthetic PPCA data of known rank, for choosing the rank by the ELBO (``ppca_rank``).

``x = W z + b + noise_scale * eps`` with ``z ~ N(0, I_r)``, ``r = true_rank``, and the
columns of ``W`` orthogonal with lengths falling linearly from ``signal_scale`` to
``signal_scale / true_rank``: the last component is the hardest to detect, so the rank a
criterion selects depends on the number of training examples ``num_train``.

Model selection scores the *training* data, so :meth:`RankData.test_split` returns the
training rows (``is_train = 1``) followed by ``num_test`` held-out rows (``is_train =
0``). Every batch carries ``num_data`` (the training-set size, one copy per row), which the
``ppca_elbo`` objective needs to weigh the KL of the weights against a minibatch.
"""

from __future__ import annotations

import numpy as np

from vbounds.lab.data.dataset import batch_indices
from vbounds.lab.registry import register_dataset


class RankData:
    """Training and held-out draws of a rank-``true_rank`` PPCA, held in memory."""

    def __init__(self, x_train: np.ndarray, x_test: np.ndarray):
        self.x_train = x_train.astype(np.float32)
        self.x_test = x_test.astype(np.float32)

    def _rows(self, x: np.ndarray, is_train: np.ndarray) -> dict:
        n = np.full(len(x), len(self.x_train), np.float32)
        return {"x": x, "num_data": n, "is_train": is_train.astype(np.float32)}

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The batch of ``step`` from the loop's epoch permutations of the training rows."""
        rows = batch_indices(
            seed=seed, step=step, num_examples=len(self.x_train), batch_size=batch_size
        )
        x = self.x_train[rows]
        return self._rows(x, np.ones(len(x)))

    def test_split(self) -> dict:
        """The training rows, then the held-out rows, flagged by ``is_train``."""
        x = np.concatenate([self.x_train, self.x_test])
        flags = np.concatenate([np.ones(len(self.x_train)), np.zeros(len(self.x_test))])
        return self._rows(x, flags)


def load_ppca_rank(
    *,
    seed: int = 0,
    data_dim: int = 10,
    true_rank: int = 3,
    signal_scale: float = 3.0,
    noise_scale: float = 1.0,
    num_train: int = 200,
    num_test: int = 1000,
) -> RankData:
    """Draws the data set (generating parameters and samples from ``seed``).

    Raises:
      ValueError: naming the argument, for sizes below one, ``true_rank >= data_dim`` or
        non-positive scales.
    """
    for name, value in (
        ("data_dim", data_dim),
        ("true_rank", true_rank),
        ("num_train", num_train),
        ("num_test", num_test),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"data.{name} must be a positive int, got {value!r}")
    if true_rank >= data_dim:
        raise ValueError(f"data.true_rank={true_rank} must be below data.data_dim={data_dim}")
    for name, value in (("signal_scale", signal_scale), ("noise_scale", noise_scale)):
        if not value > 0:
            raise ValueError(f"data.{name} must be positive, got {value!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9CA]))
    basis, _ = np.linalg.qr(rng.normal(size=(data_dim, true_rank)))
    lengths = signal_scale * np.arange(true_rank, 0, -1) / true_rank
    weight, offset = basis * lengths, rng.normal(size=data_dim)
    n = num_train + num_test
    x = rng.normal(size=(n, true_rank)) @ weight.T + offset
    x += noise_scale * rng.normal(size=(n, data_dim))
    return RankData(x[:num_train], x[num_train:])


register_dataset(
    "ppca_rank",
    lambda c: load_ppca_rank(**{k: v for k, v in c.items() if k != "name"}),
    defaults={
        "seed": 0,
        "data_dim": 10,
        "true_rank": 3,
        "signal_scale": 3.0,
        "noise_scale": 1.0,
        "num_train": 200,
        "num_test": 1000,
    },
    doc="PPCA samples of known rank; test split = training rows + held-out rows",
)
