"""The digits for risk certificates: a prior set, a bound set and the test images.

A PAC-Bayes certificate needs the trained posterior's empirical risk on the examples the
bound is about (the bound set) as well as its error on held-out images; a data-dependent
prior needs examples of its own, disjoint from the bound set. ``digits_certificate`` takes
the stratified split of ``digits_classification`` (same ``seed`` and ``test_fraction``:
the same 1,347 training and 450 test images) and divides the training images, by a
permutation drawn from ``seed``, into a prior set (the first
``floor(prior_fraction * 1347)``) and the bound set (the rest).

Training batches: the first ``prior_steps`` batches come from the prior set and carry
``"prior_phase"`` 1.0, the later ones from the bound set with 0.0 (each phase in the
epoch order of :func:`~vbounds.lab.data.batch_indices`). ``test_split()`` holds the bound
set followed by the test images, with ``"bound_set"`` 1.0 on the former, so one
evaluation pass gives both; the prior set is not evaluated.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from vbounds.lab.data.classification import load_digits_classification
from vbounds.lab.data.dataset import Dataset, batch_indices
from vbounds.lab.registry import register_dataset

#: Declared hyperparameters of ``digits_certificate``.
DEFAULTS = {"seed": 0, "test_fraction": 0.25, "prior_fraction": 0.5, "prior_steps": 1000}


@dataclasses.dataclass(frozen=True)
class CertificateData:
    """A labelled split with a prior set, a bound set and test images.

    Attributes:
      split: the underlying :class:`~vbounds.lab.data.Dataset` (its training images are
        the prior set and the bound set together).
      prior_rows: indices of the prior set in ``split.x_train``.
      bound_rows: indices of the bound set in ``split.x_train``.
      prior_steps: the number of leading training batches drawn from the prior set.
    """

    split: Dataset
    prior_rows: np.ndarray
    bound_rows: np.ndarray
    prior_steps: int

    @property
    def num_bound(self) -> int:
        """The size of the bound set: the ``n`` of the PAC-Bayes bound."""
        return len(self.bound_rows)

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """Batch ``step``: from the prior set while ``step < prior_steps``, else the bound set."""
        in_prior = step < self.prior_steps
        rows, local = (
            (self.prior_rows, step) if in_prior else (self.bound_rows, step - self.prior_steps)
        )
        pick = rows[
            batch_indices(seed=seed, step=local, num_examples=len(rows), batch_size=batch_size)
        ]
        return {
            "x": self.split.x_train[pick],
            "y": self.split.y_train[pick],
            "prior_phase": np.full(batch_size, float(in_prior), np.float32),
        }

    def test_split(self) -> dict:
        """``x``, ``y`` of the bound set then the test images, and the ``bound_set`` flags."""
        s = self.split
        flags = np.concatenate([np.ones(self.num_bound), np.zeros(len(s.x_test))])
        return {
            "x": np.concatenate([s.x_train[self.bound_rows], s.x_test]),
            "y": np.concatenate([s.y_train[self.bound_rows], s.y_test]),
            "bound_set": flags.astype(np.float32),
        }

    def validate(self, name: str = "data") -> CertificateData:
        """Checks the underlying split (see :meth:`Dataset.validate`); returns ``self``."""
        self.split.validate(name)
        return self


def load_digits_certificate(
    *, seed: int = 0, test_fraction: float = 0.25, prior_fraction: float = 0.5, prior_steps: int = 0
) -> CertificateData:
    """The digits' stratified split with a prior set and a bound set.

    Args:
      seed: the split's seed (the stratified split and the prior/bound permutation).
      test_fraction: the share of the images held out for testing.
      prior_fraction: the share of the training images in the prior set, in ``[0, 1)``
        (0: a data-independent prior, every training image in the bound set).
      prior_steps: the number of leading training batches from the prior set (0 when
        ``prior_fraction`` is 0).

    Raises:
      ValueError: naming ``prior_fraction`` or ``prior_steps`` when out of range.
    """
    split = load_digits_classification(seed=seed, test_fraction=test_fraction)
    valid = (
        isinstance(prior_fraction, int | float)
        and not isinstance(prior_fraction, bool)
        and 0 <= prior_fraction < 1
    )
    if not valid:
        raise ValueError(f"data.prior_fraction must lie in [0, 1), got {prior_fraction!r}")
    if isinstance(prior_steps, bool) or not isinstance(prior_steps, int) or prior_steps < 0:
        raise ValueError(f"data.prior_steps must be an int >= 0, got {prior_steps!r}")
    num_prior = math.floor(prior_fraction * len(split.x_train))
    if (num_prior == 0) != (prior_steps == 0):
        raise ValueError(
            f"data.prior_steps={prior_steps} needs a prior set and a prior set needs steps: "
            f"data.prior_fraction={prior_fraction!r} gives {num_prior} prior images"
        )
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x9B])).permutation(
        len(split.x_train)
    )
    return CertificateData(split, order[:num_prior], order[num_prior:], prior_steps)


register_dataset(
    "digits_certificate",
    lambda c: load_digits_certificate(
        seed=c.seed,
        test_fraction=c.test_fraction,
        prior_fraction=c.prior_fraction,
        prior_steps=c.prior_steps,
    ),
    defaults=DEFAULTS,
    doc="the digits' classification split as prior set, bound set and test images (PBB)",
)
