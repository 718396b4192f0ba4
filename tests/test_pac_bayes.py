"""PAC-Bayes bounds against exact answers: float64 references, identities, binomial tails."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

pb = vb.pac_bayes

# sup{p : kl(q || p) <= c}, by an independent float64 bisection (200 halvings of [q, 1] with
# the textbook kl formula, so to about 1e-16), stated here rather than recomputed.
KL_INVERSE_TABLE = [
    (0.1, 0.05, 0.2200786011069245),
    (0.0, 0.1, 0.09516258196404041),  # = 1 - exp(-0.1)
    (0.5, 0.01, 0.5703585934574531),
    (0.02, 0.3, 0.31803924499664055),
    (0.9, 0.005, 0.9273277787697494),
]


def _kl64(q, p):
    """The textbook binary KL in float64 NumPy, 0 log 0 = 0."""
    q, p = np.float64(q), np.float64(p)
    first = 0.0 if q == 0 else q * np.log(q / p)
    second = 0.0 if q == 1 else (1 - q) * np.log((1 - q) / (1 - p))
    return first + second


def test_kl_inverse_matches_a_float64_table():
    q, c, expected = (np.array(col) for col in zip(*KL_INVERSE_TABLE))
    with jax.enable_x64(True):
        got = pb.kl_inverse(jnp.asarray(q, jnp.float64), jnp.asarray(c, jnp.float64))
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-13)
        # never below the exact value: the bound stays conservative
        assert np.all(np.asarray(got) >= expected * (1 - 1e-15))
    got32 = pb.kl_inverse(jnp.asarray(q, jnp.float32), jnp.asarray(c, jnp.float32))
    np.testing.assert_allclose(np.asarray(got32), expected, rtol=2e-6)


def test_kl_inverse_uses_up_the_budget_and_saturates_at_the_boundary():
    q = np.array([0.0, 0.01, 0.2, 0.5, 0.77, 0.99])
    c = np.array([1e-4, 0.03, 0.5, 2.0, 0.1, 1e-3])
    with jax.enable_x64(True):
        p = np.asarray(pb.kl_inverse(q, c))
        kl = np.asarray(pb.binary_kl(q, p))
    np.testing.assert_allclose(kl, c, rtol=1e-10)
    assert np.all((p > q) & (p < 1))
    # boundary: no room above q, or a budget no p < 1 can exhaust in float32
    edge = pb.kl_inverse(jnp.array([1.0, 0.3, 0.5, 0.0]), jnp.array([0.4, jnp.inf, 60.0, 0.0]))
    np.testing.assert_array_equal(np.asarray(edge), [1.0, 1.0, 1.0, 0.0])
    assert float(pb.kl_inverse(0.3, 0.0)) == float(np.float32(0.3))


def test_binary_kl_matches_the_textbook_formula_and_stays_accurate_near_q():
    pairs = [(0.1, 0.2), (0.0, 0.4), (1.0, 0.7), (0.35, 0.0002), (0.5, 0.5), (0.3, 0.3001)]
    with jax.enable_x64(True):
        got = np.asarray(pb.binary_kl(*map(np.array, zip(*pairs))))
    np.testing.assert_allclose(got, [_kl64(q, p) for q, p in pairs], rtol=1e-9, atol=1e-300)
    # float32 near p = q: the textbook form cancels to ~1e-8 absolute; this one keeps
    # the relative accuracy (reference: the float64 value)
    q, p = np.float32(0.5), np.float32(0.5) + np.float32(2.0**-13)
    reference = _kl64(np.float64(q), np.float64(p))
    assert float(pb.binary_kl(q, p)) == pytest.approx(reference, rel=1e-5)
    # impossible outcome: infinite divergence, not NaN
    assert float(pb.binary_kl(0.2, 1.0)) == math.inf
    assert float(pb.binary_kl(0.2, 0.0)) == math.inf


def _implicit_gradient(q, c):
    """dp/dq and dp/dc of p = kl^-1(q, c), differentiating kl(q || p) = c by hand."""
    p = KL_INVERSE_EXACT[(q, c)]
    dkl_dp = (p - q) / (p * (1 - p))
    dkl_dq = math.log(q / p) - math.log((1 - q) / (1 - p))
    return -dkl_dq / dkl_dp, 1.0 / dkl_dp


KL_INVERSE_EXACT = {(q, c): p for q, c, p in KL_INVERSE_TABLE}


def test_kl_inverse_gradient_matches_finite_differences_and_the_implicit_formula():
    grad = jax.jit(jax.grad(pb.kl_inverse, argnums=(0, 1)))
    h = 1e-6
    for q, c, _ in KL_INVERSE_TABLE:
        if q == 0.0:
            continue  # dp/dq is +inf there (checked below)
        with jax.enable_x64(True):
            dq, dc = (float(g) for g in grad(jnp.float64(q), jnp.float64(c)))

            def f(a, b):
                return float(pb.kl_inverse(jnp.float64(a), jnp.float64(b)))

            fd_q = (f(q + h, c) - f(q - h, c)) / (2 * h)
            fd_c = (f(q, c + h) - f(q, c - h)) / (2 * h)
        want_q, want_c = _implicit_gradient(q, c)
        assert dq == pytest.approx(want_q, rel=1e-9)
        assert dc == pytest.approx(want_c, rel=1e-9)
        assert dq == pytest.approx(fd_q, rel=1e-6)
        assert dc == pytest.approx(fd_c, rel=1e-6)


def test_kl_inverse_gradient_at_the_edges_and_under_vmap():
    dq, dc = jax.grad(pb.kl_inverse, argnums=(0, 1))(0.0, 0.1)
    # p = 1 - exp(-c) at q = 0: dp/dc = exp(-c); dp/dq = +inf (kl's q log q)
    assert float(dc) == pytest.approx(math.exp(-0.1), rel=1e-5)
    assert float(dq) == math.inf
    # differentiating c alone at q = 0 ignores the infinite dp/dq (no 0 * inf = NaN)
    assert np.isfinite(float(jax.grad(lambda c: pb.kl_inverse(0.0, c))(0.1)))
    # at c = 0 the inverse is q: dp/dq = 1
    assert float(jax.grad(pb.kl_inverse)(0.3, 0.0)) == 1.0
    # at the boundary p = 1 nothing moves
    assert float(jax.grad(pb.kl_inverse, argnums=1)(0.5, 60.0)) == 0.0
    q = jnp.array([0.05, 0.2, 0.6])
    c = jnp.array([0.02, 0.1, 0.3])
    per_example = jax.jit(jax.vmap(jax.grad(pb.kl_inverse, argnums=1)))(q, c)
    summed = jax.grad(lambda cc: jnp.sum(pb.kl_inverse(q, cc)))(c)
    np.testing.assert_allclose(per_example, summed, rtol=1e-6)
    assert np.all(np.asarray(per_example) > 0)


def test_classical_bounds_match_their_formulas_in_float64():
    emp = np.array([0.0, 0.03, 0.1, 0.4])
    kl = np.array([0.0, 2.0, 5.0, 30.0])
    n, delta, lam = 500, 0.05, 1.5
    extra = math.log(2 * math.sqrt(n) / delta)
    with jax.enable_x64(True):
        mc = np.asarray(pb.mcallester(emp, kl, n, delta))
        ma = np.asarray(pb.maurer(emp, kl, n, delta))
        qu = np.asarray(pb.quadratic(emp, kl, n, delta))
        ca = np.asarray(pb.catoni(emp, kl, n, delta, lam))
        sg = np.asarray(pb.sub_gamma(emp, kl, n, delta, 40.0, variance=0.25, scale=0.2))
    np.testing.assert_allclose(mc, emp + np.sqrt((kl + extra) / (2 * n)), rtol=1e-12)
    np.testing.assert_allclose(np.asarray([_kl64(e, m) for e, m in zip(emp, ma)]), (kl + extra) / n)
    eps = (kl + extra) / n
    np.testing.assert_allclose(qu, (np.sqrt(emp + eps / 2) + np.sqrt(eps / 2)) ** 2, rtol=1e-12)
    catoni = (1 - np.exp(-lam * emp - (kl + math.log(1 / delta)) / n)) / (1 - np.exp(-lam))
    np.testing.assert_allclose(ca, catoni, rtol=1e-12)
    sub = emp + (kl + math.log(1 / delta)) / 40 + 40 * 0.25 / (2 * n * (1 - 0.2 * 40 / n))
    np.testing.assert_allclose(sg, sub, rtol=1e-12)


def test_maurer_is_never_above_its_pinsker_relaxation():
    emp, kl = np.meshgrid(np.linspace(0.0, 0.9, 19), np.array([0.0, 0.5, 5.0, 50.0]))
    maurer = np.asarray(pb.maurer(emp, kl, 2000, 0.01))
    mcallester = np.asarray(pb.mcallester(emp, kl, 2000, 0.01))
    quadratic = np.asarray(pb.quadratic(emp, kl, 2000, 0.01))
    # kl(q || p) >= 2 (p - q)^2, so the kl inverse is below q + sqrt(c / 2); the refined
    # kl(q || p) >= (p - q)^2 / (2 p) puts it below the quadratic bound
    assert np.all(maurer <= mcallester + 1e-6)
    assert np.all(maurer <= quadratic + 1e-6)
    # the refined form wins at small empirical risk
    assert np.all(quadratic[emp < 0.1] < mcallester[emp < 0.1])
    assert np.all(maurer >= emp)
    # strict where the bound is not trivial
    assert np.all(maurer[emp > 0.05] < mcallester[emp > 0.05])


def _log_multinomial(n, *counts):
    rest = n - sum(counts)
    return math.lgamma(n + 1) - sum(math.lgamma(c + 1) for c in (*counts, rest))


def _binomial_pmf(n):
    k = np.arange(n + 1)
    return k, np.array([_log_multinomial(n, i) for i in k])


def test_bounds_hold_with_probability_at_least_one_minus_delta():
    """One hypothesis (KL = 0), n Bernoulli(R) losses: the exact probability, summed over every
    outcome, that a bound falls below R is at most delta."""
    n, delta = 60, 0.1
    k, log_comb = _binomial_pmf(n)
    emp = k / n
    checks = {
        "maurer": pb.maurer(emp, 0.0, n, delta),
        "mcallester": pb.mcallester(emp, 0.0, n, delta),
        "quadratic": pb.quadratic(emp, 0.0, n, delta),
        "catoni": pb.catoni(emp, 0.0, n, delta, 2.0),
        "hoeffding": pb.sub_gamma(emp, 0.0, n, delta, 15.0, variance=0.25),
    }
    worst = {}
    for risk in np.linspace(0.02, 0.98, 49):
        log_pmf = log_comb + k * math.log(risk) + (n - k) * math.log1p(-risk)
        pmf = np.exp(log_pmf)
        for name, bound in checks.items():
            violation = float(np.sum(pmf[np.asarray(bound) < risk]))
            worst[name] = max(worst.get(name, 0.0), violation)
        # Bernstein: the variance R (1 - R) of a Bernoulli loss is its exact variance factor
        bern = pb.sub_gamma(emp, 0.0, n, delta, 20.0, variance=risk * (1 - risk), scale=1 / 3)
        violation = float(np.sum(pmf[np.asarray(bern) < risk]))
        worst["bernstein"] = max(worst.get("bernstein", 0.0), violation)
    assert all(v <= delta for v in worst.values()), worst


def test_selective_risk_is_a_union_of_two_kl_bounds_and_holds_exactly():
    n, delta = 40, 0.2
    emp_sel, emp_cov = 0.1, 0.75
    joint = pb.maurer(emp_sel * emp_cov, 0.0, n, 0.3 * delta)
    coverage = 1 - pb.maurer(1 - emp_cov, 0.0, n, 0.7 * delta)
    got = pb.selective_risk(emp_sel, emp_cov, 0.0, n, delta, risk_share=0.3)
    assert float(got) == pytest.approx(float(joint / coverage), rel=1e-6)
    assert float(pb.selective_risk(0.5, 0.01, 0.0, n, delta)) == 1.0  # coverage bound hits 0
    # exact violation probability: each example is (accept, error) w.p. a, (accept, correct)
    # w.p. b, rejected otherwise; enumerate the trinomial counts
    k1, k2 = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    ok = k1 + k2 <= n
    k1, k2 = k1[ok], k2[ok]
    accepted = k1 + k2
    cov_hat = accepted / n
    sel_hat = np.where(accepted > 0, k1 / np.maximum(accepted, 1), 0.0)
    bound = np.asarray(pb.selective_risk(sel_hat, cov_hat, 0.0, n, delta))
    log_multi = np.array([_log_multinomial(n, a, b) for a, b in zip(k1, k2)])
    worst = 0.0
    for a, b in [(0.05, 0.85), (0.1, 0.6), (0.02, 0.5), (0.2, 0.7)]:
        rejected = n - accepted
        log_p = log_multi + k1 * math.log(a) + k2 * math.log(b) + rejected * math.log(1 - a - b)
        worst = max(worst, float(np.sum(np.exp(log_p)[bound < a / (a + b)])))
    assert worst <= delta, worst


def test_a_bound_trains_through_kl_inverse():
    """d maurer / d kl and d maurer / d emp_risk are positive and finite (a usable loss)."""
    grads = jax.jit(jax.grad(lambda e, k: pb.maurer(e, k, 1000, 0.05), argnums=(0, 1)))(0.2, 3.0)
    assert all(np.isfinite(float(g)) and float(g) > 0 for g in grads)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: pb.kl_inverse(1.5, 0.1), "`q`"),
        (lambda: pb.kl_inverse(0.1, -0.1), "`c`"),
        (lambda: pb.binary_kl(0.1, jnp.nan), "`p`"),
        (lambda: pb.maurer(0.1, 1.0, 100, 0.0), "`delta`"),
        (lambda: pb.mcallester(-0.1, 1.0, 100, 0.1), "`emp_risk`"),
        (lambda: pb.mcallester(0.1, -1.0, 100, 0.1), "`kl`"),
        (lambda: pb.catoni(0.1, 1.0, 100, 0.1, 0.0), "`lam`"),
        (lambda: pb.sub_gamma(0.1, 1.0, 100, 0.1, 400.0, variance=0.1, scale=0.5), "`lam`"),
        (lambda: pb.selective_risk(0.1, 1.2, 1.0, 100, 0.1), "`emp_coverage`"),
        (lambda: pb.selective_risk(0.1, 0.5, 1.0, 100, 0.1, risk_share=1.0), "`risk_share`"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_sample_size_must_be_a_positive_int():
    with pytest.raises(ValueError, match="`n`"):
        pb.maurer(0.1, 1.0, 0, 0.1)
    with pytest.raises(TypeError, match="`n`"):
        pb.mcallester(0.1, 1.0, 100.0, 0.1)
