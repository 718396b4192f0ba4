"""Gradient variance: Monte Carlo estimates against closed forms, enumeration, identities."""

import itertools
import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

gv = vb.gradient_variance

D = 3
PRECISION = jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 1.5]])
MODE = jnp.array([0.5, -1.0, 0.2])
LOC = jnp.array([1.0, 0.0, -0.5])
SCALE_TRIL = jnp.array([[0.8, 0.0, 0.0], [0.3, 0.6, 0.0], [-0.2, 0.1, 1.1]])
SCALE_DENSE = SCALE_TRIL + jnp.array([[0.0, 0.4, -0.3], [0.0, 0.0, 0.2], [0.0, 0.0, 0.0]])
SCALE_DIAG = jnp.array([0.8, 0.6, 1.1])


def _log_target(z):
    r = z - MODE
    return -0.5 * jnp.einsum("...i,ij,...j->...", r, PRECISION, r)


def _energy_gradient(parameterization, scale):
    """One-draw reparameterisation gradient of E_q log p with respect to (loc, scale)."""

    def sample(params, u):
        if parameterization == "mean_field":
            return params["loc"] + params["scale"] * u
        c = jnp.tril(params["scale"]) if parameterization == "full_rank" else params["scale"]
        return params["loc"] + c @ u

    params = {"loc": LOC, "scale": scale}

    def grad_fn(key):
        u = jax.random.normal(key, (D,))
        return jax.grad(lambda p: _log_target(sample(p, u)))(params)

    return grad_fn


CASES = [("mean_field", SCALE_DIAG), ("full_rank", SCALE_TRIL), ("dense", SCALE_DENSE)]


@pytest.mark.parametrize("parameterization, scale", CASES)
def test_monte_carlo_moments_match_the_closed_form(parameterization, scale):
    exact = gv.quadratic_location_scale_moments(
        PRECISION, MODE, LOC, scale, parameterization=parameterization
    )
    groups, per_group = 25, 800
    draws = jax.jit(
        lambda key: gv.gradient_draws(
            key, _energy_gradient(parameterization, scale), num_draws=groups * per_group
        )
    )(jax.random.key(3))
    # E||g||^2: a mean of i.i.d. squared norms, standard error from the same samples
    sq_norms = sum(jnp.sum(jnp.square(x).reshape(x.shape[0], -1), axis=1) for x in draws.values())
    second = float(gv.expected_squared_norm(draws))
    assert second == pytest.approx(float(jnp.mean(sq_norms)), rel=1e-5)
    se = float(jnp.std(sq_norms)) / math.sqrt(sq_norms.shape[0])
    assert abs(second - float(exact.expected_squared_norm)) < 4.5 * se
    # trace of the covariance: standard error from independent groups of draws
    grouped = jax.tree.map(lambda x: x.reshape(groups, per_group, *x.shape[1:]), draws)
    per = jnp.stack(
        [gv.trace_covariance(jax.tree.map(lambda x, g=g: x[g], grouped)) for g in range(groups)]
    )
    trace = float(gv.trace_covariance(draws))
    se_trace = float(jnp.std(per, ddof=1)) / math.sqrt(groups)
    assert abs(trace - float(exact.trace_covariance)) < 4.5 * se_trace
    # the covariance is a real share of the second moment here (the check is not trivial)
    assert 0.2 < float(exact.trace_covariance / exact.expected_squared_norm) < 0.95


def test_estimators_are_unbiased_by_enumeration():
    """Every 3-draw sequence of a two-point gradient distribution, weighted by its probability:
    the estimators' expectations are the exact moments (ddof=1 is what makes the trace exact)."""
    values = [np.array([1.0, -2.0]), np.array([4.0, 0.5])]
    probs = [0.3, 0.7]
    mean = sum(p * v for p, v in zip(probs, values))
    second = sum(p * float(v @ v) for p, v in zip(probs, values))
    trace = second - float(mean @ mean)
    exp_second = exp_trace = 0.0
    for seq in itertools.product(range(2), repeat=3):
        weight = math.prod(probs[i] for i in seq)
        draws = {"g": jnp.stack([values[i] for i in seq])}
        exp_second += weight * float(gv.expected_squared_norm(draws))
        exp_trace += weight * float(gv.trace_covariance(draws))
    assert exp_second == pytest.approx(second, rel=1e-6)
    assert exp_trace == pytest.approx(trace, rel=1e-6)


def test_the_elbo_gradient_of_vb_estimate_has_the_closed_form_covariance():
    """vb.estimate's reparameterised ELBO gradient adds the entropy's deterministic gradient to
    the energy's: same covariance trace as the closed form, shifted mean."""
    make_q = {
        "mean_field": lambda p: distrax.MultivariateNormalDiag(p["loc"], p["scale"]),
        "full_rank": lambda p: distrax.MultivariateNormalTri(p["loc"], p["scale"]),
    }
    n = 20_000
    for (name, scale), seed in zip(CASES[:2], (5, 6)):
        params = {"loc": LOC, "scale": scale}

        def grad_fn(key, name=name, params=params):
            def surrogate(p):
                return vb.estimate(
                    key, _log_target, make_q[name], p, num_samples=1, bound="elbo"
                ).surrogate

            return jax.grad(surrogate)(params)

        draws = jax.jit(lambda key, f=grad_fn: gv.gradient_draws(key, f, num_draws=n))(
            jax.random.key(seed)
        )
        exact = gv.quadratic_location_scale_moments(
            PRECISION, MODE, LOC, scale, parameterization=name
        )
        per = [gv.trace_covariance(jax.tree.map(lambda x, g=g: x[g::20], draws)) for g in range(20)]
        se = float(jnp.std(jnp.stack(per), ddof=1)) / math.sqrt(20)
        assert abs(float(gv.trace_covariance(draws)) - float(exact.trace_covariance)) < 4.5 * se


def test_full_rank_variance_grows_with_dimension_and_mean_field_does_not():
    """Isotropic target A = L I at the mode, scale sigma I: the closed forms reduce to
    mean-field 4 d L^2 sigma^2, full-rank (Cholesky) (d (d+1)/2 + 3 d) L^2 sigma^2 and dense
    (d + 3) d L^2 sigma^2: per coordinate the mean-field cost is flat in d, the full-rank
    ones grow linearly (ratios (d + 7) / 8 and (d + 3) / 4)."""
    lip, sigma = 1.7, 0.6
    unit = lip**2 * sigma**2
    moments = jax.jit(gv.quadratic_location_scale_moments, static_argnames="parameterization")
    for d in (1, 2, 5, 20, 64):
        args = (lip * jnp.eye(d), jnp.zeros(d), jnp.zeros(d))
        mf = moments(*args, sigma * jnp.ones(d))
        fr = moments(*args, sigma * jnp.eye(d), parameterization="full_rank")
        dn = moments(*args, sigma * jnp.eye(d), parameterization="dense")
        second = [float(m.expected_squared_norm) / unit for m in (mf, fr, dn)]
        np.testing.assert_allclose(second, [4 * d, d * (d + 1) / 2 + 3 * d, (d + 3) * d], rtol=1e-5)
        # at the mode E g = (0, diag of -B on the scale): the trace drops one B_ii^2 per entry
        trace = [float(m.trace_covariance) / unit for m in (mf, fr, dn)]
        np.testing.assert_allclose(trace, [3 * d, d * (d + 1) / 2 + 2 * d, (d + 2) * d], rtol=1e-5)


def test_dense_closed_form_attains_domkes_bound_for_isotropic_targets():
    """For A = L I: E||g||^2 = L^2 ((d+1)||m - mode||^2 + (d+3)||C||_F^2), Domke's bound
    for L-smooth targets with Gaussian (kurtosis 3) noise, for any dense C."""
    d, lip = 4, 2.5
    key_m, key_c = jax.random.split(jax.random.key(0))
    loc = jax.random.normal(key_m, (d,))
    c = jax.random.normal(key_c, (d, d))
    mode = jnp.arange(d, dtype=jnp.float32) / d
    got = gv.quadratic_location_scale_moments(
        lip * jnp.eye(d), mode, loc, c, parameterization="dense"
    )
    bound = lip**2 * ((d + 1) * jnp.sum((loc - mode) ** 2) + (d + 3) * jnp.sum(c**2))
    assert float(got.expected_squared_norm) == pytest.approx(float(bound), rel=1e-5)


def test_one_dimension_makes_every_parameterization_the_same():
    args = (jnp.array([[1.3]]), jnp.array([0.2]), jnp.array([-0.4]))
    mf = gv.quadratic_location_scale_moments(*args, jnp.array([0.7]))
    for name in ("full_rank", "dense"):
        other = gv.quadratic_location_scale_moments(
            *args, jnp.array([[0.7]]), parameterization=name
        )
        np.testing.assert_allclose(np.array(other), np.array(mf), rtol=1e-6)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="`parameterization`"):
        gv.quadratic_location_scale_moments(PRECISION, MODE, LOC, SCALE_DIAG, parameterization="x")
    with pytest.raises(ValueError, match="`scale`"):
        gv.quadratic_location_scale_moments(PRECISION, MODE, LOC, SCALE_TRIL)
    with pytest.raises(ValueError, match="`precision`"):
        gv.quadratic_location_scale_moments(jnp.eye(2), MODE, LOC, SCALE_DIAG)
    with pytest.raises(ValueError, match="`grads`"):
        gv.trace_covariance({"g": jnp.ones((1, 3))})
    with pytest.raises(ValueError, match="`grads`"):
        gv.expected_squared_norm({"a": jnp.ones((2, 3)), "b": jnp.ones((3,))})
    with pytest.raises(TypeError, match="`num_draws`"):
        gv.gradient_draws(jax.random.key(0), lambda k: k, num_draws=2.0)
