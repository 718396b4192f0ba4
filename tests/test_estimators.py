"""Gradient estimators against exact gradients: closed forms, enumeration, identities."""

import functools
import itertools
import math

import distrax
import jax
import jax.numpy as jnp
import lg_model as lg
import numpy as np
import pytest

import vbounds as vb

THETA = jnp.array([0.3, -1.0])
X = jnp.array([1.2, 0.4])
Q_OFF = lg.q_params([0.2, 0.1], 0.9)
ESTIMATORS = vb.estimators.GRADIENT_ESTIMATORS


@functools.partial(jax.jit, static_argnames=("k", "bound", "estimator", "alpha"))
def _grads(key, theta, params, *, k, bound, estimator, alpha=0.0):
    def surrogate(th, qp):
        est = vb.estimate(
            key,
            lg.log_joint_fn(th, X),
            lg.make_q,
            qp,
            num_samples=k,
            bound=bound,
            estimator=estimator,
            alpha=alpha,
        )
        return est.surrogate

    return jax.grad(surrogate, argnums=(0, 1))(theta, params)


def _draws(n, seed, **kwargs):
    keys = jax.random.split(jax.random.key(seed), n)
    fn = jax.jit(jax.vmap(lambda kk: _grads(kk, THETA, Q_OFF, **kwargs)))
    return fn(keys)


def _flat_q(grads):
    gq = grads[1] if isinstance(grads, tuple) else grads
    return jnp.concatenate([gq["mean"], gq["log_scale"]], axis=-1)


def _assert_mean_close(samples, target, label):
    samples = np.asarray(samples, np.float64)
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(samples.shape[0])
    assert np.all(np.abs(mean - np.asarray(target)) < 4.5 * se + 1e-6), (label, mean, target, se)


@pytest.mark.parametrize(("bound", "alpha"), [("elbo", 0.0), ("iwae", 0.0), ("renyi", 0.5)])
def test_every_estimator_gives_the_model_the_same_gradient(bound, alpha):
    key = jax.random.key(0)
    estimators = [e for e in ESTIMATORS if not (e == "vimco" and bound == "elbo")]
    values, model_grads = [], []
    for estimator in estimators:
        est = vb.estimate(
            key,
            lg.log_joint_fn(THETA, X),
            lg.make_q,
            Q_OFF,
            num_samples=6,
            bound=bound,
            estimator=estimator,
            alpha=alpha,
        )
        np.testing.assert_allclose(est.surrogate, est.value, rtol=1e-6)
        bound_fn = {"elbo": vb.elbo, "iwae": vb.iwae, "renyi": lambda w: vb.renyi(w, alpha)}
        np.testing.assert_allclose(est.value, bound_fn[bound](est.log_weights), rtol=1e-6)
        values.append(est.value)
        model_grads.append(
            _grads(key, THETA, Q_OFF, k=6, bound=bound, estimator=estimator, alpha=alpha)[0]
        )
    for v, g in zip(values[1:], model_grads[1:]):
        np.testing.assert_allclose(v, values[0], rtol=1e-6)
        np.testing.assert_allclose(g, model_grads[0], rtol=1e-5, atol=1e-6)
    # and that gradient is the exact sum of normalised weights times grad log p(x, z_k)
    q = lg.make_q(Q_OFF)
    z = q.sample(seed=key, sample_shape=(6,))
    lw = lg.log_joint_fn(THETA, X)(z) - q.log_prob(z)
    weights = {"elbo": jnp.full(6, 1 / 6), "iwae": jax.nn.softmax(lw)}.get(
        bound, jax.nn.softmax((1 - alpha) * lw)
    )
    expected = jnp.sum(weights[:, None] * (z - THETA), axis=0)
    np.testing.assert_allclose(model_grads[0], expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("estimator", "k"), [("reparam", 1), ("stl", 1), ("dreg", 3), ("score", 4), ("vimco", 4)]
)
def test_estimators_are_unbiased_for_the_analytic_elbo_gradient(estimator, k):
    exact = jax.grad(lambda qp: lg.analytic_elbo(THETA, X, qp))(Q_OFF)
    exact = jnp.concatenate([exact["mean"], exact["log_scale"]])
    grads = _draws(6000, 1, k=k, bound="elbo", estimator=estimator)
    _assert_mean_close(_flat_q(grads), exact, estimator)
    exact_theta = jax.grad(lambda th: lg.analytic_elbo(th, X, Q_OFF))(THETA)
    _assert_mean_close(grads[0], exact_theta, estimator + " model")


@pytest.mark.parametrize(("bound", "alpha"), [("iwae", 0.0), ("renyi", 0.5), ("renyi", -1.0)])
def test_dreg_is_unbiased_for_iwae_and_renyi(bound, alpha):
    keys = jax.random.split(jax.random.key(2), 6000)

    def paired(kk):
        g_rep = _grads(kk, THETA, Q_OFF, k=8, bound=bound, estimator="reparam", alpha=alpha)
        g_dreg = _grads(kk, THETA, Q_OFF, k=8, bound=bound, estimator="dreg", alpha=alpha)
        return _flat_q(g_rep) - _flat_q(g_dreg)

    # Same draw, different estimators: the paired difference has mean zero.
    diffs = jax.jit(jax.vmap(paired))(keys)
    _assert_mean_close(diffs, jnp.zeros(4), bound)
    assert float(jnp.max(jnp.std(diffs, axis=0))) > 1e-3  # the estimators do differ


def test_dreg_alpha_limits():
    key = jax.random.key(3)
    iwae = _grads(key, THETA, Q_OFF, k=5, bound="iwae", estimator="dreg")
    renyi0 = _grads(key, THETA, Q_OFF, k=5, bound="renyi", estimator="dreg", alpha=0.0)
    renyi1 = _grads(key, THETA, Q_OFF, k=5, bound="renyi", estimator="dreg", alpha=1.0)
    stl_elbo = _grads(key, THETA, Q_OFF, k=5, bound="elbo", estimator="stl")
    for a, b in ((iwae, renyi0), (renyi1, stl_elbo)):
        for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(leaf_a, leaf_b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("bound", "estimator", "alpha"),
    [("elbo", "stl", 0.0), ("iwae", "dreg", 0.0), ("renyi", "dreg", 0.5), ("elbo", "dreg", 0.0)],
)
def test_path_estimators_have_zero_variance_at_the_exact_posterior(bound, estimator, alpha):
    post = lg.posterior_params(THETA, X)
    keys = jax.random.split(jax.random.key(4), 64)

    def q_grad(kk, est):
        return _flat_q(_grads(kk, THETA, post, k=4, bound=bound, estimator=est, alpha=alpha))

    path = jax.vmap(lambda kk: q_grad(kk, estimator))(keys)
    np.testing.assert_allclose(path, 0.0, atol=2e-5)
    reparam = jax.vmap(lambda kk: q_grad(kk, "reparam"))(keys)
    assert float(jnp.std(reparam[:, 2:])) > 1e-2  # reparam does not land


# A categorical latent small enough to enumerate every K-sample draw exactly.
LOGITS = jnp.array([0.4, -0.3, 0.1])
TABLE = jnp.array([-1.0, -2.5, 0.3])


def _cat_log_joint(table):
    return lambda z: table[z]


def _make_cat(logits):
    return distrax.Categorical(logits=logits)


def _enumerated_bound(logits, table, k, bound_fn):
    log_q = jax.nn.log_softmax(logits)
    total = 0.0
    for combo in itertools.product(range(3), repeat=k):
        combo = jnp.array(combo)
        weight = jnp.exp(jnp.sum(log_q[combo]))
        total = total + weight * bound_fn(table[combo] - log_q[combo])
    return total


@pytest.mark.parametrize(
    ("estimator", "bound", "k"),
    [("score", "elbo", 1), ("score", "iwae", 3), ("vimco", "iwae", 3), ("vimco", "elbo", 2)],
)
def test_score_and_vimco_are_unbiased_against_enumeration(estimator, bound, k):
    bound_fn = {"elbo": vb.elbo, "iwae": vb.iwae}[bound]
    exact_value = _enumerated_bound(LOGITS, TABLE, k, bound_fn)
    exact_grad = jax.grad(_enumerated_bound, argnums=(0, 1))(LOGITS, TABLE, k, bound_fn)

    def one(kk):
        def surrogate(logits, table):
            est = vb.estimate(
                kk,
                _cat_log_joint(table),
                _make_cat,
                logits,
                num_samples=k,
                bound=bound,
                estimator=estimator,
            )
            return est.surrogate, est.value

        (grads, value) = jax.grad(surrogate, argnums=(0, 1), has_aux=True)(LOGITS, TABLE)
        return grads, value

    keys = jax.random.split(jax.random.key(5), 20000)
    (g_logits, g_table), values = jax.jit(jax.vmap(one))(keys)
    _assert_mean_close(values[:, None], jnp.array([exact_value]), "value")
    _assert_mean_close(g_logits, exact_grad[0], "logits")
    _assert_mean_close(g_table, exact_grad[1], "table")


def test_vimco_baseline_reduces_variance_relative_to_plain_score():
    def q_grad_std(estimator):
        def one(kk):
            return jax.grad(
                lambda lg_: (
                    vb.estimate(
                        kk,
                        _cat_log_joint(TABLE),
                        _make_cat,
                        lg_,
                        num_samples=4,
                        bound="iwae",
                        estimator=estimator,
                    ).surrogate
                )
            )(LOGITS)

        g = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(6), 2000))
        return np.asarray(jnp.std(g, axis=0))

    assert np.all(q_grad_std("vimco") < q_grad_std("score") * 1.5)


def test_rws_wake_phi_zero_at_posterior_and_unbiased_forms_agree():
    post = lg.posterior_params(THETA, X)

    def grads(kk, params, estimator, k=8):
        def surrogate(th, qp):
            est = vb.rws_wake_phi(
                kk, lg.log_joint_fn(th, X), lg.make_q, qp, num_samples=k, estimator=estimator
            )
            return est.surrogate

        return jax.grad(surrogate, argnums=(0, 1))(THETA, params)

    g_dreg = grads(jax.random.key(7), post, "dreg")
    np.testing.assert_allclose(_flat_q(g_dreg), 0.0, atol=2e-5)

    keys = jax.random.split(jax.random.key(8), 6000)
    diffs = jax.jit(
        jax.vmap(lambda kk: _flat_q(grads(kk, Q_OFF, "is")) - _flat_q(grads(kk, Q_OFF, "dreg")))
    )(keys)
    _assert_mean_close(diffs, jnp.zeros(4), "rws is vs dreg")
    # the wake-theta gradient is the IWAE model gradient on the same draw
    g_is = grads(jax.random.key(9), Q_OFF, "is")
    g_iwae = _grads(jax.random.key(9), THETA, Q_OFF, k=8, bound="iwae", estimator="reparam")
    np.testing.assert_allclose(g_is[0], g_iwae[0], rtol=1e-5, atol=1e-6)


def test_rws_wake_phi_ascends_minus_inclusive_kl():
    # With many samples the self-normalised gradient approaches
    # grad_phi E_{p(z|x)} log q(z) = -grad_phi KL(p || q), available in closed form.
    mu_post, var_post = (THETA + X) / 2, 0.5

    def expected_log_q(qp):
        m, s2 = qp["mean"], jnp.exp(2 * qp["log_scale"])
        return jnp.sum(
            -0.5 * jnp.log(2 * math.pi * s2) - ((mu_post - m) ** 2 + var_post) / (2 * s2)
        )

    exact = jax.grad(expected_log_q)(Q_OFF)
    exact = jnp.concatenate([exact["mean"], exact["log_scale"]])

    def one(kk):
        return _flat_q(
            jax.grad(
                lambda qp: (
                    vb.rws_wake_phi(
                        kk,
                        lg.log_joint_fn(THETA, X),
                        lg.make_q,
                        qp,
                        num_samples=2000,
                        estimator="dreg",
                    ).surrogate
                )
            )(Q_OFF)
        )

    draws = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(10), 200))
    _assert_mean_close(draws, exact, "rws vs -grad KL(p||q)")


def test_dreg_traces_log_joint_once_and_reparam_once():
    calls = {"n": 0}

    def counting(z):
        calls["n"] += 1
        return lg.log_joint_fn(THETA, X)(z)

    for estimator, limit in (("dreg", 2), ("reparam", 1), ("stl", 1)):
        calls["n"] = 0
        jax.grad(
            lambda qp, e=estimator: (
                vb.estimate(
                    jax.random.key(0), counting, lg.make_q, qp, num_samples=4, estimator=e
                ).surrogate
            )
        )(Q_OFF)
        assert 1 <= calls["n"] <= limit, (estimator, calls["n"])


def test_hierarchical_pytree_latents():
    # Two-layer chain z1 ~ q1, z2 | z1 ~ q2; log_joint takes a dict of [K, d] arrays.
    class ChainQ:
        def __init__(self, p):
            self.p = p

        def sample(self, seed, sample_shape):
            k1, k2 = jax.random.split(seed)
            z1 = distrax.Normal(self.p["m1"], 1.0).sample(seed=k1, sample_shape=sample_shape)
            z2 = distrax.Normal(z1 * self.p["a"], 1.0).sample(seed=k2)
            return {"z1": z1, "z2": z2}

        def log_prob(self, z):
            lp1 = distrax.Normal(self.p["m1"], 1.0).log_prob(z["z1"]).sum(-1)
            return lp1 + distrax.Normal(z["z1"] * self.p["a"], 1.0).log_prob(z["z2"]).sum(-1)

    def log_joint(z):
        return (
            distrax.Normal(0.0, 1.0).log_prob(z["z2"]).sum(-1)
            + distrax.Normal(z["z2"], 1.0).log_prob(z["z1"]).sum(-1)
            + distrax.Normal(z["z1"], 1.0).log_prob(jnp.ones(2)).sum(-1)
        )

    params = {"m1": jnp.zeros(2), "a": jnp.array(0.5)}

    @functools.partial(jax.jit, static_argnames="estimator")
    def run(p, estimator):
        def surrogate(p):
            est = vb.estimate(
                jax.random.key(11), log_joint, ChainQ, p, num_samples=4, estimator=estimator
            )
            return est.surrogate, est

        return jax.grad(surrogate, has_aux=True)(p)

    values = []
    for estimator in ESTIMATORS:
        g, est = run(params, estimator)
        assert est.log_weights.shape == (4,)
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(g))
        values.append(float(est.value))
    np.testing.assert_allclose(values, values[0], rtol=1e-6)


def test_bad_arguments_are_named():
    args = (jax.random.key(0), lg.log_joint_fn(THETA, X), lg.make_q, Q_OFF)
    with pytest.raises(ValueError, match="bound"):
        vb.estimate(*args, num_samples=2, bound="iwea")
    with pytest.raises(ValueError, match="estimator"):
        vb.estimate(*args, num_samples=2, estimator="reinforce")
    with pytest.raises(ValueError, match="num_samples"):
        vb.estimate(*args, num_samples=0)
    with pytest.raises(TypeError, match="num_samples"):
        vb.estimate(*args, num_samples=2.0)
    with pytest.raises(ValueError, match="vimco"):
        vb.estimate(*args, num_samples=1, estimator="vimco")
    # Without `alpha`, "renyi" used to be the IWAE bound in silence.
    with pytest.raises(ValueError, match="`alpha` is required for bound='renyi'"):
        vb.estimate(*args, num_samples=2, bound="renyi")
    with pytest.raises(ValueError, match="dreg"):
        vb.estimate(*args, num_samples=2, bound="vr_max", estimator="dreg")
    with pytest.raises(ValueError, match="log_joint"):
        vb.estimate(jax.random.key(0), lambda z: z, lg.make_q, Q_OFF, num_samples=3)
    with pytest.raises(ValueError, match="discrete|reparameterisable"):
        vb.estimate(jax.random.key(0), _cat_log_joint(TABLE), _make_cat, LOGITS, num_samples=3)
    with pytest.raises(TypeError, match="key"):
        vb.estimate(jnp.zeros(3), lg.log_joint_fn(THETA, X), lg.make_q, Q_OFF, num_samples=2)
    with pytest.raises(ValueError, match="estimator"):
        vb.rws_wake_phi(*args, num_samples=2, estimator="reparam")


def test_estimate_under_jit_and_vmap_over_a_batch():
    xs = jnp.stack([X, X + 1.0, X - 1.0])
    params = jax.tree.map(lambda a: jnp.stack([a] * 3), Q_OFF)
    keys = jax.random.split(jax.random.key(12), 3)

    @jax.jit
    def batch(keys, xs, params):
        def one(kk, x, qp):
            return vb.estimate(
                kk, lg.log_joint_fn(THETA, x), lg.make_q, qp, num_samples=5, estimator="dreg"
            )

        return jax.vmap(one)(keys, xs, params)

    out = batch(keys, xs, params)
    assert out.value.shape == (3,) and out.log_weights.shape == (3, 5)
    single = vb.estimate(
        keys[1], lg.log_joint_fn(THETA, xs[1]), lg.make_q, Q_OFF, num_samples=5, estimator="dreg"
    )
    np.testing.assert_allclose(out.value[1], single.value, rtol=1e-5)
    rws = jax.jit(
        jax.vmap(
            lambda kk, x: (
                vb.rws_wake_phi(
                    kk, lg.log_joint_fn(THETA, x), lg.make_q, Q_OFF, num_samples=5
                ).value
            )
        )
    )(keys, xs)
    assert rws.shape == (3,)
