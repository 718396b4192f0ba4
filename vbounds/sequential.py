"""Sequential latent-variable models: exact marginals, per-step ELBOs and FIVO.

Ground truth first: the Kalman filter gives the exact ``log p(x_{1:T})`` of a
linear-Gaussian state-space model (LG-SSM) and the Rauch-Tung-Striebel smoother its exact
posterior; the forward algorithm does the same for a discrete hidden Markov model (HMM).
Against them stand the bounds one trains with:

- :func:`elbo`, the per-step ELBO of a Markov variational posterior over ``lax.scan``,
  with analytic per-step KLs and a per-step KL weight;
- :func:`fivo`, the log of a particle filter's marginal-likelihood estimate;
- :class:`CategoricalChain` with :func:`hmm_posterior`, the discrete-latent route through
  :func:`vbounds.estimate` (score-function or VIMCO gradients).

Time is the leading axis of ``x`` everywhere: one sequence ``[T, ...]`` per call; batch
with ``jax.vmap``. Model callables take the carried ``state`` first and the 0-based step
``t`` (an int32 scalar, traced) last.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import multivariate_normal

from vbounds._validation import as_float_array, check_int, concrete_float
from vbounds.evaluation import effective_sample_size

__all__ = [
    "KalmanFilterResult",
    "SmootherResult",
    "kalman_filter",
    "kalman_log_likelihood",
    "rts_smoother",
    "SequentialELBO",
    "elbo",
    "FIVO",
    "fivo",
    "RESAMPLING",
    "CategoricalChain",
    "hmm_log_likelihood",
    "hmm_log_joint",
    "hmm_posterior",
]

# The values of `fivo`'s `resampling` argument.
RESAMPLING = ("multinomial", "systematic")


# ----------------------------------------------------------------------------------------
# Linear-Gaussian state space: Kalman filter and RTS smoother.


class KalmanFilterResult(NamedTuple):
    """Result of :func:`kalman_filter` (``T`` steps, latent size ``d``).

    Attributes:
      filtered_means: ``[T, d]``, the means of ``p(z_t | x_{1:t})``.
      filtered_covs: ``[T, d, d]``, their covariances.
      predicted_means: ``[T, d]``, the means of ``p(z_t | x_{1:t-1})`` (``init_mean`` at
        ``t = 1``).
      predicted_covs: ``[T, d, d]``, their covariances.
      log_likelihoods: ``[T]``, ``log p(x_t | x_{1:t-1})``; their sum is ``log p(x_{1:T})``.
    """

    filtered_means: jax.Array
    filtered_covs: jax.Array
    predicted_means: jax.Array
    predicted_covs: jax.Array
    log_likelihoods: jax.Array


class SmootherResult(NamedTuple):
    """Result of :func:`rts_smoother`.

    Attributes:
      means: ``[T, d]``, the means of ``p(z_t | x_{1:T})``.
      covs: ``[T, d, d]``, their covariances.
      gains: ``[T-1, d, d]``, the smoother gains ``J_t = P_t A^T (P_{t+1|t})^{-1}``: the
        backward kernel is ``p(z_t | z_{t+1}, x_{1:T}) = N(m_t + J_t (z_{t+1} - m_{t+1|t}),
        P_t - J_t P_{t+1|t} J_t^T)`` with the filter's moments.
      cross_covs: ``[T-1, d, d]``, ``Cov(z_t, z_{t+1} | x_{1:T}) = J_t P^s_{t+1}``.
    """

    means: jax.Array
    covs: jax.Array
    gains: jax.Array
    cross_covs: jax.Array


def _square(arr: jax.Array, size: int, name: str) -> None:
    if arr.shape != (size, size):
        raise ValueError(f"`{name}` must have shape ({size}, {size}), got {arr.shape}.")


def _lgssm_arrays(x, transition, transition_cov, emission, emission_cov, init_mean, init_cov):
    """Validates the LG-SSM arguments and returns them as float arrays of one dtype."""
    x = as_float_array(x, "x")
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"`x` must have shape [T, obs_dim] with T >= 1, got {x.shape}.")
    init_mean = as_float_array(init_mean, "init_mean")
    if init_mean.ndim != 1:
        raise ValueError(f"`init_mean` must have shape [latent_dim], got {init_mean.shape}.")
    d, p = init_mean.shape[0], x.shape[1]
    transition = as_float_array(transition, "transition")
    transition_cov = as_float_array(transition_cov, "transition_cov")
    init_cov = as_float_array(init_cov, "init_cov")
    emission = as_float_array(emission, "emission")
    emission_cov = as_float_array(emission_cov, "emission_cov")
    for arr, name in ((transition, "transition"), (transition_cov, "transition_cov")):
        _square(arr, d, name)
    _square(init_cov, d, "init_cov")
    _square(emission_cov, p, "emission_cov")
    if emission.shape != (p, d):
        raise ValueError(
            f"`emission` must have shape (obs_dim, latent_dim) = ({p}, {d}), got {emission.shape}."
        )
    dtype = jnp.result_type(
        x, transition, transition_cov, emission, emission_cov, init_mean, init_cov
    )
    return tuple(
        a.astype(dtype)
        for a in (x, transition, transition_cov, emission, emission_cov, init_mean, init_cov)
    )


def _symmetrise(m: jax.Array) -> jax.Array:
    return 0.5 * (m + m.T)


def kalman_filter(
    x: jax.typing.ArrayLike,
    *,
    transition: jax.typing.ArrayLike,
    transition_cov: jax.typing.ArrayLike,
    emission: jax.typing.ArrayLike,
    emission_cov: jax.typing.ArrayLike,
    init_mean: jax.typing.ArrayLike,
    init_cov: jax.typing.ArrayLike,
) -> KalmanFilterResult:
    """Kalman filter of a linear-Gaussian state-space model (``lax.scan`` over time).

    Model: ``z_1 ~ N(init_mean, init_cov)``, ``z_t = A z_{t-1} + N(0, Q)``,
    ``x_t = C z_t + N(0, R)``. Each step predicts ``p(z_t | x_{1:t-1}) = N(m^-, P^-)``,
    scores ``log p(x_t | x_{1:t-1}) = log N(x_t | C m^-, C P^- C^T + R)`` and updates with
    the gain ``K = P^- C^T S^{-1}`` (Joseph form, which keeps covariances symmetric
    positive semi-definite in float32).

    Args:
      x: ``[T, obs_dim]`` observations.
      transition: ``A``, ``[d, d]``.
      transition_cov: ``Q``, ``[d, d]``.
      emission: ``C``, ``[obs_dim, d]``.
      emission_cov: ``R``, ``[obs_dim, obs_dim]``.
      init_mean: ``[d]``, the mean of ``z_1``.
      init_cov: ``[d, d]``, the covariance of ``z_1``.

    Returns:
      A :class:`KalmanFilterResult`.

    References:
      Kalman, A New Approach to Linear Filtering and Prediction Problems, 1960.

    Examples:
      >>> r = vb.sequential.kalman_filter(
      ...     jnp.array([[1.0]]), transition=jnp.eye(1), transition_cov=jnp.eye(1),
      ...     emission=jnp.eye(1), emission_cov=jnp.eye(1), init_mean=jnp.zeros(1),
      ...     init_cov=jnp.eye(1))
      >>> round(float(r.filtered_means[0, 0]), 4)  # prior N(0, 1), noise 1: x / 2
      0.5
    """
    x, a, q, c, r, m0, p0 = _lgssm_arrays(
        x, transition, transition_cov, emission, emission_cov, init_mean, init_cov
    )
    eye = jnp.eye(m0.shape[0], dtype=m0.dtype)

    def step(carry, x_t):
        m_pred, p_pred = carry
        s = _symmetrise(c @ p_pred @ c.T + r)
        log_lik = multivariate_normal.logpdf(x_t, c @ m_pred, s)
        gain = jnp.linalg.solve(s, c @ p_pred).T
        m = m_pred + gain @ (x_t - c @ m_pred)
        i_kc = eye - gain @ c
        p = _symmetrise(i_kc @ p_pred @ i_kc.T + gain @ r @ gain.T)
        next_carry = (a @ m, _symmetrise(a @ p @ a.T + q))
        return next_carry, (m, p, m_pred, p_pred, log_lik)

    _, outputs = jax.lax.scan(step, (m0, p0), x)
    return KalmanFilterResult(*outputs)


def kalman_log_likelihood(
    x: jax.typing.ArrayLike,
    *,
    transition: jax.typing.ArrayLike,
    transition_cov: jax.typing.ArrayLike,
    emission: jax.typing.ArrayLike,
    emission_cov: jax.typing.ArrayLike,
    init_mean: jax.typing.ArrayLike,
    init_cov: jax.typing.ArrayLike,
) -> jax.Array:
    """Exact ``log p(x_{1:T})`` of a linear-Gaussian state-space model (exact, in nats).

    .. math:: \\log p(x_{1:T}) = \\sum_t \\log \\mathcal{N}(x_t \\mid C m_{t|t-1},
        C P_{t|t-1} C^T + R)

    The sum of :func:`kalman_filter`'s per-step predictive log-likelihoods; the ground truth
    for sequential ELBOs and particle filters. Same arguments as :func:`kalman_filter`.

    Returns:
      A scalar.

    References:
      Kalman, 1960; Roweis & Ghahramani, A Unifying Review of Linear Gaussian Models, 1999.

    Examples:
      >>> ll = vb.sequential.kalman_log_likelihood(
      ...     jnp.zeros((1, 1)), transition=jnp.eye(1), transition_cov=jnp.eye(1),
      ...     emission=jnp.eye(1), emission_cov=jnp.eye(1), init_mean=jnp.zeros(1),
      ...     init_cov=jnp.eye(1))
      >>> round(float(ll), 4)  # log N(0 | 0, 2)
      -1.2655
    """
    return jnp.sum(
        kalman_filter(
            x,
            transition=transition,
            transition_cov=transition_cov,
            emission=emission,
            emission_cov=emission_cov,
            init_mean=init_mean,
            init_cov=init_cov,
        ).log_likelihoods
    )


def rts_smoother(
    x: jax.typing.ArrayLike,
    *,
    transition: jax.typing.ArrayLike,
    transition_cov: jax.typing.ArrayLike,
    emission: jax.typing.ArrayLike,
    emission_cov: jax.typing.ArrayLike,
    init_mean: jax.typing.ArrayLike,
    init_cov: jax.typing.ArrayLike,
) -> SmootherResult:
    """Rauch-Tung-Striebel smoother: the exact posterior marginals ``p(z_t | x_{1:T})``.

    A backward ``lax.scan`` over the filter's moments:
    ``J_t = P_t A^T P_{t+1|t}^{-1}``, ``m^s_t = m_t + J_t (m^s_{t+1} - m_{t+1|t})``,
    ``P^s_t = P_t + J_t (P^s_{t+1} - P_{t+1|t}) J_t^T``. Same arguments as
    :func:`kalman_filter`.

    Returns:
      A :class:`SmootherResult` (marginals, gains and lag-one cross-covariances, which
      together give the whole Gaussian posterior over ``z_{1:T}``).

    References:
      Rauch, Tung & Striebel, Maximum Likelihood Estimates of Linear Dynamic Systems, 1965.

    Examples:
      >>> s = vb.sequential.rts_smoother(
      ...     jnp.array([[0.0], [2.0]]), transition=jnp.eye(1), transition_cov=jnp.eye(1),
      ...     emission=jnp.eye(1), emission_cov=jnp.eye(1), init_mean=jnp.zeros(1),
      ...     init_cov=jnp.eye(1))
      >>> round(float(s.means[0, 0]), 4)  # the later observation pulls z_1 up
      0.4
    """
    f = kalman_filter(
        x,
        transition=transition,
        transition_cov=transition_cov,
        emission=emission,
        emission_cov=emission_cov,
        init_mean=init_mean,
        init_cov=init_cov,
    )
    a = jnp.asarray(transition, f.filtered_means.dtype)

    def step(carry, inputs):
        m_next, p_next = carry
        m, p, m_pred_next, p_pred_next = inputs
        gain = jnp.linalg.solve(p_pred_next, a @ p).T
        m_s = m + gain @ (m_next - m_pred_next)
        p_s = _symmetrise(p + gain @ (p_next - p_pred_next) @ gain.T)
        return (m_s, p_s), (m_s, p_s, gain, gain @ p_next)

    last = (f.filtered_means[-1], f.filtered_covs[-1])
    inputs = (
        f.filtered_means[:-1],
        f.filtered_covs[:-1],
        f.predicted_means[1:],
        f.predicted_covs[1:],
    )
    _, (means, covs, gains, cross) = jax.lax.scan(step, last, inputs, reverse=True)
    return SmootherResult(
        means=jnp.concatenate([means, last[0][None]]),
        covs=jnp.concatenate([covs, last[1][None]]),
        gains=gains,
        cross_covs=cross,
    )


# ----------------------------------------------------------------------------------------
# Per-step ELBO of a Markov variational posterior.


class SequentialELBO(NamedTuple):
    """Result of :func:`elbo`: one draw of the per-step ELBO of one sequence.

    Attributes:
      value: ``sum_t (log_likelihoods[t] - kl_weight[t] * kls[t])``, a scalar.
      log_likelihoods: ``[T]``, ``log p(x_t | z_t, state)`` at the sampled ``z_t``.
      kls: ``[T]``, the per-step KL terms (analytic, or ``log q(z_t) - log p(z_t)`` at the
        sample).
    """

    value: jax.Array
    log_likelihoods: jax.Array
    kls: jax.Array


def _default_update(state: Any, z: jax.Array, t: jax.Array) -> jax.Array:
    del state, t
    return z


def _time_first(x: jax.typing.ArrayLike) -> tuple[jax.Array, int]:
    arr = jnp.asarray(x)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError(f"`x` must have a leading time axis of length >= 1, got {arr.shape}.")
    return arr, arr.shape[0]


def _scalar_log_prob(value: jax.Array, name: str) -> jax.Array:
    if jnp.shape(value) != ():
        raise ValueError(
            f"`{name}` must return a distribution whose log_prob of one step is a scalar, got "
            f"shape {jnp.shape(value)}; wrap per-dimension distributions in "
            "distrax.Independent."
        )
    return value


def _kl_weights(kl_weight: jax.typing.ArrayLike, num_steps: int) -> jax.Array:
    w = as_float_array(kl_weight, "kl_weight")
    if w.ndim > 1 or (w.ndim == 1 and w.shape[0] != num_steps):
        raise ValueError(
            f"`kl_weight` must be a scalar or have shape ({num_steps},) (one per step), got "
            f"{w.shape}."
        )
    return jnp.broadcast_to(w, (num_steps,))


def elbo(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    *,
    prior: Callable[[Any, jax.Array], Any],
    posterior: Callable[[Any, jax.Array], Any],
    emission: Callable[[Any, jax.Array, jax.Array], Any],
    initial_state: Any,
    update: Callable[[Any, jax.Array, jax.Array], Any] | None = None,
    kl_weight: jax.typing.ArrayLike = 1.0,
    analytic_kl: bool = True,
) -> SequentialELBO:
    """Per-step ELBO of a sequential latent-variable model, one draw (a lower bound).

    .. math:: \\mathcal{L} = \\sum_{t=1}^T \\mathbb{E}_q\\big[\\log p(x_t \\mid z_t, s_{t-1})
        - w_t \\, \\mathrm{KL}(q(z_t \\mid s_{t-1}) \\,\\|\\, p(z_t \\mid s_{t-1}))\\big]

    A ``lax.scan`` over time draws ``z_t ~ q(z_t | s_{t-1})`` (reparameterised when ``q``
    is), scores ``x_t`` and carries the state ``s_t = update(s_{t-1}, z_t, t)`` (``s_t = z_t``
    by default: a state-space model; a recurrent model carries its hidden state too).
    Whether ``q`` is *filtering* (conditions on ``x_{1:t}``) or *smoothing* (on ``x_{1:T}``)
    is up to the ``posterior`` callable, which closes over ``x`` or features of it. With
    ``kl_weight = 1`` the expectation is the ELBO, ``<= log p(x_{1:T})``, with equality when
    ``q`` is the exact posterior; a per-step weight ``w_t`` is PV-RNN's meta-prior.

    Args:
      key: a PRNG key.
      x: ``[T, ...]`` observations of one sequence.
      prior: ``prior(state, t)`` -> the distribution of ``z_t`` given the previous state
        (``initial_state`` at ``t = 0``).
      posterior: ``posterior(state, t)`` -> the variational distribution of ``z_t``.
      emission: ``emission(state, z_t, t)`` -> the distribution of ``x_t`` (``log_prob`` of
        one step must be a scalar).
      initial_state: the state before the first step (a pytree; its structure is the
        carry's).
      update: ``update(state, z_t, t)`` -> the next state; ``None`` keeps ``z_t``.
      kl_weight: a scalar or ``[T]`` per-step weight on the KL terms.
      analytic_kl: use ``posterior(...).kl_divergence(prior(...))`` (distrax's closed
        forms, e.g. Gaussian-Gaussian: lower variance); ``False`` uses the one-sample
        ``log q(z_t) - log p(z_t)``, for pairs with no closed form.

    Returns:
      A :class:`SequentialELBO` (the value and the per-step terms).

    References:
      Chung et al., A Recurrent Latent Variable Model for Sequential Data, 2015; Krishnan,
      Shalit & Sontag, Structured Inference Networks for Nonlinear State Space Models,
      2017; Ahmadi & Tani, A Novel Predictive-Coding-Inspired Variational RNN Model
      (PV-RNN), 2019.

    Examples:
      >>> normal = lambda m: distrax.MultivariateNormalDiag(m, jnp.ones(1))
      >>> out = vb.sequential.elbo(
      ...     jax.random.key(0), jnp.zeros((3, 1)), prior=lambda s, t: normal(s),
      ...     posterior=lambda s, t: normal(s), emission=lambda s, z, t: normal(z),
      ...     initial_state=jnp.zeros(1))
      >>> out.kls.tolist()  # q equals the prior: every KL is zero
      [0.0, 0.0, 0.0]
    """
    x, num_steps = _time_first(x)
    weights = _kl_weights(kl_weight, num_steps)
    update = _default_update if update is None else update
    keys = jax.random.split(key, num_steps)

    def step(state, inputs):
        t, key_t, x_t = inputs
        p, q = prior(state, t), posterior(state, t)
        z = q.sample(seed=key_t)
        log_lik = _scalar_log_prob(emission(state, z, t).log_prob(x_t), "emission")
        if analytic_kl:
            kl = q.kl_divergence(p)
        else:
            kl = q.log_prob(z) - p.log_prob(z)
        kl = _scalar_log_prob(kl, "posterior")
        return update(state, z, t), (log_lik, kl)

    steps = jnp.arange(num_steps, dtype=jnp.int32)
    _, (log_liks, kls) = jax.lax.scan(step, initial_state, (steps, keys, x))
    return SequentialELBO(jnp.sum(log_liks - weights * kls), log_liks, kls)


# ----------------------------------------------------------------------------------------
# FIVO: the log of a particle filter's marginal-likelihood estimate.


class FIVO(NamedTuple):
    """Result of :func:`fivo` (``K`` particles, ``T`` steps).

    Attributes:
      value: the log of the particle filter's estimate of ``p(x_{1:T})``, a scalar.
      log_weights: ``[K]``, the particles' log-weights accumulated since the last
        resampling, at the last step (never resampled after it).
      states: the particles' final states (leading axis ``K``), aligned with
        ``log_weights``: together a weighted sample of the filtering distribution.
      ess: ``[T]``, the effective sample size at each step before resampling.
      resampled: ``[T]`` bools, whether the particles were resampled after that step.
    """

    value: jax.Array
    log_weights: jax.Array
    states: Any
    ess: jax.Array
    resampled: jax.Array


def _ancestors(key, log_w: jax.Array, resampling: str) -> jax.Array:
    """Ancestor indices ``[K]`` drawn with probabilities ``softmax(log_w)``."""
    k = log_w.shape[0]
    if resampling == "multinomial":
        # K independent uniforms through the cumulative weights: O(K log K), where
        # jax.random.categorical with K draws would build K x K Gumbel noise.
        points = jax.random.uniform(key, (k,), dtype=log_w.dtype)
    else:
        # Systematic: one uniform, K evenly spaced points.
        points = (jax.random.uniform(key, dtype=log_w.dtype) + jnp.arange(k, dtype=log_w.dtype)) / k
    cumulative = jnp.cumsum(jax.nn.softmax(log_w))
    return jnp.minimum(jnp.searchsorted(cumulative, points), k - 1)


def fivo(
    key: jax.Array,
    x: jax.typing.ArrayLike,
    *,
    prior: Callable[[Any, jax.Array], Any],
    proposal: Callable[[Any, jax.Array], Any],
    emission: Callable[[Any, jax.Array, jax.Array], Any],
    initial_state: Any,
    num_particles: int,
    update: Callable[[Any, jax.Array, jax.Array], Any] | None = None,
    resampling: str = "multinomial",
    ess_threshold: float = 0.5,
) -> FIVO:
    """Filtering variational objective: the log of a particle filter's estimate of ``p(x)``.

    .. math:: \\hat p(x_{1:T}) = \\prod_t \\frac{\\sum_k w_{t-1}^k \\alpha_t^k}
        {\\sum_k w_{t-1}^k}, \\quad \\alpha_t^k = \\frac{p(z_t^k \\mid s^k_{t-1})
        \\, p(x_t \\mid z_t^k, s^k_{t-1})}{q(z_t^k \\mid s^k_{t-1})}

    Sequential Monte Carlo with ``num_particles`` particles: each step proposes
    ``z_t ~ proposal``, multiplies the weights by ``alpha_t`` and, when the effective
    sample size falls below ``ess_threshold * K``, resamples (the weights reset to equal).
    ``hat p`` is unbiased for any proposal, so ``E[value] <= log p(x_{1:T})`` (a lower
    bound). With one step, or ``ess_threshold=0`` (never resample), it is
    :func:`vbounds.iwae` over whole sequences; as ``K`` grows it tends to ``log p(x)``.
    ``proposal = prior`` is the bootstrap particle filter, an evaluation tool.

    Gradients: resampling draws discrete ancestors, which autodiff does not see, so
    ``jax.grad`` of ``value`` is FIVO's *biased* gradient: the score-function terms of
    the resampling steps are dropped (Maddison et al., Le et al. and Naesseth et al.
    2018 all train this way, as those terms have high variance). Reparameterised
    proposal samples and the weights carry gradients; the resampling is computed on
    stopped weights.

    Args:
      key: a PRNG key.
      x: ``[T, ...]`` observations of one sequence.
      prior: ``prior(state, t)`` -> the distribution of ``z_t`` (as in :func:`elbo`).
      proposal: ``proposal(state, t)`` -> the proposal distribution of ``z_t``.
      emission: ``emission(state, z_t, t)`` -> the distribution of ``x_t``.
      initial_state: the state before the first step, shared by all particles.
      num_particles: ``K`` (a static int).
      update: ``update(state, z_t, t)`` -> the next state; ``None`` keeps ``z_t``.
      resampling: one of :data:`RESAMPLING`, ``"multinomial"`` or ``"systematic"`` (lower
        variance).
      ess_threshold: resample when ESS ``< ess_threshold * K``; ``1.0`` resamples at every
        step with unequal weights, ``0.0`` never.

    Returns:
      A :class:`FIVO`.

    References:
      Maddison et al., Filtering Variational Objectives, 2017; Le et al., Auto-Encoding
      Sequential Monte Carlo, 2018; Naesseth et al., Variational Sequential Monte Carlo,
      2018.

    Examples:
      >>> normal = lambda m: distrax.MultivariateNormalDiag(m, jnp.ones(1))
      >>> out = vb.sequential.fivo(
      ...     jax.random.key(0), jnp.zeros((1, 1)), prior=lambda s, t: normal(s),
      ...     proposal=lambda s, t: normal(s), emission=lambda s, z, t: normal(z),
      ...     initial_state=jnp.zeros(1), num_particles=4)
      >>> bool(jnp.isclose(out.value, vb.iwae(out.log_weights)))  # one step: IWAE
      True
    """
    x, num_steps = _time_first(x)
    k = check_int(num_particles, "num_particles")
    if resampling not in RESAMPLING:
        raise ValueError(f"`resampling` must be one of {RESAMPLING}, got {resampling!r}.")
    threshold = concrete_float(ess_threshold, "ess_threshold")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"`ess_threshold` must be in [0, 1], got {ess_threshold}.")
    update = _default_update if update is None else update

    def particle(state, key_t, t, x_t):
        p, q = prior(state, t), proposal(state, t)
        z = q.sample(seed=key_t)
        log_lik = _scalar_log_prob(emission(state, z, t).log_prob(x_t), "emission")
        log_alpha = _scalar_log_prob(p.log_prob(z) - q.log_prob(z), "proposal") + log_lik
        return update(state, z, t), log_alpha

    def step(carry, inputs):
        states, log_w = carry
        t, key_t, x_t = inputs
        key_prop, key_resample = jax.random.split(key_t)
        states, log_alpha = jax.vmap(particle, in_axes=(0, 0, None, None))(
            states, jax.random.split(key_prop, k), t, x_t
        )
        new_log_w = log_w + log_alpha
        increment = jax.nn.logsumexp(new_log_w) - jax.nn.logsumexp(log_w)
        ess = effective_sample_size(jax.lax.stop_gradient(new_log_w))
        resample = (ess < ess_threshold * k) & (t < num_steps - 1)
        index = jnp.where(
            resample,
            _ancestors(key_resample, jax.lax.stop_gradient(new_log_w), resampling),
            jnp.arange(k),
        )
        states = jax.tree.map(lambda s: s[index], states)
        new_log_w = jnp.where(resample, jnp.zeros_like(new_log_w), new_log_w)
        return (states, new_log_w), (increment, ess, resample)

    states = jax.tree.map(lambda s: jnp.broadcast_to(s, (k, *jnp.shape(s))), initial_state)
    dtype = jnp.result_type(float)
    steps = jnp.arange(num_steps, dtype=jnp.int32)
    keys = jax.random.split(key, num_steps)
    (states, log_w), (increments, ess, resampled) = jax.lax.scan(
        step, (states, jnp.zeros((k,), dtype)), (steps, keys, x)
    )
    return FIVO(jnp.sum(increments), log_w, states, ess, resampled)


# ----------------------------------------------------------------------------------------
# Discrete latent chains: hidden Markov models.


def _chain_logits(initial_logits, transition_logits, num_steps: int | None = None):
    init = as_float_array(initial_logits, "initial_logits")
    if init.ndim != 1:
        raise ValueError(f"`initial_logits` must have shape [S], got {init.shape}.")
    s = init.shape[0]
    trans = as_float_array(transition_logits, "transition_logits")
    if trans.shape[-2:] != (s, s) or trans.ndim not in (2, 3):
        raise ValueError(
            f"`transition_logits` must have shape ({s}, {s}) or (T-1, {s}, {s}), got {trans.shape}."
        )
    if num_steps is not None:
        if trans.ndim == 3 and trans.shape[0] != num_steps - 1:
            raise ValueError(
                f"`transition_logits` must have T-1 = {num_steps - 1} matrices, got "
                f"{trans.shape[0]}."
            )
        trans = jnp.broadcast_to(trans, (num_steps - 1, s, s))
    return jax.nn.log_softmax(init), jax.nn.log_softmax(trans, axis=-1)


def _log_emissions(log_emissions: jax.typing.ArrayLike) -> jax.Array:
    arr = as_float_array(log_emissions, "log_emissions")
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"`log_emissions` must have shape [T, S] with T >= 1, got {arr.shape}.")
    return arr


class CategoricalChain:
    """A Markov chain over ``T`` categorical states: a distribution over sequences.

    ``p(z_{1:T}) = Cat(z_1 | softmax(initial_logits)) prod_t Cat(z_t | softmax(
    transition_logits[t-1][z_{t-1}]))``. It has ``sample(seed, sample_shape)`` and
    ``log_prob(z)``, so it serves as ``make_q``'s result in :func:`vbounds.estimate` with
    ``estimator="score"`` or ``"vimco"`` for discrete latent sequences.

    Args:
      initial_logits: ``[S]`` logits of ``z_1``.
      transition_logits: ``[T-1, S, S]`` (or ``[S, S]``, shared by every step, with
        ``num_steps``); row ``i`` holds the logits of ``z_t`` given ``z_{t-1} = i``.
      num_steps: ``T`` (a static int), needed only with a shared ``[S, S]`` matrix.

    Examples:
      >>> chain = vb.sequential.CategoricalChain(
      ...     jnp.log(jnp.array([0.5, 0.5])), jnp.log(jnp.array([[0.9, 0.1], [0.2, 0.8]])),
      ...     num_steps=3)
      >>> round(float(chain.log_prob(jnp.array([0, 0, 1]))), 4)  # log(0.5 * 0.9 * 0.1)
      -3.1011
    """

    def __init__(self, initial_logits, transition_logits, *, num_steps: int | None = None):
        trans = jnp.asarray(transition_logits)
        if trans.ndim == 3:
            steps = trans.shape[0] + 1
        elif num_steps is None:
            raise ValueError("`num_steps` is required with a shared [S, S] `transition_logits`.")
        else:
            steps = check_int(num_steps, "num_steps")
        self.num_steps = steps
        self.log_initial, self.log_transitions = _chain_logits(
            initial_logits, transition_logits, steps
        )

    def sample(self, *, seed: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """Draws int32 sequences of shape ``[*sample_shape, T]``."""
        n = math.prod(sample_shape)
        key_first, key_rest = jax.random.split(seed)
        first = jax.random.categorical(key_first, self.log_initial, shape=(n,))

        def step(z_prev, inputs):
            key_t, log_trans = inputs
            z = jax.random.categorical(key_t, log_trans[z_prev])
            return z, z

        keys = jax.random.split(key_rest, self.num_steps - 1)
        _, rest = jax.lax.scan(step, first, (keys, self.log_transitions))
        z = jnp.concatenate([first[None], rest], axis=0).T
        return z.reshape(*sample_shape, self.num_steps).astype(jnp.int32)

    def log_prob(self, z: jax.typing.ArrayLike) -> jax.Array:
        """``log p(z)`` for ``z`` of shape ``[..., T]``; returns ``[...]``."""
        z = jnp.asarray(z)
        if z.ndim < 1 or z.shape[-1] != self.num_steps:
            raise ValueError(f"`z` must have shape [..., {self.num_steps}], got {z.shape}.")
        first = self.log_initial[z[..., 0]]
        steps = jnp.arange(self.num_steps - 1)
        rest = self.log_transitions[steps, z[..., :-1], z[..., 1:]]
        return first + jnp.sum(rest, axis=-1)


def hmm_log_likelihood(
    log_emissions: jax.typing.ArrayLike,
    *,
    initial_logits: jax.typing.ArrayLike,
    transition_logits: jax.typing.ArrayLike,
) -> jax.Array:
    """Exact ``log p(x_{1:T})`` of a hidden Markov model by the forward algorithm (exact).

    .. math:: \\log p(x_{1:T}) = \\log \\sum_{z_{1:T}} p(z_1) \\prod_{t>1} p(z_t \\mid
        z_{t-1}) \\prod_t p(x_t \\mid z_t)

    computed in log space in ``O(T S^2)``.

    Args:
      log_emissions: ``[T, S]``, ``log p(x_t | z_t = s)`` at the observed ``x_t``.
      initial_logits: ``[S]`` logits of ``z_1`` (normalised here).
      transition_logits: ``[S, S]`` or ``[T-1, S, S]``; row ``i``: logits of ``z_t`` given
        ``z_{t-1} = i``.

    Returns:
      A scalar.

    References:
      Rabiner, A Tutorial on Hidden Markov Models, 1989.

    Examples:
      >>> ll = vb.sequential.hmm_log_likelihood(
      ...     jnp.zeros((3, 2)), initial_logits=jnp.zeros(2), transition_logits=jnp.zeros((2, 2)))
      >>> round(float(ll), 4)  # every emission has probability one
      0.0
    """
    log_em = _log_emissions(log_emissions)
    log_init, log_trans = _chain_logits(initial_logits, transition_logits, log_em.shape[0])

    def step(log_alpha, inputs):
        log_trans_t, log_em_t = inputs
        log_alpha = jax.nn.logsumexp(log_alpha[:, None] + log_trans_t, axis=0) + log_em_t
        return log_alpha, None

    log_alpha, _ = jax.lax.scan(step, log_init + log_em[0], (log_trans, log_em[1:]))
    return jax.nn.logsumexp(log_alpha)


def hmm_log_joint(
    z: jax.typing.ArrayLike,
    log_emissions: jax.typing.ArrayLike,
    *,
    initial_logits: jax.typing.ArrayLike,
    transition_logits: jax.typing.ArrayLike,
) -> jax.Array:
    """``log p(x_{1:T}, z_{1:T})`` of a hidden Markov model for state sequences ``z`` (exact).

    Args:
      z: ``[..., T]`` integer state sequences (e.g. ``[K, T]`` samples).
      log_emissions: ``[T, S]``, ``log p(x_t | z_t = s)``.
      initial_logits: ``[S]``.
      transition_logits: ``[S, S]`` or ``[T-1, S, S]``.

    Returns:
      ``[...]``, one value per sequence.

    Examples:
      >>> lj = vb.sequential.hmm_log_joint(
      ...     jnp.array([0, 1]), jnp.zeros((2, 2)), initial_logits=jnp.zeros(2),
      ...     transition_logits=jnp.zeros((2, 2)))
      >>> round(float(lj), 4)  # log(1/2 * 1/2)
      -1.3863
    """
    log_em = _log_emissions(log_emissions)
    chain = CategoricalChain(initial_logits, transition_logits, num_steps=log_em.shape[0])
    z = jnp.asarray(z)
    emitted = log_em[jnp.arange(log_em.shape[0]), z]
    return chain.log_prob(z) + jnp.sum(emitted, axis=-1)


def hmm_posterior(
    log_emissions: jax.typing.ArrayLike,
    *,
    initial_logits: jax.typing.ArrayLike,
    transition_logits: jax.typing.ArrayLike,
) -> CategoricalChain:
    """The exact posterior ``p(z_{1:T} | x_{1:T})`` of an HMM, as a :class:`CategoricalChain`.

    The posterior of an HMM is itself a Markov chain:
    ``p(z_t | z_{t-1}, x_{1:T}) \\propto p(z_t | z_{t-1}) p(x_t | z_t) beta_t(z_t)`` with the
    backward messages ``beta_t(s) = p(x_{t+1:T} | z_t = s)``. With it as ``q`` every
    importance weight equals ``p(x_{1:T})``.

    Args:
      log_emissions: ``[T, S]``, ``log p(x_t | z_t = s)``.
      initial_logits: ``[S]``.
      transition_logits: ``[S, S]`` or ``[T-1, S, S]``.

    Returns:
      A :class:`CategoricalChain` with ``T - 1`` transition matrices.

    References:
      Rabiner, 1989 (forward-backward).

    Examples:
      >>> q = vb.sequential.hmm_posterior(
      ...     jnp.log(jnp.array([[1.0, 0.0], [0.5, 0.5]])), initial_logits=jnp.zeros(2),
      ...     transition_logits=jnp.zeros((2, 2)))
      >>> round(float(q.log_prob(jnp.array([0, 1]))), 4)  # x_1 rules out z_1 = 1
      -0.6931
    """
    log_em = _log_emissions(log_emissions)
    log_init, log_trans = _chain_logits(initial_logits, transition_logits, log_em.shape[0])

    def step(log_beta_next, inputs):
        log_trans_t, log_em_next = inputs
        # Unnormalised p(z_{t+1} = j | z_t = i, x): the posterior transition, row by row.
        logits = log_trans_t + (log_em_next + log_beta_next)[None, :]
        return jax.nn.logsumexp(logits, axis=1), logits

    log_beta_last = jnp.zeros_like(log_em[0])
    log_beta_first, logits = jax.lax.scan(
        step, log_beta_last, (log_trans, log_em[1:]), reverse=True
    )
    return CategoricalChain(log_init + log_em[0] + log_beta_first, logits)
