"""Evaluation and diagnostics against exact answers."""

import math
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import lg_model as lg
import numpy as np
import pytest

import vbounds as vb

THETA = jnp.array([0.3, -1.0, 0.5])
X = jnp.array([1.2, 0.4, -0.7])
Q_OFF = lg.q_params([0.6, 0.0, -0.4], 0.8)
LOG_JOINT = lg.log_joint_fn(THETA, X)


def test_unchunked_log_likelihood_equals_the_iwae_estimate_on_the_same_key():
    key = jax.random.key(0)
    for chunk in (None, 300):
        ll = vb.log_likelihood(key, LOG_JOINT, lg.make_q, Q_OFF, num_samples=300, chunk_size=chunk)
        est = vb.estimate(key, LOG_JOINT, lg.make_q, Q_OFF, num_samples=300, bound="iwae")
        np.testing.assert_allclose(ll, est.value, rtol=1e-6)


def test_chunked_log_likelihood_is_accurate_at_200k_samples():
    k, chunk = 200_000, 8192  # 24 full chunks and a remainder
    est = jax.jit(
        lambda key: vb.log_likelihood(
            key, LOG_JOINT, lg.make_q, Q_OFF, num_samples=k, chunk_size=chunk
        )
    )(jax.random.key(1))
    # delta-method standard error of log(mean w) from the weights themselves
    q = lg.make_q(Q_OFF)
    z = q.sample(seed=jax.random.key(2), sample_shape=(k,))
    log_w = LOG_JOINT(z) - q.log_prob(z)
    w = np.exp(np.asarray(log_w, np.float64) - float(jnp.max(log_w)))
    se = w.std() / w.mean() / math.sqrt(k)
    exact = float(lg.exact_log_px(THETA, X))
    assert abs(float(est) - exact) < 4.5 * se + 1e-5, (float(est), exact, se)
    # the q used is off the posterior, so small K is visibly biased below log p(x)
    small = vb.log_likelihood(jax.random.key(3), LOG_JOINT, lg.make_q, Q_OFF, num_samples=1)
    assert float(small) < exact


def test_chunking_with_remainder_merges_every_sample():
    # With a tight q every weight is p(x): any chunking gives log p(x) exactly,
    # which fails if a chunk were dropped or counted twice (log K would be off).
    post = lg.posterior_params(THETA, X)
    exact = lg.exact_log_px(THETA, X)
    for k, chunk in ((10, 3), (100, 7), (64, 64), (5, 1)):
        ll = vb.log_likelihood(
            jax.random.key(4), LOG_JOINT, lg.make_q, post, num_samples=k, chunk_size=chunk
        )
        np.testing.assert_allclose(ll, exact, atol=2e-5)
    with pytest.raises(ValueError, match="chunk_size"):
        vb.log_likelihood(
            jax.random.key(4), LOG_JOINT, lg.make_q, post, num_samples=4, chunk_size=8
        )


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, distrax, json
    import vbounds as vb

    d = 64
    def make_q(p):
        return distrax.MultivariateNormalDiag(p, jnp.ones(d))
    def log_joint(z):
        return distrax.MultivariateNormalDiag(jnp.zeros(d), jnp.ones(d)).log_prob(z)

    def temp_bytes(k, chunk):
        f = jax.jit(lambda key, p: vb.log_likelihood(
            key, log_joint, make_q, p, num_samples=k, chunk_size=chunk))
        stats = f.lower(jax.random.key(0), jnp.zeros(d)).compile().memory_analysis()
        return stats.temp_size_in_bytes
    print(json.dumps({
        "chunked_small": temp_bytes(10_000, 1000),
        "chunked_large": temp_bytes(1_000_000, 1000),
        "unchunked_large": temp_bytes(1_000_000, None),
    }))
    """
)


def test_chunked_memory_does_not_grow_with_num_samples():
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT], capture_output=True, text=True, check=True
    )
    stats = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert stats["chunked_large"] <= 1.1 * stats["chunked_small"] + 4096, stats
    # a single chunk of 1e6 samples x 64 dims needs at least the 256 MB of samples
    assert stats["unchunked_large"] > 1_000_000 * 64 * 4, stats
    assert stats["chunked_large"] < stats["unchunked_large"] / 100, stats


def test_default_chunk_size_follows_the_measurements():
    # The values measured by benchmarks/loglik.py (benchmarks/README.md).
    assert vb.default_chunk_size("cpu") == 100
    assert vb.default_chunk_size("gpu") == vb.default_chunk_size("tpu") == 1000
    assert vb.default_chunk_size() == vb.default_chunk_size(jax.default_backend())
    with pytest.raises(ValueError, match="`backend`"):
        vb.default_chunk_size("metal")


def test_effective_sample_size():
    np.testing.assert_allclose(vb.effective_sample_size(jnp.zeros(50)), 50.0, rtol=1e-5)
    np.testing.assert_allclose(
        vb.effective_sample_size(jnp.array([0.0, -1e4, -1e4])), 1.0, rtol=1e-5
    )
    log_w = jax.random.normal(jax.random.key(5), (100, 3))
    w = np.exp(np.asarray(log_w, np.float64))
    np.testing.assert_allclose(
        vb.effective_sample_size(log_w), w.sum(0) ** 2 / (w**2).sum(0), rtol=1e-5
    )
    np.testing.assert_allclose(
        vb.effective_sample_size(log_w.T, axis=1), vb.effective_sample_size(log_w), rtol=1e-6
    )
    # stable at large magnitude (compared on the same rounded float32 inputs)
    shifted = log_w + 1e4
    w = np.exp(np.asarray(shifted, np.float64) - 1e4)
    np.testing.assert_allclose(
        vb.effective_sample_size(shifted), w.sum(0) ** 2 / (w**2).sum(0), rtol=1e-4
    )


@pytest.mark.parametrize("shape", [0.2, 0.7, 1.2])
def test_pareto_k_hat_recovers_the_tail_shape(shape):
    # Weights drawn from a generalised Pareto distribution: every tail has that shape.
    reps, k = 40, 4000
    u = jax.random.uniform(jax.random.key(6), (reps, k), minval=1e-7, maxval=1.0)
    log_w = jnp.log(jnp.expm1(-shape * jnp.log(u)) / shape)  # GPD(shape, scale 1) draws
    khat = np.asarray(jax.jit(lambda lw: vb.pareto_k_hat(lw, axis=1))(log_w))
    n_tail = int(min(0.2 * k, 3 * math.sqrt(k)))
    prior_pull = abs(0.5 - shape) * 10 / (n_tail + 10)  # the estimator's weak prior
    se = khat.std(ddof=1) / math.sqrt(reps)
    assert abs(khat.mean() - shape) < 4.5 * se + prior_pull, (khat.mean(), shape, se)


def test_pareto_k_hat_separates_bounded_from_heavy_weights():
    z = jax.random.normal(jax.random.key(7), (5000,))
    # q = N(0, 2^2) proposing for p = N(0, 1): bounded weights, light tail
    light = -0.5 * z**2 * 4 + 0.5 * z**2 + math.log(2.0)
    # q = N(0, 1) proposing for p = N(0, 2^2): weights exp(3 z^2 / 8) have tail
    # P(w > t) ~ t^(-4/3), shape 3/4: infinite variance, which k-hat must flag (> 0.5)
    heavy = -0.5 * z**2 / 4 + 0.5 * z**2 - math.log(2.0)
    assert float(vb.pareto_k_hat(light)) < 0.3
    assert float(vb.pareto_k_hat(heavy)) > 0.5
    assert float(vb.pareto_k_hat(jnp.zeros(100))) == -math.inf
    with pytest.raises(ValueError, match="25"):
        vb.pareto_k_hat(jnp.zeros(10))


def test_gradient_snr():
    draws = 2.0 + 0.5 * jax.random.normal(jax.random.key(8), (20000, 3))
    snr = vb.gradient_snr({"w": draws, "b": -draws[:, 0]})
    np.testing.assert_allclose(snr["w"], 4.0, rtol=0.05)  # SE of the SNR ~ 0.2 %
    np.testing.assert_allclose(snr["b"], snr["w"][0], rtol=1e-6)
    assert float(vb.gradient_snr(jnp.zeros((5,)))) == 0.0
    with pytest.raises(ValueError, match="2 draws"):
        vb.gradient_snr(jnp.ones((1, 3)))


def test_diagnostics_propagate_nan():
    # Reported: pareto_k_hat gave -inf ("reliable") on NaN weights, gradient_snr gave 0.
    z = jax.random.normal(jax.random.key(11), (2, 100))
    khat = jax.jit(lambda lw: vb.pareto_k_hat(lw, axis=1))
    for bad in (jnp.nan, jnp.inf):
        log_w = z.at[0, 17].set(bad)
        for value in (vb.pareto_k_hat(log_w, axis=1), khat(log_w)):
            assert np.isnan(value[0]), value
            np.testing.assert_allclose(value[1], vb.pareto_k_hat(z[1]), rtol=1e-6)
    # -inf is a zero weight, not an error
    assert np.isfinite(float(vb.pareto_k_hat(z[1].at[3].set(-jnp.inf))))
    draws = jnp.ones((10, 3)).at[:, 1].set(2.0)
    for bad in (jnp.nan, jnp.inf):
        snr = np.asarray(vb.gradient_snr(draws.at[4, 0].set(bad)))
        assert np.isnan(snr[0]) and snr[1] == snr[2] == math.inf, snr
    assert np.isnan(float(jax.jit(vb.gradient_snr)(jnp.zeros(5).at[2].set(jnp.nan))))


def test_empty_or_zero_sized_arguments_are_named():
    with pytest.raises(ValueError, match="`log_w` must have at least one sample along axis 0"):
        vb.effective_sample_size(jnp.zeros((0,)))
    # Reported: chunk_size=0 blamed `num_samples`.
    with pytest.raises(ValueError, match="`chunk_size` must be >= 1, got 0"):
        vb.log_likelihood(
            jax.random.key(0), LOG_JOINT, lg.make_q, Q_OFF, num_samples=10, chunk_size=0
        )


def test_dreg_improves_the_encoder_snr_as_k_grows():
    # Rainforth et al. 2018: reparam IWAE's encoder SNR falls like 1/sqrt(K); DReG's does not.
    def snr(estimator, k):
        def one(kk):
            g = jax.grad(
                lambda qp: (
                    vb.estimate(
                        kk, LOG_JOINT, lg.make_q, qp, num_samples=k, estimator=estimator
                    ).surrogate
                )
            )(Q_OFF)
            return g["mean"]

        g = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(9), 1000))
        return float(jnp.mean(vb.gradient_snr(g)))

    assert snr("reparam", 256) < snr("reparam", 4)
    assert snr("dreg", 256) > 2 * snr("reparam", 256)


def test_diagnostics_under_jit_and_vmap():
    log_w = jax.random.normal(jax.random.key(10), (4, 50))
    np.testing.assert_allclose(
        jax.vmap(vb.effective_sample_size)(log_w), vb.effective_sample_size(log_w, axis=1)
    )
    np.testing.assert_allclose(
        jax.jit(jax.vmap(vb.pareto_k_hat))(log_w), vb.pareto_k_hat(log_w, axis=1), rtol=1e-5
    )
    np.testing.assert_allclose(jax.jit(vb.gradient_snr)(log_w), vb.gradient_snr(log_w), rtol=1e-6)
    xs = jnp.stack([X, X + 1])
    lls = jax.jit(
        jax.vmap(
            lambda kk, x: vb.log_likelihood(
                kk, lg.log_joint_fn(THETA, x), lg.make_q, Q_OFF, num_samples=20, chunk_size=6
            )
        )
    )(jax.random.split(jax.random.key(11), 2), xs)
    assert lls.shape == (2,) and np.all(np.isfinite(lls))


def test_core_import_does_not_pull_in_the_framework():
    code = (
        "import sys, vbounds; "
        "bad = [m for m in ('flax', 'optax', 'orbax', 'ml_collections') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
