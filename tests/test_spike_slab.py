"""vb.spike_slab against enumeration over inclusion patterns and its own closed form."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

ss = vb.spike_slab
HYPER = dict(noise_variance=0.5, prior_inclusion=0.3, prior_slab_variance=2.0)


def _data(seed=0, n=12, p=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    w = np.array([1.5, 0.0, -1.0, 0.0])[:p]
    y = x @ w + rng.normal(size=n) * np.sqrt(HYPER["noise_variance"])
    return x, y


def _random_q(seed, p=4):
    rng = np.random.default_rng(seed)
    return ss.MeanField(
        jnp.asarray(rng.uniform(0.1, 0.9, p)),
        jnp.asarray(rng.normal(size=p)),
        jnp.asarray(rng.uniform(0.1, 1.0, p)),
    )


def _enumerated_log_evidence(x, y):
    """log p(y) = log sum_S p(S) N(y | 0, noise I + slab X_S X_S^T), over all 2^p patterns."""
    n, p = x.shape
    pi, s2, sb2 = HYPER["prior_inclusion"], HYPER["noise_variance"], HYPER["prior_slab_variance"]
    terms = []
    for pattern in itertools.product([0, 1], repeat=p):
        mask = np.array(pattern, bool)
        cov = s2 * np.eye(n) + sb2 * x[:, mask] @ x[:, mask].T
        log_gauss = -0.5 * (
            n * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + y @ np.linalg.solve(cov, y)
        )
        terms.append(mask.sum() * np.log(pi) + (p - mask.sum()) * np.log1p(-pi) + log_gauss)
    return np.logaddexp.reduce(terms)


def test_closed_form_elbo_equals_its_monte_carlo_estimate_and_bounds_the_evidence():
    x, y = _data()
    q = _random_q(1)
    exact = float(ss.elbo(x, y, q, **HYPER))
    draws = jax.jit(
        jax.vmap(lambda k: ss.mixed_gradient_surrogate(k, x, y, q, num_samples=1, **HYPER))
    )(jax.random.split(jax.random.key(0), 20_000))
    draws = np.asarray(draws, np.float64)
    assert abs(draws.mean() - exact) < 4.5 * draws.std() / np.sqrt(draws.size)
    assert exact < _enumerated_log_evidence(x, y)


def test_cavi_sweeps_never_decrease_the_elbo_and_reach_a_stationary_point():
    x, y = _data(2)
    with jax.enable_x64(True):
        q = _random_q(3)
        sweep = jax.jit(lambda q: ss.cavi_sweep(x, y, q, **HYPER))
        value = jax.jit(lambda q: ss.elbo(x, y, q, **HYPER))
        values = [float(value(q))]
        for _ in range(30):
            q = sweep(q)
            values.append(float(value(q)))
        grad = jax.grad(value)(q)
    diffs = np.diff(values)
    assert np.all(diffs >= -1e-10 * np.abs(values[1:]))
    assert values[-1] - values[0] > 1.0  # it did climb
    assert values[-1] < _enumerated_log_evidence(x, y)
    # A fixed point of exact coordinate maximisation is a stationary point of the ELBO (the
    # Bernoulli entropy's slope is infinite where an inclusion probability rounds to 1).
    np.testing.assert_allclose(grad.slab_mean, 0.0, atol=1e-7)
    np.testing.assert_allclose(grad.slab_variance, 0.0, atol=1e-7)
    interior = (q.inclusion_prob > 1e-9) & (q.inclusion_prob < 1 - 1e-9)
    assert interior.sum() >= 2
    np.testing.assert_allclose(grad.inclusion_prob[interior], 0.0, atol=1e-7)


def test_one_coordinate_update_is_the_exact_block_maximiser():
    x, y = _data(4, p=1)
    rng = np.random.default_rng(6)
    with jax.enable_x64(True):
        value = jax.jit(lambda q: ss.elbo(x, y, q, **HYPER))
        best = ss.cavi_sweep(x, y, _random_q(5, p=1), **HYPER)
        for _ in range(20):
            g = jax.nn.sigmoid(jax.scipy.special.logit(best.inclusion_prob) + rng.normal())
            moved = ss.MeanField(
                g,
                best.slab_mean + 0.2 * rng.normal(),
                best.slab_variance * np.exp(0.2 * rng.normal()),
            )
            assert float(value(moved)) < float(value(best))


@pytest.mark.parametrize("num_samples", [1, 3])
def test_mixed_gradient_estimator_is_unbiased_for_the_closed_form_gradient(num_samples):
    x, y = _data(7)
    q = _random_q(8)
    exact = jax.grad(lambda q: ss.elbo(x, y, q, **HYPER))(q)
    grads = jax.jit(
        jax.vmap(
            jax.grad(
                lambda q, k: ss.mixed_gradient_surrogate(
                    k, x, y, q, num_samples=num_samples, **HYPER
                )
            ),
            in_axes=(None, 0),
        )
    )(q, jax.random.split(jax.random.key(9), 20_000))
    for name, g, e in zip(ss.MeanField._fields, grads, exact):
        g = np.asarray(g, np.float64)
        se = g.std(0) / np.sqrt(g.shape[0])
        assert np.all(np.abs(g.mean(0) - np.asarray(e)) < 4.5 * se), name
        assert np.all(se > 0), name


def test_bad_inputs_name_the_argument():
    x, y = _data()
    q = _random_q(0)
    with pytest.raises(ValueError, match="`x`"):
        ss.elbo(x[0], y, q, **HYPER)
    with pytest.raises(ValueError, match="`y`"):
        ss.elbo(x, y[:3], q, **HYPER)
    with pytest.raises(TypeError, match="`q`"):
        ss.elbo(x, y, tuple(q), **HYPER)
    with pytest.raises(ValueError, match="`q.slab_mean`"):
        ss.cavi_sweep(x, y, q._replace(slab_mean=jnp.zeros(3)), **HYPER)
    with pytest.raises(ValueError, match="`q.inclusion_prob`"):
        ss.elbo(x, y, q._replace(inclusion_prob=jnp.full(4, 1.5)), **HYPER)
    with pytest.raises(ValueError, match="`prior_inclusion`"):
        ss.elbo(x, y, q, **{**HYPER, "prior_inclusion": 1.0})
    with pytest.raises(ValueError, match="`noise_variance`"):
        ss.elbo(x, y, q, **{**HYPER, "noise_variance": 0.0})
    with pytest.raises(ValueError, match="`num_samples`"):
        ss.mixed_gradient_surrogate(jax.random.key(0), x, y, q, num_samples=0, **HYPER)
