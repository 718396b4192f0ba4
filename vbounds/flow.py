"""Flow matching (``vb.flow``): conditional and variational flow matching, CatFlow, ODE likelihoods.

Conventions (Lipman et al. 2023; Liu et al. 2023): time runs from the source at ``t = 0``
(``x0 ~ N(0, I)`` unless given) to the data at ``t = 1``. An affine probability path is
``x_t = alpha(t) x1 + sigma(t) x0`` with the conditional velocity
``u_t = alpha'(t) x1 + sigma'(t) x0``; a model is a velocity field ``velocity_fn(x_t, t)``
shaped like the data. Losses are per-example scalars (``jax.vmap`` over a batch);
``ode_log_likelihood`` returns a log-density (nats), not a loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from vbounds._validation import check_int
from vbounds.diffusion._common import VLBTerms, check_callable, check_choice, float_data
from vbounds.diffusion.gaussian import gaussian_vlb
from vbounds.diffusion.schedules import linear_gamma

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

METHODS = frozenset({"euler", "rk4"})
TRACES = frozenset({"exact", "hutchinson"})
_LOG_2PI = math.log(2.0 * math.pi)


def _time(t, dtype) -> Array:
    t = jnp.asarray(t, dtype)
    if t.ndim:
        raise ValueError(f"`t` must be a scalar time, got shape {t.shape}.")
    return t


def affine_path(
    x0: ArrayLike, x1: ArrayLike, t: ArrayLike, alpha_fn: Callable, sigma_fn: Callable
) -> tuple[Array, Array]:
    """A point and the conditional velocity of an affine probability path.

    .. math:: x_t = \\alpha(t) x_1 + \\sigma(t) x_0, \\quad
       u_t = \\alpha'(t) x_1 + \\sigma'(t) x_0

    with the derivatives by forward-mode autodiff.

    Args:
      x0: the source point, shaped like ``x1``.
      x1: the data point.
      t: a scalar time in ``[0, 1]``.
      alpha_fn: ``alpha(t)``, from 0 (or near it) at ``t = 0`` to 1 at ``t = 1``.
      sigma_fn: ``sigma(t)``, from 1 to 0 (or near it).

    Returns:
      ``(x_t, u_t)``, each shaped like ``x1``.

    References:
      Lipman et al., Flow Matching for Generative Modeling, 2023.

    Examples:
      >>> x_t, u_t = vb.flow.affine_path(jnp.zeros(1), jnp.ones(1), 0.25,
      ...                                lambda t: t**2, lambda t: 1.0 - t)
      >>> float(x_t[0]), float(u_t[0])  # t^2 and 2t at x0 = 0, x1 = 1
      (0.0625, 0.5)
    """
    x1 = float_data(x1, "x1")
    x0 = float_data(x0, "x0")
    if x0.shape != x1.shape:
        raise ValueError(f"`x0` must have the shape of `x1` {x1.shape}, got {x0.shape}.")
    check_callable(alpha_fn, "alpha_fn")
    check_callable(sigma_fn, "sigma_fn")
    t = _time(t, x1.dtype)
    one = jnp.ones_like(t)
    alpha, dalpha = jax.jvp(alpha_fn, (t,), (one,))
    sigma, dsigma = jax.jvp(sigma_fn, (t,), (one,))
    return alpha * x1 + sigma * x0, dalpha * x1 + dsigma * x0


def ot_path(
    x0: ArrayLike, x1: ArrayLike, t: ArrayLike, *, sigma_min: float = 0.0
) -> tuple[Array, Array]:
    """The optimal-transport (rectified flow) path: a straight line from ``x0`` to ``x1``.

    .. math:: x_t = t x_1 + (1 - (1 - \\sigma_{min}) t) x_0, \\quad
       u_t = x_1 - (1 - \\sigma_{min}) x_0

    ``sigma_min = 0`` is rectified flow's interpolation ``(1 - t) x0 + t x1``.

    Args:
      x0: the source point.
      x1: the data point.
      t: a scalar time in ``[0, 1]``.
      sigma_min: the noise left at ``t = 1``.

    Returns:
      ``(x_t, u_t)``.

    References:
      Lipman et al., Flow Matching for Generative Modeling, 2023; Liu, Gong & Liu, Flow
      Straight and Fast: Learning to Generate and Transfer Data with Rectified Flow, 2023.

    Examples:
      >>> x_t, u_t = vb.flow.ot_path(jnp.array([-1.0]), jnp.array([3.0]), 0.5)
      >>> float(x_t[0]), float(u_t[0])  # the midpoint; the velocity x1 - x0
      (1.0, 4.0)
    """
    return affine_path(x0, x1, t, lambda s: s, lambda s: 1.0 - (1.0 - sigma_min) * s)


def vp_path(
    x0: ArrayLike, x1: ArrayLike, t: ArrayLike, *, gamma_fn: Callable = linear_gamma
) -> tuple[Array, Array]:
    """The variance-preserving (diffusion) path in flow time: data at ``t = 1``.

    With a VDM schedule ``gamma`` (increasing in diffusion time ``1 - t``):

    .. math:: \\alpha(t)^2 = \\mathrm{sigmoid}(-\\gamma(1 - t)), \\quad
       \\sigma(t)^2 = \\mathrm{sigmoid}(\\gamma(1 - t)).

    Args:
      x0: the source (noise) point.
      x1: the data point.
      t: a scalar time in ``[0, 1]``.
      gamma_fn: the schedule, as in ``vb.diffusion.gaussian_vlb``.

    Returns:
      ``(x_t, u_t)``.

    References:
      Lipman et al., Flow Matching for Generative Modeling, 2023; Kingma et al.,
      Variational Diffusion Models, 2021.

    Examples:
      >>> x_t, _ = vb.flow.vp_path(jnp.zeros(1), jnp.ones(1), 1.0)
      >>> round(float(x_t[0]), 4)  # alpha(1)^2 = sigmoid(13.3): the data
      1.0
    """
    check_callable(gamma_fn, "gamma_fn")
    return affine_path(
        x0,
        x1,
        t,
        lambda s: jnp.sqrt(jax.nn.sigmoid(-gamma_fn(1.0 - s))),
        lambda s: jnp.sqrt(jax.nn.sigmoid(gamma_fn(1.0 - s))),
    )


def _draws(key, x1, t, x0, source_shape):
    """A given or drawn time ``t ~ U(0, 1)`` and source ``x0 ~ N(0, I)``."""
    k_t, k_x0 = jax.random.split(key)
    if t is None:
        t = jax.random.uniform(k_t, (), x1.dtype)
    t = _time(t, x1.dtype)
    if x0 is None:
        x0 = jax.random.normal(k_x0, source_shape, x1.dtype)
    else:
        x0 = float_data(x0, "x0").astype(x1.dtype)
        if x0.shape != source_shape:
            raise ValueError(f"`x0` must have shape {source_shape}, got {x0.shape}.")
    return t, x0


def _velocity(velocity_fn, x_t, t):
    v = jnp.asarray(velocity_fn(x_t, t))
    if v.shape != x_t.shape:
        raise ValueError(
            f"`velocity_fn` must return an array of the data shape {x_t.shape}, got {v.shape}."
        )
    return v


def cfm_loss(
    key: jax.Array,
    x1: ArrayLike,
    velocity_fn: Callable,
    *,
    path: Callable = ot_path,
    t: ArrayLike | None = None,
    x0: ArrayLike | None = None,
) -> Array:
    """One-draw conditional flow matching loss.

    .. math:: L = \\|v(x_t, t) - u_t(x_t \\mid x_1)\\|^2, \\quad t \\sim U(0, 1),\\;
       x_0 \\sim N(0, I)

    Its expectation differs from the (intractable) flow matching loss
    ``E||v - E[u_t | x_t]||^2`` by a constant, the conditional variance of ``u_t``, so both
    have the same minimiser, the marginal velocity. A loss, not a bound on the likelihood.

    Args:
      key: PRNG key (one ``t`` and one ``x0``).
      x1: one data point, any shape.
      velocity_fn: ``velocity_fn(x_t, t) -> v`` shaped like ``x1``.
      path: ``path(x0, x1, t) -> (x_t, u_t)``: ``ot_path`` or ``vp_path`` (bind options
        with ``functools.partial``), or any affine path.
      t: optional scalar time instead of a draw.
      x0: optional source point instead of a draw.

    Returns:
      A scalar, the squared error summed over the event.

    References:
      Lipman et al., Flow Matching for Generative Modeling, 2023; Tong et al., Improving and
      Generalizing Flow-Based Generative Models with Minibatch Optimal Transport, 2024.

    Examples:
      >>> x1, x0 = jnp.array([1.0, 2.0]), jnp.zeros(2)
      >>> truth = lambda x_t, t: x1 - x0  # the conditional velocity itself
      >>> float(vb.flow.cfm_loss(jax.random.key(0), x1, truth, t=0.3, x0=x0))
      0.0
      >>> float(vb.flow.cfm_loss(jax.random.key(0), x1, lambda x, t: jnp.zeros(2), t=0.3, x0=x0))
      5.0
    """
    x1 = float_data(x1, "x1")
    check_callable(velocity_fn, "velocity_fn")
    check_callable(path, "path")
    t, x0 = _draws(key, x1, t, x0, x1.shape)
    x_t, u_t = path(x0, x1, t)
    return jnp.sum((_velocity(velocity_fn, x_t, t) - u_t) ** 2)


def endpoint_velocity(x1_hat: ArrayLike, x_t: ArrayLike, t: ArrayLike) -> Array:
    """The straight-path velocity towards a predicted end point (variational flow matching).

    .. math:: v(x_t, t) = \\frac{\\hat x_1 - x_t}{1 - t}

    On ``ot_path`` with ``sigma_min = 0``, ``u_t(x_t | x_1) = (x_1 - x_t) / (1 - t)`` is
    linear in ``x_1``, so the marginal velocity is this with ``x1_hat = E[x_1 | x_t]``: the
    mean of a variational posterior ``q(x_1 | x_t)`` (for CatFlow the softmax probabilities)
    gives the velocity to integrate with ``ode_sample``.

    Args:
      x1_hat: the posterior mean of the end point, shaped like ``x_t``.
      x_t: the current point.
      t: time in ``[0, 1)``.

    Returns:
      The velocity, shaped like ``x_t``.

    References:
      Eijkelboom et al., Variational Flow Matching for Graph Generation, 2024.

    Examples:
      >>> float(vb.flow.endpoint_velocity(jnp.array([1.0]), jnp.array([0.5]), 0.5)[0])
      1.0
    """
    x1_hat, x_t = jnp.asarray(x1_hat), jnp.asarray(x_t)
    return (x1_hat - x_t) / (1.0 - jnp.asarray(t))


def vfm_loss(
    key: jax.Array,
    x1: ArrayLike,
    posterior_fn: Callable,
    *,
    t: ArrayLike | None = None,
    x0: ArrayLike | None = None,
) -> Array:
    """One-draw variational flow matching loss: ``-log q(x_1 | x_t)`` on the straight path.

    .. math:: L = -\\log q_\\theta(x_1 \\mid x_t, t), \\quad x_t = (1 - t) x_0 + t x_1

    Minimising it over ``q`` matches ``q(x_1 | x_t)`` to the true end-point posterior in
    KL; the velocity is then ``endpoint_velocity(q's mean, x_t, t)``. A Gaussian ``q`` with
    fixed variance ``v`` gives ``(1 - t)^2 / (2 v)`` times the CFM integrand plus a
    constant. A loss, not a bound on the likelihood.

    Args:
      key: PRNG key (one ``t`` and one ``x0``).
      x1: one data point.
      posterior_fn: ``posterior_fn(x_t, t) -> distrax.Distribution`` over ``x1``; its
        ``log_prob(x1)`` is summed.
      t: optional scalar time.
      x0: optional source point.

    Returns:
      A scalar (nats).

    References:
      Eijkelboom et al., Variational Flow Matching for Graph Generation, 2024.

    Examples:
      >>> def posterior_fn(x_t, t):
      ...     return distrax.Normal(x_t, 1.0)
      >>> loss = vb.flow.vfm_loss(jax.random.key(0), jnp.zeros(1), posterior_fn, t=1.0,
      ...                         x0=jnp.ones(1))
      >>> round(float(loss), 4)  # at t = 1, x_t = x_1: -log N(0; 0, 1)
      0.9189
    """
    x1 = float_data(x1, "x1")
    check_callable(posterior_fn, "posterior_fn")
    t, x0 = _draws(key, x1, t, x0, x1.shape)
    x_t, _ = ot_path(x0, x1, t)
    return -jnp.sum(posterior_fn(x_t, t).log_prob(x1))


def catflow_loss(
    key: jax.Array,
    x1: ArrayLike,
    logits_fn: Callable,
    *,
    num_classes: int,
    t: ArrayLike | None = None,
    x0: ArrayLike | None = None,
) -> Array:
    """CatFlow: variational flow matching for categorical data, a cross-entropy.

    Classes are one-hot points ``e_{x_1}`` in ``R^K``; the straight path is
    ``x_t = (1 - t) x_0 + t e_{x_1}`` with ``x_0 ~ N(0, I_K)`` per position, and

    .. math:: L = -\\sum_\\ell \\log \\mathrm{softmax}(\\mathrm{logits}(x_t, t))_{\\ell, x_1^\\ell}.

    The velocity for sampling is ``endpoint_velocity(softmax(logits), x_t, t)``. A loss,
    not a bound on the likelihood.

    Args:
      key: PRNG key (one ``t`` and one ``x0``).
      x1: integer classes in ``[0, K)``, any event shape.
      logits_fn: ``logits_fn(x_t, t) -> [*event, K]``, ``x_t`` shaped ``[*event, K]``.
      num_classes: ``K``.
      t: optional scalar time.
      x0: optional source point, ``[*event, K]``.

    Returns:
      A scalar (nats).

    References:
      Eijkelboom et al., Variational Flow Matching for Graph Generation, 2024.

    Examples:
      >>> x1 = jnp.array([0, 2])
      >>> uniform = lambda x_t, t: jnp.zeros((2, 3))
      >>> round(float(vb.flow.catflow_loss(jax.random.key(0), x1, uniform, num_classes=3)), 4)
      2.1972
    """
    num_classes = check_int(num_classes, "num_classes", minimum=2)
    x1 = jnp.asarray(x1)
    if not jnp.issubdtype(x1.dtype, jnp.integer):
        raise TypeError(f"`x1` must hold integer classes, got dtype {x1.dtype}.")
    check_callable(logits_fn, "logits_fn")
    onehot = jax.nn.one_hot(x1, num_classes, dtype=jnp.result_type(float))
    t, x0 = _draws(key, onehot, t, x0, onehot.shape)
    x_t, _ = ot_path(x0, onehot, t)
    logits = jnp.asarray(logits_fn(x_t, t))
    if logits.shape != onehot.shape:
        raise ValueError(
            f"`logits_fn` must return logits of shape {onehot.shape}, got {logits.shape}."
        )
    return -jnp.sum(onehot * jax.nn.log_softmax(logits, axis=-1))


def _step(field, state, t, dt, method):
    if method == "euler":
        return jax.tree.map(lambda s, k: s + dt * k, state, field(state, t))

    def shift(a, k):
        return jax.tree.map(lambda s, d: s + a * d, state, k)

    k1 = field(state, t)
    k2 = field(shift(0.5 * dt, k1), t + 0.5 * dt)
    k3 = field(shift(0.5 * dt, k2), t + 0.5 * dt)
    k4 = field(shift(dt, k3), t + dt)
    return jax.tree.map(
        lambda s, a, b, c, d: s + dt / 6.0 * (a + 2.0 * b + 2.0 * c + d), state, k1, k2, k3, k4
    )


def _solve(field, state, t0, t1, num_steps, method):
    """Fixed-step integration of ``d state / dt = field(state, t)`` from ``t0`` to ``t1``."""
    dt = (t1 - t0) / num_steps

    def body(carry, i):
        return _step(field, carry, t0 + i * dt, dt, method), None

    index = jnp.arange(num_steps, dtype=jax.tree.leaves(state)[0].dtype)
    out, _ = jax.lax.scan(body, state, index)
    return out


def ode_sample(
    x0: ArrayLike, velocity_fn: Callable, *, num_steps: int, method: str = "rk4"
) -> Array:
    """Integrates ``dx/dt = v(x, t)`` from ``t = 0`` to ``t = 1`` (the flow's sample).

    Args:
      x0: the source point, any shape.
      velocity_fn: ``velocity_fn(x_t, t) -> v`` shaped like ``x0``.
      num_steps: the number of fixed steps (static).
      method: ``"rk4"`` (fourth order) or ``"euler"``.

    Returns:
      ``x_1``, shaped like ``x0``.

    References:
      Chen et al., Neural Ordinary Differential Equations, 2018.

    Examples:
      >>> x1 = vb.flow.ode_sample(jnp.array([1.0]), lambda x, t: x, num_steps=20)
      >>> round(float(x1[0]), 4)  # x' = x: e
      2.7183
    """
    x0 = float_data(x0, "x0")
    check_callable(velocity_fn, "velocity_fn")
    num_steps = check_int(num_steps, "num_steps")
    check_choice(method, METHODS, "method")
    return _solve(lambda x, t: _velocity(velocity_fn, x, t), x0, 0.0, 1.0, num_steps, method)


def _standard_normal_log_prob(x):
    return -0.5 * jnp.sum(x**2 + _LOG_2PI)


def ode_log_likelihood(
    x1: ArrayLike,
    velocity_fn: Callable,
    *,
    num_steps: int,
    method: str = "rk4",
    trace: str = "exact",
    key: jax.Array | None = None,
    source_log_prob: Callable | None = None,
) -> Array:
    """``log p_1(x_1)`` of a flow by the instantaneous change of variables.

    .. math:: \\log p_1(x_1) = \\log p_0(x(0)) - \\int_0^1 \\nabla \\cdot v(x(t), t)\\, dt

    solved backwards from ``x(1) = x_1`` with ``num_steps`` fixed Euler or RK4 steps of the
    augmented state ``(x, integral)``. ``trace="exact"`` takes the divergence as the trace
    of the Jacobian (``d`` forward-mode passes: small ``d``); ``"hutchinson"`` uses one
    Rademacher probe ``r`` for the whole path, ``r^T (dv/dx) r``, which is unbiased for the
    divergence, so the result is unbiased for the exact-trace value of the same solver
    (the path ``x(t)`` does not depend on ``r``). An estimate of the log-density (nats); its
    only error besides the probe is the ODE solver's, ``O(h)`` for Euler and ``O(h^4)`` for
    RK4.

    Args:
      x1: one data point, any shape.
      velocity_fn: ``velocity_fn(x_t, t) -> v`` shaped like ``x1``.
      num_steps: the number of fixed steps (static).
      method: ``"rk4"`` or ``"euler"``.
      trace: ``"exact"`` or ``"hutchinson"``.
      key: PRNG key of the Hutchinson probe (required for it, unused otherwise).
      source_log_prob: ``log p_0(x)``; the standard normal by default.

    Returns:
      A scalar, the log-density in nats.

    References:
      Chen et al., Neural Ordinary Differential Equations, 2018; Grathwohl et al., FFJORD:
      Free-form Continuous Dynamics for Scalable Reversible Generative Models, 2019;
      Hutchinson, A stochastic estimator of the trace of the influence matrix, 1989.

    Examples:
      >>> # v(x, t) = x: x(0) = x_1 / e, divergence 1: log N(x_1 / e; 0, 1) - 1
      >>> ll = vb.flow.ode_log_likelihood(jnp.array([1.0]), lambda x, t: x, num_steps=20)
      >>> exact = -0.5 * (jnp.exp(-2.0) + jnp.log(2 * jnp.pi)) - 1.0
      >>> round(float(ll), 4), round(float(exact), 4)
      (-1.9866, -1.9866)
    """
    x1 = float_data(x1, "x1")
    check_callable(velocity_fn, "velocity_fn")
    num_steps = check_int(num_steps, "num_steps")
    check_choice(method, METHODS, "method")
    check_choice(trace, TRACES, "trace")
    if source_log_prob is None:
        source_log_prob = _standard_normal_log_prob
    check_callable(source_log_prob, "source_log_prob")
    shape = x1.shape

    def flat_velocity(x_flat, t):
        return _velocity(velocity_fn, x_flat.reshape(shape), t).reshape(-1)

    if trace == "exact":

        def divergence(x_flat, t):
            return jnp.trace(jax.jacfwd(flat_velocity)(x_flat, t))

    else:
        if key is None:
            raise ValueError('`key` is required with trace="hutchinson".')
        probe = jax.random.rademacher(key, (x1.size,), x1.dtype)

        def divergence(x_flat, t):
            _, jvp = jax.jvp(lambda y: flat_velocity(y, t), (x_flat,), (probe,))
            return jnp.dot(probe, jvp)

    def field(state, t):
        x_flat, _ = state
        return flat_velocity(x_flat, t), divergence(x_flat, t)

    zero = jnp.zeros((), x1.dtype)
    # Backwards from t = 1 to 0 the integral accumulates -int_0^1 div dt.
    x0_flat, minus_integral = _solve(field, (x1.reshape(-1), zero), 1.0, 0.0, num_steps, method)
    return jnp.asarray(source_log_prob(x0_flat.reshape(shape))) + minus_integral


def flow_prior_vlb(
    key: jax.Array,
    z: ArrayLike,
    velocity_fn: Callable,
    *,
    t_min: float = 1e-3,
    t_max: float = 1.0 - 1e-3,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
    eps_0: ArrayLike | None = None,
) -> VLBTerms:
    """A flow-prior term of a latent model: the diffusion VLB implied by a velocity field.

    On the straight path ``x_t = (1 - t) x_0 + t z`` a velocity predicts the noise,
    ``eps_hat = x_t - t v(x_t, t)``, and ``x_t / sqrt(t^2 + (1 - t)^2)`` is a
    variance-preserving diffusion latent with ``gamma = 2 log((1 - t) / t)``. On flow times
    ``[t_min, t_max]`` (diffusion time ``s``, ``t = t_max - (t_max - t_min) s``) this is
    ``vb.diffusion.gaussian_vlb`` of that model, whose diffusion term is flow matching
    weighted by ``t / (1 - t)``:

    .. math:: \\mathcal L_{diff} = (t_{max} - t_{min}) \\frac{t}{1 - t}
       \\|v(x_t, t) - (z - x_0)\\|^2.

    ``.total`` upper-bounds ``-log p(z)`` under the diffusion model that the velocity
    defines (Gaussian decoder at ``t_max``, ``N(0, I)`` prior at ``t_min``): use it in place of
    ``-log p(z)`` in a latent model's ELBO with a pretrained, frozen ``velocity_fn`` to align
    its latents with the flow prior.

    Args:
      key: PRNG key.
      z: one latent, any shape.
      velocity_fn: ``velocity_fn(x_t, t) -> v`` in flow time.
      t_min: the flow time of the diffusion prior, in ``(0, t_max)``.
      t_max: the flow time of the decoder, in ``(t_min, 1)``.
      t: optional diffusion time ``s`` in ``[0, 1]``, as in ``gaussian_vlb``.
      eps: optional noise (the source point ``x_0``), as in ``gaussian_vlb``.
      eps_0: optional noise of the reconstruction term.

    Returns:
      ``VLBTerms`` (nats).

    References:
      Li et al., Aligning Latent Spaces with Flow Priors, 2025; Kingma et al., Variational
      Diffusion Models, 2021; Lipman et al., Flow Matching for Generative Modeling, 2023.

    Examples:
      >>> def velocity_fn(x_t, t):  # the exact velocity from N(0, I) to N(0, I)
      ...     return (2.0 * t - 1.0) / ((1.0 - t) ** 2 + t**2) * x_t
      >>> terms = vb.flow.flow_prior_vlb(jax.random.key(0), jnp.zeros(2), velocity_fn)
      >>> terms.total.shape  # a one-draw estimate of an upper bound on -log p(z)
      ()
    """
    check_callable(velocity_fn, "velocity_fn")
    t_min, t_max = float(t_min), float(t_max)
    if not 0.0 < t_min < t_max < 1.0:
        raise ValueError(f"Need 0 < `t_min` < `t_max` < 1, got t_min={t_min}, t_max={t_max}.")
    width = t_max - t_min

    def flow_time(s):
        return t_max - width * s

    def gamma_fn(s):
        u = flow_time(s)
        return 2.0 * (jnp.log1p(-u) - jnp.log(u))

    def eps_fn(z_s, s):
        u = flow_time(s)
        x_t = jnp.sqrt(u**2 + (1.0 - u) ** 2) * z_s
        return x_t - u * _velocity(velocity_fn, x_t, u)

    return gaussian_vlb(key, z, eps_fn, gamma_fn, t=t, eps=eps, eps_0=eps_0)
