"""Discrete-state diffusion bounds against exact answers by enumeration.

With the exact ``q(x_0 | x_t)`` plugged into the mixture reverse step, the reverse chain is
the true reverse process, so ``E[-ELBO] = H(q_0) + KL(q_T || prior)`` (``q_T`` the marginal at
``T``): ``-ELBO(x_0) = -log q(x_0) + E[log q(x_T) / prior(x_T)]``. Expectations over
``x_0``, ``t`` and ``x_t`` are taken by enumeration over a small vocabulary.
"""

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

vd = vb.diffusion


def entropy(p):
    p = np.asarray(p, np.float64)
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def kl64(p, q):
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def log0(p):
    return jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)


def exact_logits_fn(q0, qbar):
    """logits of the exact q(x_0 | x_t) = q0(x_0) Q_bar_t[x_0, x_t] / q_t(x_t)."""
    log_q0 = log0(jnp.asarray(q0))

    def fn(x_t, t):
        column = qbar[t - 1][:, x_t]  # [V, *event]
        return log_q0 + log0(jnp.moveaxis(column, 0, -1))

    return fn


@partial(jax.jit, static_argnames="parameterization")
def _per_x0_neg_elbo(q0, transitions, prior, parameterization):
    qbar = vd.cumulative_transitions(transitions)
    num_steps, v = transitions.shape[0], transitions.shape[-1]
    logits_fn = exact_logits_fn(q0, qbar)
    classes = jnp.arange(v)

    def per_x0(x0):
        prior_term = vd.categorical_kl(qbar[-1][x0], prior)
        nll = jax.vmap(lambda x1: -jax.nn.log_softmax(logits_fn(x1, 1))[x0])(classes)
        recon = jnp.sum(jnp.where(transitions[0][x0] > 0, transitions[0][x0] * nll, 0.0))

        def at(t):
            def kl(xt):
                return vd.categorical_step_kl(
                    x0,
                    xt,
                    logits_fn(xt, t),
                    transitions[t - 1],
                    qbar[t - 2],
                    parameterization=parameterization,
                )

            return jnp.sum(qbar[t - 1][x0] * jax.vmap(kl)(classes))

        steps = jnp.arange(2, num_steps + 1)
        diffusion = jnp.sum(jax.vmap(at)(steps)) if num_steps > 1 else 0.0
        return prior_term + recon + diffusion

    return jax.vmap(per_x0)(classes)


def expected_neg_elbo(q0, transitions, prior, parameterization):
    """Exact E_{x_0}[-ELBO] of a single token, by enumeration of x_0, x_1, t and x_t."""
    values = _per_x0_neg_elbo(
        jnp.asarray(q0, jnp.float32),
        jnp.asarray(transitions, jnp.float32),
        jnp.asarray(prior, jnp.float32),
        parameterization,
    )
    support = np.asarray(q0) > 0
    return float(np.sum(np.asarray(q0)[support] * np.asarray(values, np.float64)[support]))


Q0_UNIFORM = np.array([0.5, 0.25, 0.15, 0.1])
Q0_ABSORB = np.array([0.6, 0.3, 0.1, 0.0])  # class 3 is the mask


def noise(kind, num_steps):
    if kind == "uniform":
        betas = jnp.full((num_steps,), 1.0 - 0.7 ** (1.0 / num_steps))  # not fully mixed
        return Q0_UNIFORM, vd.uniform_transitions(betas, 4), np.full(4, 0.25)
    if kind == "gaussian":
        betas = jnp.linspace(0.05, 0.5, num_steps)
        return Q0_UNIFORM, vd.gaussian_transitions(betas, 4), np.full(4, 0.25)
    trans = vd.absorbing_transitions(vd.absorbing_betas(num_steps), 4)
    return Q0_ABSORB, trans, np.array([0.0, 0.0, 0.0, 1.0])


def truth(q0, transitions, prior):
    q_t = np.asarray(q0, np.float64) @ np.asarray(vd.cumulative_transitions(transitions)[-1])
    return entropy(q0) + kl64(q_t, prior)


def test_categorical_kl_known_values():
    kl = vd.categorical_kl(jnp.array([0.1, 0.3, 0.3, 0.3]), jnp.array([0.2, 0.5, 0.1, 0.2]))
    assert float(kl) == pytest.approx(0.22866088, rel=1e-6)
    assert float(vd.categorical_kl(jnp.array([0.0, 1.0]), jnp.array([0.5, 0.5]))) == (
        pytest.approx(np.log(2.0))
    )
    assert float(vd.categorical_kl(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))) == np.inf
    grad = jax.grad(lambda p: vd.categorical_kl(p, jnp.array([0.5, 0.25, 0.25])))(
        jnp.array([0.0, 0.5, 0.5])
    )
    assert np.all(np.isfinite(grad))


BUILDERS = {
    "uniform": vd.uniform_transitions,
    "absorbing": vd.absorbing_transitions,
    "gaussian": vd.gaussian_transitions,
}
PRIORS = {"uniform": np.full(5, 0.2), "absorbing": np.eye(5)[4], "gaussian": np.full(5, 0.2)}


@jax.jit
def _built(varying, constant):
    return {
        name: (build(varying, 5), build(constant, 5), vd.cumulative_transitions(build(varying, 5)))
        for name, build in BUILDERS.items()
    }


def test_transition_matrices_under_jit():
    """Rows sum to one; Q_bar_t is the product (the matrix power for constant steps); the
    prior is stationary; q(x_T | x_0) reaches it."""
    varying = jnp.concatenate([jnp.linspace(0.05, 0.5, 29), jnp.ones(1)])
    constant = jnp.full((30,), 0.2)
    built = _built(varying, constant)
    for name, (trans, const, qbar) in built.items():
        trans, const = np.asarray(trans, np.float64), np.asarray(const, np.float64)
        np.testing.assert_allclose(trans.sum(-1), 1.0, atol=1e-6)
        assert np.all(trans >= 0)
        np.testing.assert_allclose(trans, np.asarray(BUILDERS[name](varying, 5)), atol=1e-7)
        product = np.eye(5)
        for t in range(30):
            product = product @ trans[t]
            np.testing.assert_allclose(qbar[t], product, atol=1e-5)
            np.testing.assert_allclose(PRIORS[name] @ trans[t], PRIORS[name], atol=1e-6)
        qbar_const = np.asarray(vd.cumulative_transitions(const))
        for t in (1, 7, 30):
            np.testing.assert_allclose(
                qbar_const[t - 1], np.linalg.matrix_power(const[0], t), atol=1e-5
            )
    # With beta_T = 1, q(x_T | x_0) is the stationary distribution itself.
    np.testing.assert_allclose(
        built["absorbing"][2][-1], np.tile(PRIORS["absorbing"], (5, 1)), atol=1e-6
    )
    np.testing.assert_allclose(built["uniform"][2][-1], 0.2, atol=1e-6)
    np.testing.assert_allclose(vd.absorbing_betas(4), [0.25, 1 / 3, 0.5, 1.0])
    np.testing.assert_allclose(
        jax.jit(lambda: vd.betas_from_alpha(lambda t: 1.0 - t, 4))(),
        [0.25, 1 / 3, 0.5, 1.0],
        rtol=1e-6,
    )


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_posterior_matches_path_enumeration(kind):
    """q(x_{t-1} | x_t, x_0) from explicit paths x_0 -> x_1 -> x_2 -> x_3 (float64)."""
    _, trans, _ = noise(kind, 3)
    qbar = vd.cumulative_transitions(trans)
    q = np.asarray(trans, np.float64)
    v = 4
    for x0 in range(v):
        joint = np.zeros((v, v, v))
        for x1, x2, x3 in itertools.product(range(v), repeat=3):
            joint[x1, x2, x3] = q[0][x0, x1] * q[1][x1, x2] * q[2][x2, x3]
        pairs = {2: joint.sum(2), 3: joint.sum(0)}  # (x_1, x_2) and (x_2, x_3)
        for t in (2, 3):
            for xt in range(v):
                expected = pairs[t][:, xt] / pairs[t][:, xt].sum()
                got = vd.categorical_posterior(x0, xt, trans[t - 1], qbar[t - 2])
                np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("kind", ["uniform", "absorbing", "gaussian"])
@pytest.mark.parametrize("num_steps", [1, 20])
def test_mixture_form_is_exact(kind, num_steps):
    q0, trans, prior = noise(kind, num_steps)
    value = expected_neg_elbo(q0, trans, prior, "mixture")
    assert value == pytest.approx(truth(q0, trans, prior), abs=2e-5)


def test_d3pm_form_exact_for_absorbing_not_for_uniform():
    q0, trans, prior = noise("absorbing", 10)
    assert expected_neg_elbo(q0, trans, prior, "d3pm") == pytest.approx(
        truth(q0, trans, prior), abs=2e-5
    )
    q0, trans, prior = noise("uniform", 10)
    gap = expected_neg_elbo(q0, trans, prior, "d3pm") - truth(q0, trans, prior)
    assert gap > 0.01
    # For absorbing noise the two reverse steps agree for any prediction without mask mass.
    _, trans, _ = noise("absorbing", 5)
    qbar = vd.cumulative_transitions(trans)
    logits = jax.random.normal(jax.random.key(0), (4, 4)).at[:, 3].set(-jnp.inf)

    @jax.jit
    def both(t):
        def at(xt):
            args = (xt, logits[xt], trans[t - 1], qbar[t - 2])
            return (
                vd.reverse_probs(*args),
                vd.reverse_probs(*args, parameterization="d3pm"),
            )

        return jax.vmap(at)(jnp.arange(4))

    for t in (2, 4):
        a, b = both(t)
        np.testing.assert_allclose(a, b, atol=1e-6)
    # ... and only then: with mass p_m on the mask they differ at a masked x_t.
    t, p_m = 3, 0.2
    probs = jnp.array([0.5, 0.2, 0.1, p_m])
    args = (jnp.array([3]), jnp.log(probs)[None], trans[t - 1], qbar[t - 2])
    mixture, d3pm = vd.reverse_probs(*args), vd.reverse_probs(*args, parameterization="d3pm")
    keep, beta = float(qbar[t - 2][0, 0]), float(trans[t - 1][0, 3])
    reach = beta * keep + 1.0 - keep
    np.testing.assert_allclose(mixture[0, :3], probs[:3] * beta * keep / reach, rtol=1e-5)
    np.testing.assert_allclose(
        d3pm[0, :3], probs[:3] * beta * keep / ((1 - p_m) * reach + p_m), rtol=1e-5
    )


def test_categorical_vlb_sampled_is_unbiased_and_finite_with_inf_logits():
    """Absorbing noise: exact logits hold -inf (the mask class, impossible x_0)."""
    q0, trans, prior = noise("absorbing", 8)
    qbar = vd.cumulative_transitions(trans)
    base = exact_logits_fn(q0, qbar)
    shift = jnp.array([0.3, -0.2, 0.1, 0.0])
    expected = 2 * expected_neg_elbo(q0, trans, prior, "mixture")
    n = 1 << 13
    x0 = jax.random.categorical(jax.random.key(1), log0(jnp.asarray(q0)), shape=(n, 2))
    keys = jax.random.split(jax.random.key(2), n)

    def one(theta, k, x):
        def fn(x_t, t):
            return base(x_t, t) + theta * shift

        return vd.categorical_vlb(k, x, fn, trans, prior).total

    vals, grads = jax.jit(jax.vmap(jax.value_and_grad(one), in_axes=(None, 0, 0)))(0.0, keys, x0)
    vals, grads = np.asarray(vals), np.asarray(grads)
    assert np.all(np.isfinite(vals)) and np.all(np.isfinite(grads))  # never NaN
    assert abs(vals.mean() - expected) < 4.5 * vals.std() / np.sqrt(n)
    # The exact posterior is optimal: the mean gradient is zero within its standard error.
    assert abs(grads.mean()) < 4.5 * grads.std() / np.sqrt(n)


def test_hybrid_loss_adds_the_auxiliary_cross_entropy():
    q0, trans, prior = noise("uniform", 6)
    qbar = vd.cumulative_transitions(trans)
    logits_fn = exact_logits_fn(q0, qbar)
    n = 1 << 13
    x0 = jax.random.categorical(jax.random.key(1), jnp.log(jnp.asarray(q0)), shape=(n,))
    keys = jax.random.split(jax.random.key(2), n)

    @jax.jit
    def parts(keys, x0):
        def one(k, x):
            base = vd.categorical_vlb(k, x, logits_fn, trans, prior, parameterization="d3pm")
            h0 = vd.categorical_hybrid_loss(k, x, logits_fn, trans, prior, aux_weight=0.0)
            h1 = vd.categorical_hybrid_loss(k, x, logits_fn, trans, prior, aux_weight=0.5)
            return base.total, h0, (h1 - h0) / 0.5

        return jax.vmap(one)(keys, x0)

    base, h0, aux = (np.asarray(a) for a in parts(keys, x0))
    np.testing.assert_allclose(h0, base, rtol=1e-6)
    d3pm = expected_neg_elbo(q0, trans, prior, "d3pm")  # the sampled bound is unbiased
    assert abs(base.mean() - d3pm) < 4.5 * base.std() / np.sqrt(n)
    # E[aux] = mean over t in 2..T of the conditional entropy H(x_0 | x_t).
    q = np.asarray(qbar, np.float64)
    cond = []
    for t in range(2, 7):
        joint = Q0_UNIFORM[:, None] * q[t - 1]
        marginal = joint.sum(0)
        cond.append(-np.sum(joint * np.log(joint / marginal)))
    assert abs(aux.mean() - np.mean(cond)) < 4.5 * aux.std() / np.sqrt(n)


# --- continuous time: MDLM (absorbing) and UDLM (uniform) -------------------------------

SEQ_LEN, MASK = 3, 2
SEQS = np.array(list(itertools.product(range(2), repeat=SEQ_LEN)))
Q_SEQ = np.random.default_rng(0).dirichlet(np.ones(len(SEQS)))


def mdlm_exact_logits(x_t, t):
    """Exact p(x_0^l | visible tokens) from the joint table (independent of t)."""
    del t
    seqs = jnp.asarray(SEQS)
    consistent = jnp.all((x_t == MASK) | (seqs == x_t), axis=1)
    w = jnp.asarray(Q_SEQ, jnp.float32) * consistent
    probs = jnp.einsum("s,slv->lv", w, jax.nn.one_hot(seqs, 3)) / jnp.sum(w)
    return log0(probs)


def gl01(order=16):
    u, w = np.polynomial.legendre.leggauss(order)
    return (u + 1) / 2, w / 2


@pytest.mark.parametrize(
    "alpha_fn", [lambda t: 1.0 - t, lambda t: (1.0 - t) ** 2], ids=["linear", "square"]
)
def test_mdlm_equals_exact_nll(alpha_fn):
    patterns = jnp.asarray(np.array(list(itertools.product([0, 1], repeat=SEQ_LEN))))
    ts, ws = gl01()

    @jax.jit
    def neg_elbo(x0):
        def at(t):
            alpha = alpha_fn(t)

            def pattern(m):
                x_t = jnp.where(m == 1, MASK, x0)
                prob = jnp.prod(jnp.where(m == 1, 1.0 - alpha, alpha))
                loss = vd.mdlm_diffusion_loss(
                    x0, x_t, t, mdlm_exact_logits, alpha_fn, mask_index=MASK
                )
                return prob * loss

            return jnp.sum(jax.vmap(pattern)(patterns))

        return jnp.sum(jax.vmap(at)(jnp.asarray(ts, jnp.float32)) * jnp.asarray(ws))

    got = np.asarray(jax.vmap(neg_elbo)(jnp.asarray(SEQS)))
    np.testing.assert_allclose(got, -np.log(Q_SEQ), rtol=2e-5)

    x0 = jnp.asarray(SEQS[5])
    n = 1 << 13
    keys = jax.random.split(jax.random.key(0), n)
    vals = np.asarray(
        jax.jit(
            jax.vmap(
                lambda k: vd.mdlm_vlb(k, x0, mdlm_exact_logits, alpha_fn, mask_index=MASK).total
            )
        )(keys)
    )
    assert abs(vals.mean() + np.log(Q_SEQ[5])) < 4.5 * vals.std() / np.sqrt(n)


Q0_UDLM = np.array([0.6, 0.3, 0.1])


def udlm_alpha(t):
    return 1.0 - t


def udlm_exact_logits(x_t, t):
    alpha = udlm_alpha(t)
    n = len(Q0_UDLM)
    return jnp.log(jnp.asarray(Q0_UDLM, jnp.float32)) + jnp.log(
        alpha * jax.nn.one_hot(x_t, n) + (1.0 - alpha) / n
    )


def udlm_continuous_exact():
    # The integrand is bounded on [0, 1]; nodes stay >= 1e-4 from the ends so that
    # alpha = 1 - t is not rounded to 1 or 0 in float32.
    u, w = np.polynomial.legendre.leggauss(10)
    inner = np.geomspace(1e-4, 2e-2, 6)
    edges = np.unique(
        np.concatenate([[0.0], inner, np.linspace(0.0, 1.0, 51)[2:-1], 1 - inner, [1.0]])
    )
    half = np.diff(edges)[:, None] / 2
    ts = (edges[:-1, None] + half * (u + 1)).ravel()
    ws = (half * w).ravel()
    n = len(Q0_UDLM)

    @jax.jit
    def run(ts, ws):
        def at(t):
            alpha = udlm_alpha(t)

            def pair(x0, xt):
                prob = alpha * (x0 == xt) + (1.0 - alpha) / n
                loss = vd.udlm_diffusion_loss(x0, xt, t, udlm_exact_logits, udlm_alpha)
                return jnp.asarray(Q0_UDLM, jnp.float32)[x0] * prob * loss

            grid = jax.vmap(lambda a: jax.vmap(lambda b: pair(a, b))(jnp.arange(n)))
            return jnp.sum(grid(jnp.arange(n)))

        return jnp.sum(jax.vmap(at)(ts) * ws)

    return float(run(jnp.asarray(ts, jnp.float32), jnp.asarray(ws, jnp.float32)))


def test_udlm_discrete_time_converges_to_continuous():
    continuous = udlm_continuous_exact()
    h = entropy(Q0_UDLM)
    assert continuous > h + 0.01  # not tight even with the exact q(x_0 | x_t)
    errors = []
    for steps in (10, 100, 1000):
        trans = vd.uniform_transitions(vd.betas_from_alpha(udlm_alpha, steps), 3)
        value = expected_neg_elbo(Q0_UDLM, trans, np.full(3, 1 / 3), "d3pm")
        errors.append(abs(value - continuous))
        if steps == 10:
            mixture = expected_neg_elbo(Q0_UDLM, trans, np.full(3, 1 / 3), "mixture")
            assert mixture == pytest.approx(h, abs=1e-4)
    # Convergence is a little slower than 1/T (measured errors 0.24, 0.042, 0.006; an
    # independent computation of the same example shows the same pattern: 1.031, 1.107,
    # 1.119 -> 1.121).
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05 * errors[0] and errors[2] < 0.01

    n = 1 << 13
    keys = jax.random.split(jax.random.key(0), n)
    x0 = jax.random.categorical(jax.random.key(1), jnp.log(jnp.asarray(Q0_UDLM)), shape=(n,))

    def one(k, x):
        return vd.udlm_vlb(k, x, udlm_exact_logits, udlm_alpha, num_classes=3).total

    vals = np.asarray(jax.jit(jax.vmap(one))(keys, x0))
    assert abs(vals.mean() - continuous) < 4.5 * vals.std() / np.sqrt(n)


def test_gaussian_transitions_at_zero_noise_are_the_identity():
    # Reported: gaussian_transitions([0.], 4) was all NaN; beta -> 0 tends to the identity.
    betas = jnp.array([0.0, 1e-3, 0.3])
    q = np.asarray(vd.gaussian_transitions(betas, 4))
    np.testing.assert_array_equal(q[0], np.eye(4))
    np.testing.assert_allclose(q[1], np.eye(4), atol=1e-30)
    # D3PM's formula in float64 at beta = 0.3
    n = np.arange(-3, 4)
    norm = np.sum(np.exp(-4 * n**2 / (9 * 0.3)))
    i = np.arange(4)
    off = np.exp(-4 * (i[:, None] - i[None, :]) ** 2 / (9 * 0.3)) / norm
    np.fill_diagonal(off, 0.0)
    np.testing.assert_allclose(q[2], off + np.diag(1 - off.sum(1)), rtol=1e-5)
    grad = jax.grad(lambda b: jnp.sum(vd.gaussian_transitions(b, 4) ** 2))(betas)
    assert np.all(np.isfinite(grad))


def _toy_logits(theta):
    return lambda x_t, t: theta[x_t]


def test_continuous_time_bounds_at_the_end_points():
    # Reported: mdlm_vlb's gradient at t = 0 and udlm_vlb at t = 1 were NaN. At t = 0 MDLM
    # masks nothing and at t = 1 UDLM's integrand is 0 (its bracket vanishes like alpha^2):
    # the diffusion term is exactly 0 there, with zero gradient.
    theta = jnp.arange(16.0).reshape(4, 4) * 0.1
    x0 = jnp.array([0, 1, 2])

    def mdlm(th, t):
        return vd.mdlm_vlb(
            jax.random.key(0), x0, _toy_logits(th), lambda u: 1.0 - u, mask_index=3, t=t
        )

    def udlm(th, t):
        return vd.udlm_vlb(
            jax.random.key(0), x0, _toy_logits(th), lambda u: 1.0 - u, num_classes=4, t=t
        )

    @jax.jit
    def terms_and_jacobians(th):
        out = []
        for fn, t in ((mdlm, 0.0), (udlm, 1.0)):
            terms = jnp.stack(fn(th, t))  # prior, reconstruction, diffusion
            out.append((terms, jax.jacobian(lambda u, fn=fn, t=t: jnp.stack(fn(u, t)))(th)))
        near = jnp.stack([udlm(th, 1.0 - a).diffusion for a in (1e-2, 1e-3)])
        return out, near

    out, near = terms_and_jacobians(theta)
    for terms, jac in out:
        assert float(terms[2]) == 0.0
        assert np.all(np.isfinite(jac))
        np.testing.assert_array_equal(jac[2], np.zeros((4, 4)))
    # UDLM's integrand tends to 0 continuously: O(alpha) just before t = 1
    near = np.abs(np.asarray(near))
    assert near[1] < near[0] < 0.5, near


def test_continuous_time_classes_and_times_are_checked():
    theta = jnp.zeros((4, 4))
    key, alpha = jax.random.key(0), lambda u: 1.0 - u
    # Reported: class indices outside [0, V) were accepted (one_hot gives zeros).
    with pytest.raises(ValueError, match=r"`x0` must lie in \[0, 4\)"):
        vd.mdlm_vlb(key, jnp.array([0, 5]), _toy_logits(jnp.zeros((6, 4))), alpha, mask_index=3)
    with pytest.raises(ValueError, match="`x0` must not contain the mask class 3"):
        vd.mdlm_vlb(key, jnp.array([0, 3]), _toy_logits(theta), alpha, mask_index=3)
    with pytest.raises(ValueError, match=r"`x_t` must lie in \[0, 4\)"):
        vd.mdlm_diffusion_loss(
            jnp.array([0, 1]),
            jnp.array([0, 4]),
            0.5,
            _toy_logits(jnp.zeros((5, 4))),
            alpha,
            mask_index=3,
        )
    with pytest.raises(ValueError, match=r"`t` must lie in \[0, 1\]"):
        vd.mdlm_vlb(key, jnp.array([0, 1]), _toy_logits(theta), alpha, mask_index=3, t=1.5)
    with pytest.raises(ValueError, match=r"`t` must lie in \[0, 1\]"):
        vd.udlm_vlb(key, jnp.array([0, 1]), _toy_logits(theta), alpha, num_classes=4, t=-0.1)
    with pytest.raises(ValueError, match=r"`x0` must lie in \[0, 4\)"):
        vd.udlm_diffusion_loss(jnp.array([0, 9]), jnp.array([0, 1]), 0.5, _toy_logits(theta), alpha)


def test_bad_inputs_raise():
    q0, trans, prior = noise("uniform", 4)
    fn = exact_logits_fn(q0, vd.cumulative_transitions(trans))
    key, x0 = jax.random.key(0), jnp.array([0, 1])
    with pytest.raises(ValueError, match="transitions"):
        vd.categorical_vlb(key, x0, fn, trans[:, :3], prior)
    with pytest.raises(ValueError, match="transitions"):
        vd.categorical_vlb(key, x0, fn, trans * 1.5, prior)
    with pytest.raises(ValueError, match="prior"):
        vd.categorical_vlb(key, x0, fn, trans, prior[:3])
    with pytest.raises(ValueError, match="parameterization"):
        vd.categorical_vlb(key, x0, fn, trans, prior, parameterization="joint")
    with pytest.raises(TypeError, match="x0"):
        vd.categorical_vlb(key, x0.astype(float), fn, trans, prior)
    with pytest.raises(ValueError, match="x0"):
        vd.categorical_vlb(key, jnp.array([0, 7]), fn, trans, prior)
    with pytest.raises(ValueError, match="logits_fn"):
        vd.categorical_vlb(key, x0, lambda x, t: jnp.zeros((2, 3)), trans, prior)
    with pytest.raises(ValueError, match="betas"):
        vd.uniform_transitions(jnp.array([0.5, 1.5]), 3)
    with pytest.raises(ValueError, match="num_classes"):
        vd.absorbing_transitions(jnp.array([0.5]), 1)


def test_injected_draws_give_the_terms_of_the_public_functions():
    # t, x_t and x_1 replace the draws: the value no longer depends on the key and is the sum
    # of the public terms (prior, categorical_decoder_nll, (T - 1) categorical_step_kl).
    _, trans, prior = noise("uniform", 4)
    qbar = vd.cumulative_transitions(trans)
    table = jax.random.normal(jax.random.key(3), (5, 4, 4))

    def logits_fn(x_t, t):
        return table[t][x_t]

    x0, x_1, x_t, t = jnp.array([0, 2, 1]), jnp.array([0, 3, 1]), jnp.array([2, 2, 0]), 3
    given = {"t": t, "x_t": x_t, "x_1": x_1}
    a = vd.categorical_vlb(jax.random.key(0), x0, logits_fn, trans, prior, **given)
    b = vd.categorical_vlb(jax.random.key(1), x0, logits_fn, trans, prior, **given)
    np.testing.assert_array_equal(jnp.stack(a), jnp.stack(b))
    recon = vd.categorical_decoder_nll(x0, logits_fn(x_1, 1))
    step = vd.categorical_step_kl(x0, x_t, logits_fn(x_t, t), trans[t - 1], qbar[t - 2])
    np.testing.assert_allclose(a.reconstruction, recon, rtol=1e-6)
    np.testing.assert_allclose(a.diffusion, 3 * step, rtol=1e-6)
    hybrid = vd.categorical_hybrid_loss(
        jax.random.key(2), x0, logits_fn, trans, prior, aux_weight=0.5, **given
    )
    aux = vd.categorical_decoder_nll(x0, logits_fn(x_t, t))
    b = vd.categorical_vlb(
        jax.random.key(0), x0, logits_fn, trans, prior, parameterization="d3pm", **given
    )
    np.testing.assert_allclose(hybrid, b.total + 0.5 * aux, rtol=1e-6)
    # The decoder term by hand: -sum log softmax(logits)[x0].
    log_p = jax.nn.log_softmax(logits_fn(x_1, 1))
    np.testing.assert_allclose(recon, -log_p[jnp.arange(3), x0].sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="`x_t` was given without its step `t`"):
        vd.categorical_vlb(jax.random.key(0), x0, logits_fn, trans, prior, x_t=x_t)
    with pytest.raises(ValueError, match=r"`t` must be a step in \[2, 4\]"):
        vd.categorical_vlb(jax.random.key(0), x0, logits_fn, trans, prior, t=1)
    with pytest.raises(ValueError, match="`logits` must have shape"):
        vd.categorical_decoder_nll(x0, jnp.zeros((2, 4)))

    # MDLM and UDLM: t and x_t given, the diffusion term is the public integrand.
    theta = jnp.arange(16.0).reshape(4, 4) * 0.1
    alpha = lambda u: 1.0 - u  # noqa: E731
    x0, x_t = jnp.array([0, 1, 2]), jnp.array([3, 1, 3])
    for k in (0, 1):
        mdlm = vd.mdlm_vlb(
            jax.random.key(k), x0, _toy_logits(theta), alpha, mask_index=3, t=0.4, x_t=x_t
        )
        expected = vd.mdlm_diffusion_loss(x0, x_t, 0.4, _toy_logits(theta), alpha, mask_index=3)
        np.testing.assert_allclose(mdlm.diffusion, expected, rtol=1e-6)
        udlm = vd.udlm_vlb(
            jax.random.key(k), x0, _toy_logits(theta), alpha, num_classes=4, t=0.4, x_t=x_t
        )
        expected = vd.udlm_diffusion_loss(x0, x_t, 0.4, _toy_logits(theta), alpha)
        np.testing.assert_allclose(udlm.diffusion, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="`x_t` was given without its time `t`"):
        vd.mdlm_vlb(jax.random.key(0), x0, _toy_logits(theta), alpha, mask_index=3, x_t=x_t)


def test_schedules_keep_float64_under_x64():
    # Reported: absorbing_betas and the continuous-time schedule cast to float32.
    seen = []

    def alpha(u):
        seen.append(u.dtype)
        return 1.0 - u

    with jax.enable_x64(True):
        betas = vd.absorbing_betas(4)
        assert betas.dtype == jnp.float64
        assert vd.uniform_transitions(betas, 3).dtype == jnp.float64
        loss = vd.mdlm_diffusion_loss(
            jnp.array([0, 1]),
            jnp.array([2, 1]),
            1.0 / 3.0,
            _toy_logits(jnp.eye(3)),
            alpha,
            mask_index=2,
        )
        assert loss.dtype == jnp.float64 and seen and all(d == jnp.float64 for d in seen)
        # -alpha'/(1 - alpha) = 3 times the masked token's -log softmax([0, 0, 1])[0]
        np.testing.assert_allclose(float(loss), 3.0 * np.log(np.e + 2.0), rtol=1e-14)
    assert vd.absorbing_betas(4).dtype == jnp.float32
