"""vb.sequential against exact answers: dense Gaussians, enumeration, closed-form ELBOs."""

import itertools

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vbounds as vb

vs = vb.sequential

T, D, P = 5, 2, 2


def _model():
    """A small LG-SSM in float64 numpy and one draw of observations from it."""
    rng = np.random.default_rng(0)
    params = dict(
        transition=np.array([[0.9, 0.2], [-0.1, 0.8]]),
        transition_cov=np.array([[0.3, 0.05], [0.05, 0.2]]),
        emission=np.array([[1.0, 0.5], [0.0, 1.0]]),
        emission_cov=np.array([[0.5, 0.1], [0.1, 0.4]]),
        init_mean=np.array([0.5, -0.3]),
        init_cov=np.array([[1.0, 0.2], [0.2, 0.7]]),
    )
    x = rng.normal(size=(T, P))
    return x, params


def _dense(params):
    """The joint Gaussian of the stacked (z_{1:T}, x_{1:T}): means and covariances."""
    a, q, c, r = (params[k] for k in ("transition", "transition_cov", "emission", "emission_cov"))
    means, covs = [params["init_mean"]], [params["init_cov"]]
    for _ in range(1, T):
        means.append(a @ means[-1])
        covs.append(a @ covs[-1] @ a.T + q)
    sz = np.zeros((T * D, T * D))
    for s in range(T):
        for t in range(s, T):
            block = np.linalg.matrix_power(a, t - s) @ covs[s]
            sz[t * D : (t + 1) * D, s * D : (s + 1) * D] = block
            sz[s * D : (s + 1) * D, t * D : (t + 1) * D] = block.T
    cbig = np.kron(np.eye(T), c)
    mz = np.concatenate(means)
    sx = cbig @ sz @ cbig.T + np.kron(np.eye(T), r)
    return mz, sz, cbig @ mz, sx, sz @ cbig.T


def _gauss_logpdf(x, mean, cov):
    diff = x - mean
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (diff @ np.linalg.solve(cov, diff) + logdet + len(x) * np.log(2 * np.pi))


def test_kalman_log_likelihood_matches_dense_gaussian():
    x, params = _model()
    _, _, mx, sx, _ = _dense(params)
    exact = _gauss_logpdf(x.reshape(-1), mx, sx)
    with jax.enable_x64(True):
        ll = vs.kalman_log_likelihood(jnp.asarray(x), **params)
        assert ll.dtype == jnp.float64
        np.testing.assert_allclose(float(ll), exact, rtol=0, atol=1e-10)
    # float32 stays close too.
    ll32 = vs.kalman_log_likelihood(np.float32(x), **{k: np.float32(v) for k, v in params.items()})
    np.testing.assert_allclose(float(ll32), exact, atol=1e-4)


def _condition(mz, sz, mx, sx, szx, x):
    gain = np.linalg.solve(sx, szx.T).T
    return mz + gain @ (x - mx), sz - gain @ szx.T


def test_kalman_filter_and_rts_smoother_match_dense_conditionals():
    x, params = _model()
    mz, sz, mx, sx, szx = _dense(params)
    with jax.enable_x64(True):
        f = vs.kalman_filter(jnp.asarray(x), **params)
        s = vs.rts_smoother(jnp.asarray(x), **params)
    for t in range(T):
        n = (t + 1) * P  # condition on x_{1:t} only
        mean, cov = _condition(mz, sz, mx[:n], sx[:n, :n], szx[:, :n], x[: t + 1].reshape(-1))
        block = slice(t * D, (t + 1) * D)
        np.testing.assert_allclose(f.filtered_means[t], mean[block], atol=1e-10)
        np.testing.assert_allclose(f.filtered_covs[t], cov[block, block], atol=1e-10)
    mean, cov = _condition(mz, sz, mx, sx, szx, x.reshape(-1))
    np.testing.assert_allclose(s.means, mean.reshape(T, D), atol=1e-10)
    for t in range(T):
        block = slice(t * D, (t + 1) * D)
        np.testing.assert_allclose(s.covs[t], cov[block, block], atol=1e-10)
        if t < T - 1:
            nxt = slice((t + 1) * D, (t + 2) * D)
            np.testing.assert_allclose(s.cross_covs[t], cov[block, nxt], atol=1e-10)


def _lgssm_prior(params):
    a = jnp.asarray(params["transition"])

    def prior(state, t):
        first = t == 0
        mean = jnp.where(first, jnp.asarray(params["init_mean"]), a @ state)
        cov = jnp.where(
            first, jnp.asarray(params["init_cov"]), jnp.asarray(params["transition_cov"])
        )
        return distrax.MultivariateNormalFullCovariance(mean, cov)

    def emission(state, z, t):
        return distrax.MultivariateNormalFullCovariance(
            jnp.asarray(params["emission"]) @ z, jnp.asarray(params["emission_cov"])
        )

    return prior, emission


def _exact_posterior(x, params):
    """The smoothing posterior as forward Markov kernels q(z_t | z_{t-1}, x_{1:T})."""
    s = vs.rts_smoother(jnp.asarray(x), **params)
    # q(z_t | z_{t-1}) from the joint of (z_{t-1}, z_t): gain G_t = C_{t-1,t}^T P_{t-1}^{-1}.
    gains = jnp.stack(
        [jnp.zeros((D, D))]
        + [jnp.linalg.solve(s.covs[t - 1], s.cross_covs[t - 1]).T for t in range(1, T)]
    )
    covs = jnp.stack(
        [s.covs[0]] + [s.covs[t] - gains[t] @ s.cross_covs[t - 1] for t in range(1, T)]
    )
    prev_means = jnp.concatenate([jnp.zeros((1, D)), s.means[:-1]])

    def posterior(state, t):
        mean = s.means[t] + gains[t] @ (state - prev_means[t])
        return distrax.MultivariateNormalFullCovariance(mean, covs[t])

    return posterior


def test_elbo_with_exact_smoothing_posterior_equals_kalman_on_every_draw():
    x, params = _model()
    with jax.enable_x64(True):
        exact = float(vs.kalman_log_likelihood(jnp.asarray(x), **params))
        prior, emission = _lgssm_prior(params)
        posterior = _exact_posterior(x, params)

        def run(key, analytic):
            return vs.elbo(
                key,
                jnp.asarray(x),
                prior=prior,
                posterior=posterior,
                emission=emission,
                initial_state=jnp.zeros(D),
                analytic_kl=analytic,
            ).value

        keys = jax.random.split(jax.random.key(1), 400)
        sampled = jax.jit(jax.vmap(lambda k: run(k, False)))(keys)
        np.testing.assert_allclose(np.asarray(sampled), exact, rtol=0, atol=1e-9)
        # The analytic-KL form varies draw to draw but has the same expectation.
        analytic = np.asarray(jax.jit(jax.vmap(lambda k: run(k, True)))(keys))
        assert analytic.std() > 1e-3
        se = analytic.std(ddof=1) / np.sqrt(len(analytic))
        assert abs(analytic.mean() - exact) < 4.5 * se


def test_elbo_with_prior_as_posterior_matches_closed_form_and_is_below():
    x, params = _model()
    a, c, r = params["transition"], params["emission"], params["emission_cov"]
    # q = p(z): every KL is zero and E log p(x_t | z_t) = log N(x_t | C m_t, R)
    # - tr(R^-1 C P_t C^T) / 2 with the prior marginals (m_t, P_t).
    m, cov, expected = params["init_mean"], params["init_cov"], 0.0
    for t in range(T):
        if t:
            m, cov = a @ m, a @ cov @ a.T + params["transition_cov"]
        expected += _gauss_logpdf(x[t], c @ m, r) - 0.5 * np.trace(
            np.linalg.solve(r, c @ cov @ c.T)
        )
    with jax.enable_x64(True):
        exact = float(vs.kalman_log_likelihood(jnp.asarray(x), **params))
        prior, emission = _lgssm_prior(params)
        run = jax.jit(
            jax.vmap(
                lambda k: vs.elbo(
                    k,
                    jnp.asarray(x),
                    prior=prior,
                    posterior=prior,
                    emission=emission,
                    initial_state=jnp.zeros(D),
                )
            )
        )
        out = run(jax.random.split(jax.random.key(2), 2000))
    np.testing.assert_array_equal(np.asarray(out.kls), 0.0)
    values = np.asarray(out.value)
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - expected) < 4.5 * se
    assert expected < exact - 10 * se


def test_elbo_per_step_kl_weight():
    x, params = _model()
    prior, emission = _lgssm_prior(params)
    posterior = _exact_posterior(x, params)
    kwargs = dict(prior=prior, posterior=posterior, emission=emission, initial_state=jnp.zeros(D))
    w = jnp.linspace(0.0, 1.0, T)
    key = jax.random.key(3)
    out = vs.elbo(key, jnp.asarray(x), kl_weight=w, **kwargs)
    full = vs.elbo(key, jnp.asarray(x), **kwargs)
    # Same draw: the terms agree and only the weighting differs.
    np.testing.assert_allclose(out.kls, full.kls, rtol=1e-6)
    assert np.all(np.asarray(full.kls) > 0)
    np.testing.assert_allclose(out.value, jnp.sum(out.log_likelihoods - w * out.kls), rtol=1e-6)
    np.testing.assert_allclose(full.value, jnp.sum(full.log_likelihoods - full.kls), rtol=1e-6)
    with pytest.raises(ValueError, match="kl_weight"):
        vs.elbo(key, jnp.asarray(x), kl_weight=jnp.ones(T + 1), **kwargs)


def test_fivo_one_step_is_iwae():
    x, params = _model()
    prior, emission = _lgssm_prior(params)

    def proposal(state, t):
        return distrax.MultivariateNormalDiag(jnp.array([0.3, 0.1]), jnp.array([1.5, 1.2]))

    @jax.jit
    def run(key):
        out = vs.fivo(
            key,
            jnp.asarray(x[:1]),
            prior=prior,
            proposal=proposal,
            emission=emission,
            initial_state=jnp.zeros(D),
            num_particles=16,
        )
        z = out.states
        log_w = (
            prior(jnp.zeros(D), 0).log_prob(z)
            + jax.vmap(lambda zi: emission(None, zi, 0).log_prob(x[0]))(z)
            - proposal(None, 0).log_prob(z)
        )
        return out, log_w

    out, log_w = run(jax.random.key(4))
    np.testing.assert_allclose(out.log_weights, log_w, rtol=1e-5)
    np.testing.assert_allclose(out.value, vb.iwae(log_w), rtol=1e-5)
    assert not bool(out.resampled[0])


def test_fivo_without_resampling_and_the_exact_posterior_is_exact():
    x, params = _model()
    with jax.enable_x64(True):
        exact = float(vs.kalman_log_likelihood(jnp.asarray(x), **params))
        prior, emission = _lgssm_prior(params)
        out = vs.fivo(
            jax.random.key(5),
            jnp.asarray(x),
            prior=prior,
            proposal=_exact_posterior(x, params),
            emission=emission,
            initial_state=jnp.zeros(D),
            num_particles=8,
            ess_threshold=0.0,
        )
        np.testing.assert_allclose(float(out.value), exact, atol=1e-9)
        np.testing.assert_allclose(np.asarray(out.log_weights), exact, atol=1e-9)
        assert not np.any(np.asarray(out.resampled))


def _bootstrap_values(x, params, num_particles, num_seeds, resampling, seed):
    prior, emission = _lgssm_prior(params)
    run = jax.jit(
        jax.vmap(
            lambda k: vs.fivo(
                k,
                jnp.asarray(x),
                prior=prior,
                proposal=prior,
                emission=emission,
                initial_state=jnp.zeros(D),
                num_particles=num_particles,
                resampling=resampling,
                ess_threshold=1.0,
            )
        )
    )
    out = run(jax.random.split(jax.random.key(seed), num_seeds))
    return np.asarray(out.value), np.asarray(out.resampled)


def test_bootstrap_fivo_is_unbiased_in_p_and_below_in_log_p():
    x, params = _model()
    with jax.enable_x64(True):
        exact = float(vs.kalman_log_likelihood(jnp.asarray(x), **params))
        values, resampled = _bootstrap_values(x, params, 32, 1000, "systematic", seed=6)
    assert resampled[:, :-1].any() and not resampled[:, -1].any()
    ratio = np.exp(values - exact)  # E[p_hat / p] = 1
    assert abs(ratio.mean() - 1.0) < 4.5 * ratio.std(ddof=1) / np.sqrt(len(ratio))
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert values.mean() < exact + 4.5 * se
    # Jensen's gap: E[log p_hat] < log p by about Var(log p_hat) / 2.
    assert values.mean() < exact


def test_bootstrap_fivo_converges_to_kalman_as_particles_grow():
    x, params = _model()
    with jax.enable_x64(True):
        exact = float(vs.kalman_log_likelihood(jnp.asarray(x), **params))
        # Multinomial here, systematic in the unbiasedness test: both schemes are checked.
        few, _ = _bootstrap_values(x, params, 16, 64, "multinomial", seed=7)
        many, _ = _bootstrap_values(x, params, 1024, 64, "multinomial", seed=8)
    # The spread shrinks like 1/sqrt(K): a factor 8 from 16 to 1,024 particles.
    assert many.std() < few.std() / 4
    se = many.std(ddof=1) / np.sqrt(len(many))
    assert abs(many.mean() - exact) < 4.5 * se + many.var()  # bias ~ Var / 2
    assert abs(many.mean() - exact) < abs(few.mean() - exact)


def _hmm():
    rng = np.random.default_rng(1)
    s, t = 3, 4
    log_em = np.log(rng.dirichlet(np.ones(5), size=s))[:, rng.integers(0, 5, size=t)].T
    return log_em, rng.normal(size=s), rng.normal(size=(t - 1, s, s))


def _enumerate(log_em, init, trans):
    t, s = log_em.shape
    zs = jnp.array(list(itertools.product(range(s), repeat=t)))
    lj = vs.hmm_log_joint(zs, log_em, initial_logits=init, transition_logits=trans)
    return zs, np.asarray(lj)


def test_hmm_forward_algorithm_and_posterior_match_enumeration():
    log_em, init, trans = _hmm()
    with jax.enable_x64(True):
        zs, lj = _enumerate(log_em, init, trans)
        # The joint itself by hand for one sequence.
        z = np.asarray(zs[17])
        li, lt = jax.nn.log_softmax(init), jax.nn.log_softmax(trans, axis=-1)
        by_hand = (
            li[z[0]]
            + sum(lt[i, z[i], z[i + 1]] for i in range(3))
            + sum(log_em[i, z[i]] for i in range(4))
        )
        np.testing.assert_allclose(lj[17], by_hand, atol=1e-12)
        exact = np.logaddexp.reduce(lj)
        ll = vs.hmm_log_likelihood(log_em, initial_logits=init, transition_logits=trans)
        np.testing.assert_allclose(float(ll), exact, atol=1e-12)
        q = vs.hmm_posterior(log_em, initial_logits=init, transition_logits=trans)
        np.testing.assert_allclose(np.asarray(q.log_prob(zs)), lj - exact, atol=1e-12)


def test_categorical_chain_samples_match_its_probabilities():
    log_em, init, trans = _hmm()
    chain = vs.CategoricalChain(init, trans)
    zs = list(itertools.product(range(3), repeat=4))
    probs = np.exp(np.asarray(chain.log_prob(jnp.array(zs))))
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)
    n = 20000
    draws = np.asarray(chain.sample(seed=jax.random.key(9), sample_shape=(n,)))
    assert draws.shape == (n, 4) and draws.dtype == np.int32
    codes = draws @ (3 ** np.arange(3, -1, -1))
    freq = np.bincount(codes, minlength=81) / n
    se = np.sqrt(probs * (1 - probs) / n)
    assert np.all(np.abs(freq - probs) < 4.5 * se + 1e-12)


def test_discrete_sequences_through_estimate_vimco_and_score():
    log_em, init, trans = _hmm()
    hmm = dict(initial_logits=init, transition_logits=trans)
    exact = float(vs.hmm_log_likelihood(log_em, **hmm))

    def log_joint(z):
        return vs.hmm_log_joint(z, log_em, **hmm)

    def make_q(params):
        return vs.CategoricalChain(*params)

    q_exact = vs.hmm_posterior(log_em, **hmm)
    exact_params = (q_exact.log_initial, q_exact.log_transitions)
    est = vb.estimate(
        jax.random.key(10),
        log_joint,
        make_q,
        exact_params,
        num_samples=8,
        bound="iwae",
        estimator="vimco",
    )
    np.testing.assert_allclose(est.log_weights, exact, atol=1e-5)  # every weight is p(x)
    np.testing.assert_allclose(est.value, exact, atol=1e-5)
    # A worse q (the prior chain): the score-function ELBO's mean is the enumerated ELBO.
    prior_params = (jnp.asarray(init), jnp.asarray(trans))
    zs, lj = _enumerate(log_em, init, trans)
    q_probs = np.exp(np.asarray(make_q(prior_params).log_prob(zs)))
    elbo_exact = np.sum(q_probs * (lj - np.log(q_probs)))
    run = jax.jit(
        jax.vmap(
            lambda k: (
                vb.estimate(
                    k,
                    log_joint,
                    make_q,
                    prior_params,
                    num_samples=1,
                    bound="elbo",
                    estimator="score",
                ).value
            )
        )
    )
    values = np.asarray(run(jax.random.split(jax.random.key(11), 4000)))
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - elbo_exact) < 4.5 * se
    assert elbo_exact < exact - 10 * se


def test_bad_inputs_name_the_argument():
    x, params = _model()
    with pytest.raises(ValueError, match="`x`"):
        vs.kalman_log_likelihood(x[0], **params)
    with pytest.raises(ValueError, match="`emission`"):
        vs.kalman_filter(x, **{**params, "emission": np.eye(3)})
    with pytest.raises(ValueError, match="`transition_cov`"):
        vs.rts_smoother(x, **{**params, "transition_cov": np.eye(3)})
    prior, emission = _lgssm_prior(params)
    kwargs = dict(prior=prior, proposal=prior, emission=emission, initial_state=jnp.zeros(D))
    with pytest.raises(ValueError, match="`resampling`"):
        vs.fivo(jax.random.key(0), x, num_particles=4, resampling="stratified", **kwargs)
    with pytest.raises(ValueError, match="`num_particles`"):
        vs.fivo(jax.random.key(0), x, num_particles=0, **kwargs)
    with pytest.raises(ValueError, match="`ess_threshold`"):
        vs.fivo(jax.random.key(0), x, num_particles=4, ess_threshold=1.5, **kwargs)

    def per_dim_emission(state, z, t):
        return distrax.Normal(z, 1.0)

    with pytest.raises(ValueError, match="`emission`"):
        vs.elbo(
            jax.random.key(0),
            x,
            prior=prior,
            posterior=prior,
            emission=per_dim_emission,
            initial_state=jnp.zeros(D),
        )
    with pytest.raises(ValueError, match="`transition_logits`"):
        vs.hmm_log_likelihood(
            np.zeros((4, 3)), initial_logits=np.zeros(3), transition_logits=np.zeros((2, 2))
        )
    with pytest.raises(ValueError, match="`log_emissions`"):
        vs.hmm_posterior(
            np.zeros(3), initial_logits=np.zeros(3), transition_logits=np.zeros((3, 3))
        )
