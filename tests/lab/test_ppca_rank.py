"""The PPCA rank-selection pieces: data, the closed-form maximum likelihood, the report."""

import math

import jax
import numpy as np
import pytest

import vbounds as vb
from experiments.configs import ppca_rank
from vbounds.lab import train_and_evaluate
from vbounds.lab.data.ppca_rank import load_ppca_rank
from vbounds.lab.objectives.ppca import max_log_likelihood, selected_ranks, sweep_report


def test_max_log_likelihood_is_attained_by_the_tipping_bishop_solution():
    x = load_ppca_rank(seed=1, num_train=300, num_test=1).x_train.astype(np.float64)
    n, d = x.shape
    rank = 3
    eig, vec = np.linalg.eigh(np.cov(x, rowvar=False, bias=True))
    eig, vec = eig[::-1], vec[:, ::-1]
    s2 = eig[rank:].mean()
    w = vec[:, :rank] * np.sqrt(eig[:rank] - s2)
    with jax.enable_x64(True):
        at_ml = float(np.sum(vb.linear_gaussian.log_likelihood(x, w, x.mean(0), s2)))
        perturbed = float(
            np.sum(vb.linear_gaussian.log_likelihood(x, 1.05 * w, x.mean(0), 0.95 * s2))
        )
    best = max_log_likelihood(x, rank)
    np.testing.assert_allclose(best, at_ml, rtol=1e-10)
    assert perturbed < best
    # More rank never lowers the maximum likelihood: the criterion cannot stop early.
    assert all(max_log_likelihood(x, r + 1) >= max_log_likelihood(x, r) for r in range(1, d - 1))


def test_data_has_the_known_rank_and_flags_the_training_rows():
    data = load_ppca_rank(seed=0, num_train=4000, num_test=10)
    eig = np.sort(np.linalg.eigvalsh(np.cov(data.x_train, rowvar=False)))[::-1]
    # Signal variances 9, 4, 1 on top of unit noise, then the noise floor.
    np.testing.assert_allclose(eig[:3], [10.0, 5.0, 2.0], rtol=0.15)
    np.testing.assert_allclose(eig[3:], 1.0, atol=0.15)
    test = data.test_split()
    assert test["is_train"].sum() == 4000 and len(test["x"]) == 4010
    assert np.all(test["num_data"] == 4000)
    with pytest.raises(ValueError, match="true_rank"):
        load_ppca_rank(true_rank=10)


def test_selected_ranks_pick_each_criterions_argmax_per_replicate():
    jobs = []
    for seed in (0, 1):
        for rank in (1, 2, 3):
            jobs.append(
                {
                    "data.seed": seed,
                    "model.rank": rank,
                    "test_rank": float(rank),
                    "test_num_train": 50.0,
                    "test_elbo": -abs(rank - 2 - seed),  # argmax 2 (seed 0), 3 (seed 1)
                    "test_max_loglik": float(rank),  # always the largest
                    "test_heldout_loglik": -abs(rank - 2),
                }
            )
    (row,) = selected_ranks(jobs)
    assert row["num_train"] == 50 and row["n"] == 2
    assert row["test_elbo"] == 2.5 and math.isclose(row["test_elbo_se"], 0.5)
    assert row["test_max_loglik"] == 3.0 and row["test_heldout_loglik"] == 2.0


def test_smoke_training_and_sweep_report(tmp_path):
    config = ppca_rank.get_config("smoke")
    results = train_and_evaluate(config, str(tmp_path / "run"))
    for key in ("test_elbo", "test_max_loglik", "test_heldout_loglik", "test_kl"):
        assert np.isfinite(results[key]), key
    assert results["test_num_train"] == config.data.num_train
    # ELBO <= log p(X) = log E_prior p(X | W) <= max_W log p(X | W): an exact ordering (the
    # ELBO's Monte Carlo error is far smaller than the gap of an untrained model).
    assert results["test_elbo"] < results["test_max_loglik"]
    assert results["test_kl"] > 0
    job = {"model.rank": 2, **results}
    sweep_report([job], str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").exists() and (tmp_path / "selected_rank.md").exists()
