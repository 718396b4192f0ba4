"""vb.mi on explicit score matrices: formulas against direct NumPy loops, identities
between bounds, orientation, validation, jit / vmap and gradients."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from vbounds import mi

N = 7


def random_scores(seed, n=N, scale=2.0):
    return np.random.default_rng(seed).normal(0.0, scale, (n, n))


def offdiag(s):
    n = len(s)
    return np.array([s[i, j] for i in range(n) for j in range(n) if i != j])


# --- direct NumPy definitions (float64, loops) ---------------------------------------


def np_infonce(s):
    n = len(s)
    return np.mean([s[i, i] - logsumexp(s[i]) for i in range(n)]) + math.log(n)


def np_nwj(s):
    return np.mean(np.diag(s)) - math.exp(-1) * np.mean(np.exp(offdiag(s)))


def np_tuba(s, log_a):
    t = s - log_a[None, :]
    return 1 + np.mean(np.diag(t)) - np.mean(np.exp(offdiag(t)))


def np_dv(s):
    return np.mean(np.diag(s)) - math.log(np.mean(np.exp(offdiag(s))))


def np_smile(s, tau):
    return np.mean(np.diag(s)) - math.log(np.mean(np.exp(np.clip(offdiag(s), -tau, tau))))


def np_js(s):
    log_sig = -np.log1p(np.exp(-np.diag(s)))
    return np.mean(log_sig) - np.mean(np.log1p(np.exp(offdiag(s))))


def np_interpolated(s, log_a, alpha):
    """Poole et al.'s I_alpha with K = N - 1, written from its definition."""
    n = len(s)

    def partition(j, left_out):
        rows = [k for k in range(n) if k != left_out]
        m = np.mean(np.exp(s[rows, j]))
        return alpha * m + (1 - alpha) * math.exp(log_a[j])

    joint = [s[j, j] - math.log(partition(j, l)) for j in range(n) for l in range(n) if l != j]
    marginal = [
        math.exp(s[i, j]) / partition(j, left_out=j) for j in range(n) for i in range(n) if i != j
    ]
    return 1 + np.mean(joint) - np.mean(marginal)


def np_conditional_infonce(s, conditions=None, log_weights=None):
    n = len(s)
    values = []
    for i in range(n):
        w = np.ones(n) if log_weights is None else np.exp(log_weights[i])
        if conditions is not None:
            w = w * (conditions == conditions[i])
        w = w / w.sum()
        values.append(s[i, i] - math.log(np.sum(w * np.exp(s[i]))))
    return np.mean(values)


# --- formulas -------------------------------------------------------------------------


@jax.jit
def all_score_bounds(s, log_a):
    return (
        mi.infonce(s),
        mi.nwj(s),
        mi.tuba(s, log_a),
        mi.dv(s),
        mi.smile(s, 1.5),
        mi.js(s),
        mi.js_mi(s),
        mi.interpolated(s, log_a, alpha=0.3),
        mi.interpolated(s, log_a, alpha=1.0),
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_formulas_match_numpy(seed):
    s = random_scores(seed)
    log_a = np.random.default_rng(seed + 10).normal(size=N)
    want = (
        np_infonce(s),
        np_nwj(s),
        np_tuba(s, log_a),
        np_dv(s),
        np_smile(s, 1.5),
        np_js(s),
        np_nwj(s + 1.0),
        np_interpolated(s, log_a, 0.3),
        np_interpolated(s, log_a, 1.0),
    )
    np.testing.assert_allclose(all_score_bounds(s, log_a), want, rtol=2e-5, atol=2e-5)


def test_named_special_cases():
    s = random_scores(2)
    log_a = np.linspace(-1.0, 1.0, N)

    @jax.jit
    def pairs(s, log_a):
        return (
            (mi.tuba(s, 1.0), mi.nwj(s)),
            (mi.smile(s, 1e6), mi.dv(s)),
            # Small alpha approaches TUBA with the same baseline.
            (mi.interpolated(s, log_a, alpha=1e-6), mi.tuba(s, log_a)),
        )

    for got, want in pairs(s, log_a):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_interpolated_at_one_is_leave_one_out_infonce_over_columns():
    s = random_scores(3)
    # alpha = 1: for each left-out pair l, InfoNCE of the other N - 1 pairs, normalised
    # over x for each y (the transposed matrix), averaged over l.
    subsets = np.stack([np.delete(np.delete(s, l, 0), l, 1).T for l in range(N)])
    want = jnp.mean(jax.jit(jax.vmap(mi.infonce))(subsets))
    np.testing.assert_allclose(jax.jit(mi.interpolated)(s, 0.0, alpha=1.0), want, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.05, 0.5, 1.0])
def test_interpolated_cap(alpha):
    # Perfectly separating scores with a baseline between the joint and marginal partitions
    # drive I_alpha to its cap 1 + log(N - 1) - log(alpha) when alpha < 1; at alpha = 1 the
    # marginal term is exactly 1 and the value is InfoNCE's cap log(N - 1).
    s = 40.0 * np.eye(N) - 40.0
    cap = 1 + math.log(N - 1) - math.log(alpha)
    value = jax.jit(mi.interpolated)(s, -20.0, alpha=alpha)
    assert value <= cap + 1e-5
    np.testing.assert_allclose(value, cap if alpha < 1 else math.log(N - 1), rtol=1e-4)


def test_interpolated_stable_with_a_dominant_entry():
    s = random_scores(4)
    s[2, 5] = 3e3  # dominates column 5: the leave-one-out partition must drop it exactly.
    log_a = np.zeros(N)
    value, grad = jax.jit(jax.value_and_grad(lambda s, a: mi.interpolated(s, a, alpha=0.7)))(
        jnp.asarray(s), log_a
    )
    # exp(3e3) overflows float64 too: compare against a log-space loop.
    joint, marginal = [], []
    for j in range(N):
        for l in range(N):
            if l == j:
                continue
            rows = [k for k in range(N) if k != l]
            lp = np.logaddexp(
                math.log(0.7) + logsumexp(s[rows, j]) - math.log(N - 1), math.log(0.3)
            )
            joint.append(s[j, j] - lp)
        rows = [k for k in range(N) if k != j]
        lp = np.logaddexp(math.log(0.7) + logsumexp(s[rows, j]) - math.log(N - 1), math.log(0.3))
        marginal += [s[i, j] - lp for i in range(N) if i != j]
    want = 1 + np.mean(joint) - np.exp(logsumexp(marginal) - math.log(N * (N - 1)))
    np.testing.assert_allclose(value, want, rtol=1e-4)
    assert np.all(np.isfinite(grad))


def test_conditional_infonce_formulas_and_identities():
    rng = np.random.default_rng(5)
    n = 12
    s = rng.normal(0, 2, (n, n))
    c = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1])
    lw = rng.normal(size=(n, n))
    row_const = np.repeat(rng.normal(size=(n, 1)), n, axis=1)
    groups = [np.flatnonzero(c == g) for g in range(3)]

    @jax.jit
    def values(s, c, lw, row_const):
        # Hard conditions: the size-weighted mean of InfoNCE within each condition.
        within = sum(len(g) / n * mi.infonce(s[np.ix_(g, g)]) for g in groups)
        return (
            mi.conditional_infonce(s, c),
            mi.conditional_infonce(s, log_weights=lw),
            mi.conditional_infonce(s, c, log_weights=lw),
            within,
            # Uniform weights (any per-row constant) give InfoNCE.
            mi.conditional_infonce(s, log_weights=row_const),
            mi.infonce(s),
        )

    hard, weighted, both, within, uniform, infonce = values(s, c, lw, row_const)
    np.testing.assert_allclose(hard, np_conditional_infonce(s, c), rtol=1e-5)
    np.testing.assert_allclose(weighted, np_conditional_infonce(s, None, lw), rtol=1e-5)
    np.testing.assert_allclose(both, np_conditional_infonce(s, c, lw), rtol=1e-5)
    np.testing.assert_allclose(hard, within, rtol=1e-5)
    np.testing.assert_allclose(uniform, infonce, rtol=1e-5)


def test_club_formulas():
    rng = np.random.default_rng(6)
    m = rng.normal(size=(N, N))
    np.testing.assert_allclose(mi.club(m), np.mean(np.diag(m)) - np.mean(offdiag(m)), 1e-5)
    shift = np.roll(np.arange(N), -1)
    neg = m[np.arange(N), shift]
    np.testing.assert_allclose(mi.club_sampled(np.diag(m), neg), np.mean(np.diag(m) - neg), 1e-5)


def test_barber_agakov_vib_kl_rate_formulas():
    rng = np.random.default_rng(7)
    log_q = rng.normal(size=10)
    np.testing.assert_allclose(mi.barber_agakov(log_q, 2.5), 2.5 + log_q.mean(), rtol=1e-6)
    ll, kl = rng.normal(size=(3, 4)), rng.uniform(size=(3, 4))
    np.testing.assert_allclose(mi.vib_loss(ll, kl, beta=0.1), 0.1 * kl - ll, rtol=1e-6)
    np.testing.assert_allclose(mi.kl_rate(kl), kl.mean(0), rtol=1e-6)


def test_classifier_js_formulas_and_range():
    rng = np.random.default_rng(8)
    real = np.log(rng.uniform(0.5, 1.0, 50))
    gen = np.log(rng.uniform(0.5, 1.0, 30))
    nats = math.log(2) + 0.5 * real.mean() + 0.5 * gen.mean()
    assert 0 < nats < math.log(2)
    np.testing.assert_allclose(mi.classifier_js_divergence(real, gen), nats, rtol=1e-5)
    bits = mi.classifier_js_divergence(real, gen, unit="bits")
    np.testing.assert_allclose(bits, nats / math.log(2), rtol=1e-5)
    np.testing.assert_allclose(mi.classifier_js_distance(real, gen), math.sqrt(bits), rtol=1e-5)
    # A chance-level classifier: exactly 0; a confidently wrong one is clipped to 0.
    half = np.full(5, math.log(0.5))
    assert mi.classifier_js_divergence(half, half) == 0.0
    wrong = np.full(5, math.log(0.1))
    assert mi.classifier_js_divergence(wrong, wrong) == 0.0
    assert mi.classifier_js_distance(wrong, wrong) == 0.0
    # A perfect classifier reaches the top of the range.
    perfect = np.zeros(5)
    np.testing.assert_allclose(mi.classifier_js_divergence(perfect, perfect), math.log(2))
    np.testing.assert_allclose(mi.classifier_js_distance(perfect, perfect), 1.0, rtol=1e-6)
    g = jax.grad(mi.classifier_js_distance)(jnp.asarray(wrong), jnp.asarray(wrong))
    assert np.all(np.isfinite(g))


def test_classifier_js_rejects_positive_log_probabilities():
    # Reported: the bound exceeded its ceiling log 2. Only inputs above 0 (not
    # log-probabilities) can do that: log 2 + 0.5 mean(log D) + 0.5 mean(log(1 - D)) <= log 2.
    real = np.array([0.7, -0.1, -0.2])
    gen = np.array([-0.1, -0.3])
    with pytest.raises(ValueError, match="log_prob_real"):
        mi.classifier_js_divergence(real, gen)
    with pytest.raises(ValueError, match="log_prob_generated"):
        mi.classifier_js_distance(gen, real)
    jitted = jax.jit(
        lambda r, g: (mi.classifier_js_divergence(r, g), mi.classifier_js_distance(r, g))
    )
    assert all(np.isnan(v) for v in jitted(real, gen))
    valid = jitted(np.log([0.9, 0.8, 1.0]), np.log([0.7, 1.0]))
    expected = math.log(2) + 0.5 * np.log([0.9, 0.8, 1.0]).mean() + 0.5 * np.log([0.7, 1.0]).mean()
    np.testing.assert_allclose(valid[0], expected, rtol=1e-6)
    np.testing.assert_allclose(valid[1], math.sqrt(expected / math.log(2)), rtol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_raise_naming_the_argument(bad):
    scores = random_scores(30, n=3)
    scores[1, 2] = bad
    word = "NaN" if np.isnan(bad) else r"\+inf"
    for fn in (mi.infonce, mi.nwj, mi.dv, mi.js, mi.js_mi, lambda s: mi.smile(s, 5.0)):
        with pytest.raises(ValueError, match=f"`scores` contains {word}"):
            fn(scores)
    with pytest.raises(ValueError, match=f"`log_baseline` contains {word}"):
        mi.tuba(random_scores(31, n=3), np.array([0.0, bad, 0.0]))
    with pytest.raises(ValueError, match=f"`log_q_marginal` contains {word}"):
        mi.club_sampled(np.zeros(3), np.array([0.0, bad, 0.0]))
    # -inf scores (zero density ratios) remain valid input
    ok = random_scores(32, n=3)
    ok[0, 1] = -np.inf
    assert np.isfinite(mi.infonce(ok))


# --- orientation ----------------------------------------------------------------------


def test_infonce_orientation_row_constants_cancel():
    s = random_scores(9)
    rows = np.random.default_rng(9).normal(0, 5, (N, 1))
    np.testing.assert_allclose(mi.infonce(s + rows), mi.infonce(s), rtol=1e-5, atol=1e-5)
    # Column constants do not cancel: InfoNCE normalises over y_j for each x_i.
    assert abs(mi.infonce(s + rows.T) - mi.infonce(s)) > 1e-2
    # Each row's term is log softmax over the candidates y_j at the positive.
    want = np.mean(np.diag(jax.nn.log_softmax(s, axis=1))) + math.log(N)
    np.testing.assert_allclose(mi.infonce(s), want, rtol=1e-5)


def test_infonce_never_above_log_n():
    s = 50.0 * np.eye(N)
    assert mi.infonce(s) <= math.log(N)
    np.testing.assert_allclose(mi.infonce(s), math.log(N), rtol=1e-5)


def test_marginal_terms_ignore_the_diagonal():
    s = random_scores(10)
    t = s.copy()
    t[np.diag_indices(N)] += 100.0  # only the joint terms may see this
    fns = {
        "nwj": mi.nwj,
        "dv": mi.dv,
        "smile": lambda s: mi.smile(s, 1.0),
        "club": mi.club,
        "js": mi.js,
    }
    diffs = jax.jit(lambda s, t: {k: f(t) - f(s) for k, f in fns.items()})(s, t)
    for name in ("nwj", "dv", "smile", "club"):
        np.testing.assert_allclose(diffs[name], 100.0, rtol=1e-5, err_msg=name)
    d = np.diag(s)
    want_js = np.mean(np.log1p(np.exp(-d)) - np.log1p(np.exp(-d - 100.0)))
    np.testing.assert_allclose(diffs["js"], want_js, rtol=1e-4)


# --- MINE -----------------------------------------------------------------------------


def test_mine_value_and_moving_average_gradient():
    decay = 0.9
    s1, s2 = random_scores(11, scale=1.0), random_scores(12, scale=1.0)

    @jax.jit
    def step(s, state):
        (value, state), grad = jax.value_and_grad(
            lambda s: mi.mine(s, state, decay=decay), has_aux=True
        )(s)
        return value, grad, state, mi.dv(s), jax.grad(mi.dv)(s)

    v1, g1, state1, dv1, dv_grad1 = step(s1, mi.mine_init())
    np.testing.assert_allclose(v1, dv1, rtol=1e-6)
    # First step: the bias-corrected average is this batch's mean, so the DV gradient.
    np.testing.assert_allclose(g1, dv_grad1, rtol=1e-5, atol=1e-7)
    v2, g2, state2, dv2, _ = step(s2, state1)
    np.testing.assert_allclose(v2, dv2, rtol=1e-6)
    np.testing.assert_allclose(dv2, np_dv(s2), rtol=1e-5)
    z1, z2 = np.mean(np.exp(offdiag(s1))), np.mean(np.exp(offdiag(s2)))
    z_hat = (decay * (1 - decay) * z1 + (1 - decay) * z2) / (1 - decay**2)
    want = np.eye(N) / N - (1 - np.eye(N)) * np.exp(s2) / (N * (N - 1)) / z_hat
    np.testing.assert_allclose(g2, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.exp(state2.log_ema), (1 - decay) * (decay * z1 + z2), 1e-5)
    assert int(state2.count) == 2


def test_mine_under_jit_in_a_scan():
    stack = jnp.asarray(np.stack([random_scores(k, scale=1.0) for k in range(5)]))

    @jax.jit
    def run(stack):
        def step(state, s):
            value, state = mi.mine(s, state, decay=0.5)
            return state, value

        return jax.lax.scan(step, mi.mine_init(), stack)

    state, values = run(stack)
    np.testing.assert_allclose(values, jax.vmap(mi.dv)(stack), rtol=1e-5)
    assert int(state.count) == 5


# --- jit, vmap, gradients ---------------------------------------------------------------

SCORE_FNS = {
    "infonce": mi.infonce,
    "nwj": mi.nwj,
    "tuba": lambda s: mi.tuba(s, jnp.linspace(-0.5, 0.5, s.shape[0])),
    "dv": mi.dv,
    "smile": lambda s: mi.smile(s, 2.0),
    "js": mi.js,
    "js_mi": mi.js_mi,
    "interpolated": lambda s: mi.interpolated(s, jnp.zeros(s.shape[0]), alpha=0.5),
    "conditional": lambda s: mi.conditional_infonce(s, jnp.arange(s.shape[0]) % 2),
    "club": mi.club,
}


@pytest.mark.parametrize("name", sorted(SCORE_FNS))
def test_jit_vmap_and_finite_gradients(name):
    f = SCORE_FNS[name]
    stack = jnp.asarray(np.stack([random_scores(k) for k in range(3)]), jnp.float32)
    batched, grads = jax.jit(jax.vmap(jax.value_and_grad(f)))(stack)
    single = jax.jit(f)
    np.testing.assert_allclose(batched, [single(s) for s in stack], rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(grads))


@pytest.mark.parametrize("name", ["infonce", "dv", "smile", "js", "conditional"])
def test_large_scores_stay_finite(name):
    # Log-space everywhere: critic values of magnitude 1e4 keep values and gradients finite.
    s = jnp.asarray(random_scores(13, scale=1e4), jnp.float32)
    value, grad = jax.jit(jax.value_and_grad(SCORE_FNS[name]))(s)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad))


def test_vector_bounds_jit_and_grad():
    x = np.linspace(-3.0, -0.1, 6)
    fns = [
        lambda v: mi.barber_agakov(v, 1.0),
        lambda v: mi.club_sampled(v, v[::-1]),
        lambda v: mi.kl_rate(-v),
        lambda v: jnp.sum(mi.vib_loss(v, -v, beta=0.5)),
        lambda v: mi.classifier_js_divergence(v, v[:3]),
        lambda v: mi.classifier_js_distance(v / 10, v[:3] / 10),
    ]
    js_nats = max(0.0, math.log(2) + 0.5 * x.mean() + 0.5 * x[:3].mean())
    js_bits = max(0.0, math.log(2) + 0.05 * x.mean() + 0.05 * x[:3].mean()) / math.log(2)
    want = [1 + x.mean(), 0.0, -x.mean(), -1.5 * x.sum(), js_nats, math.sqrt(js_bits)]
    results = jax.jit(lambda v: [jax.value_and_grad(f)(v) for f in fns])(jnp.asarray(x))
    for (value, grad), w in zip(results, want, strict=True):
        np.testing.assert_allclose(value, w, rtol=1e-5, atol=1e-6)
        assert np.all(np.isfinite(grad))


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mi.infonce(np.zeros((3, 4))), "scores"),
        (lambda: mi.dv(np.zeros((2, 3, 3))), "scores"),
        (lambda: mi.nwj(np.zeros((1, 1))), "N >= 2"),
        (lambda: mi.smile(np.zeros((3, 3)), -1.0), "clip"),
        (lambda: mi.tuba(np.zeros((3, 3)), np.zeros(4)), "log_baseline"),
        (lambda: mi.interpolated(np.zeros((3, 3)), 0.0, alpha=0.0), "alpha"),
        (lambda: mi.interpolated(np.zeros((3, 3)), 0.0, alpha=1.5), "alpha"),
        (lambda: mi.mine(np.zeros((3, 3)), mi.mine_init(), decay=1.0), "decay"),
        (lambda: mi.conditional_infonce(np.zeros((3, 3)), np.zeros(3)), "conditions"),
        (lambda: mi.conditional_infonce(np.zeros((3, 3)), np.zeros(2, int)), "conditions"),
        (lambda: mi.conditional_infonce(np.zeros((3, 3))), "conditions"),
        (lambda: mi.conditional_infonce(np.zeros((3, 3)), log_weights=np.zeros((2, 2))), "log_w"),
        (lambda: mi.club(np.zeros(3)), "log_q_y_given_x_matrix"),
        (lambda: mi.club_sampled(np.zeros(3), np.zeros(4)), "log_q_marginal"),
        (lambda: mi.barber_agakov(np.zeros(3), np.zeros(2)), "entropy_x"),
        (lambda: mi.vib_loss(np.zeros(3), np.zeros(3), beta=-0.1), "beta"),
        (lambda: mi.vib_loss(np.zeros(3), np.zeros(4), beta=0.1), "kl"),
        (lambda: mi.classifier_js_divergence(np.zeros(3), np.zeros(3), unit="dits"), "unit"),
        (lambda: mi.classifier_js_divergence(np.zeros((3, 2)), np.zeros(3)), "log_prob_real"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_validation_happens_at_trace_time():
    with pytest.raises(ValueError, match="scores"):
        jax.jit(mi.infonce)(jnp.zeros((3, 4)))
    with pytest.raises(TypeError, match="state"):
        mi.mine(np.zeros((3, 3)), (0.0, 0))


# --- SMILE's training surrogate -------------------------------------------------------


def test_smile_surrogate_value_is_smile_gradient_is_js():
    s = random_scores(40)
    tau = 1.5
    value, grad = jax.jit(jax.value_and_grad(lambda t: mi.smile_surrogate(t, clip=tau)))(s)
    np.testing.assert_allclose(value, np_smile(s, tau), rtol=1e-5)
    # The JS objective's gradient in closed form: sigmoid(-s_ii) / N on the diagonal,
    # -sigmoid(s_ij) / (N (N - 1)) off it.
    sigmoid = 1.0 / (1.0 + np.exp(-s))
    expected = np.where(np.eye(N, dtype=bool), (1.0 - sigmoid) / N, -sigmoid / (N * (N - 1)))
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_smile_surrogate_validates_clip_and_scores():
    with pytest.raises(ValueError, match="clip"):
        mi.smile_surrogate(np.zeros((3, 3)), clip=-1.0)
    with pytest.raises(ValueError, match="scores"):
        mi.smile_surrogate(np.zeros((3, 4)), clip=1.0)
