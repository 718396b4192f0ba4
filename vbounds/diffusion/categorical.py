"""Discrete-state diffusion bounds: D3PM (discrete time), MDLM and UDLM (continuous time).

Conventions: ``transitions[t-1][i, j] = q(x_t = j | x_{t-1} = i)`` (row-stochastic,
``[T, V, V]``), ``Q_bar_t = Q_1 ... Q_t`` so ``q(x_t | x_0) = Q_bar_t[x_0]``. Reverse models
are given as logits of ``p(x_0 | x_t)`` over the ``V`` classes, shaped ``[*event, V]``; logits
of ``-inf`` for impossible classes are allowed everywhere. Every function returns loss terms
(negative ELBO, nats) for one example; ``jax.vmap`` over a batch.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from vbounds._validation import check_int, require
from vbounds.diffusion._common import (
    VLBTerms,
    categorical_kl,
    check_callable,
    check_choice,
    safe_log,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

PARAMETERIZATIONS = frozenset({"mixture", "d3pm"})
_HIGHEST = jax.lax.Precision.HIGHEST


def _betas(betas: ArrayLike) -> Array:
    betas = jnp.asarray(betas)
    if betas.ndim != 1 or betas.shape[0] < 1:
        raise ValueError(f"`betas` must be a non-empty 1-D array, got shape {betas.shape}.")
    if not jnp.issubdtype(betas.dtype, jnp.floating):
        betas = betas.astype(float)
    require(lambda b: (b >= 0) & (b <= 1), betas, message="`betas` must lie in [0, 1].")
    return betas


def _num_classes(num_classes) -> int:
    return check_int(num_classes, "num_classes", minimum=2)


def uniform_transitions(betas: ArrayLike, num_classes: int) -> Array:
    """D3PM's uniform-noise transition matrices.

    .. math:: Q_t = (1 - \\beta_t) I + \\beta_t \\mathbf{1}\\mathbf{1}^T / V

    Args:
      betas: ``[T]`` noise levels in ``[0, 1]``.
      num_classes: ``V``.

    Returns:
      ``[T, V, V]`` row-stochastic matrices; the uniform distribution is stationary.

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021.

    Examples:
      >>> q = vd.uniform_transitions(jnp.array([0.5]), 2)
      >>> q.shape, q[0].tolist()
      ((1, 2, 2), [[0.75, 0.25], [0.25, 0.75]])
    """
    betas = _betas(betas)
    v = _num_classes(num_classes)
    eye = jnp.eye(v, dtype=betas.dtype)
    return (1.0 - betas)[:, None, None] * eye + betas[:, None, None] / v


def absorbing_transitions(
    betas: ArrayLike, num_classes: int, *, mask_index: int | None = None
) -> Array:
    """D3PM's absorbing-state (mask) transition matrices.

    .. math:: Q_t = (1 - \\beta_t) I + \\beta_t \\mathbf{1} e_m^T

    Args:
      betas: ``[T]`` noise levels; ``beta_T = 1`` makes ``q(x_T | x_0)`` exactly the mask.
      num_classes: ``V``, including the mask.
      mask_index: ``m``, the absorbing class (default ``V - 1``).

    Returns:
      ``[T, V, V]`` row-stochastic matrices; ``e_m`` is stationary.

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021.

    Examples:
      >>> vd.absorbing_transitions(jnp.array([0.5]), 3)[0].tolist()  # class 2 is the mask
      [[0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]
    """
    betas = _betas(betas)
    v = _num_classes(num_classes)
    mask_index = v - 1 if mask_index is None else mask_index
    if not 0 <= mask_index < v:
        raise ValueError(f"`mask_index` must be in [0, {v}), got {mask_index}.")
    eye = jnp.eye(v, dtype=betas.dtype)
    to_mask = jnp.zeros((v,), betas.dtype).at[mask_index].set(1.0)
    return (1.0 - betas)[:, None, None] * eye + betas[:, None, None] * to_mask


def gaussian_transitions(betas: ArrayLike, num_classes: int) -> Array:
    """D3PM's discretised-Gaussian transition matrices for ordinal classes.

    .. math:: [Q_t]_{ij} = \\frac{\\exp(-4 (i-j)^2 / ((V-1)^2 \\beta_t))}
       {\\sum_{n=-(V-1)}^{V-1} \\exp(-4 n^2 / ((V-1)^2 \\beta_t))} \\; (i \\ne j),
       \\quad [Q_t]_{ii} = 1 - \\sum_{j \\ne i} [Q_t]_{ij}.

    Symmetric and row-stochastic, hence doubly stochastic: uniform is stationary.
    ``beta_t = 0`` gives the identity, the limit as ``beta_t -> 0``.

    Args:
      betas: ``[T]`` noise levels in ``[0, 1]``.
      num_classes: ``V``.

    Returns:
      ``[T, V, V]``.

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021
      (appendix A.2.2).

    Examples:
      >>> q = vd.gaussian_transitions(jnp.array([0.0, 0.5]), 3)
      >>> q[0].tolist()  # beta = 0: the identity
      [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
      >>> np.asarray(q[1], float).round(4).tolist()  # nearer classes likelier; symmetric
      [[0.8933, 0.1065, 0.0003], [0.1065, 0.7871, 0.1065], [0.0003, 0.1065, 0.8933]]
    """
    betas = _betas(betas)
    v = _num_classes(num_classes)
    # At beta = 0 the scale 4 / ((V-1)^2 beta) is infinite and times the zero offset gives
    # NaN: divide the squared offsets instead (0 / x = 0, n^2 / 0+ = inf), with beta = 0
    # replaced by 1 and its off-diagonal entries set to their limit 0 (double `where`, so
    # that no NaN reaches a gradient either).
    positive = betas > 0
    width = ((v - 1) ** 2 / 4.0) * jnp.where(positive, betas, 1.0)
    offsets = jnp.arange(-(v - 1), v, dtype=betas.dtype)
    log_norm = jax.nn.logsumexp(-(offsets**2) / width[:, None], axis=-1)
    idx = jnp.arange(v, dtype=betas.dtype)
    dist2 = (idx[:, None] - idx[None, :]) ** 2
    off = jnp.exp(-dist2 / width[:, None, None] - log_norm[:, None, None])
    eye = jnp.eye(v, dtype=betas.dtype)
    off = jnp.where(positive[:, None, None], off * (1.0 - eye), 0.0)
    return off + eye * (1.0 - jnp.sum(off, axis=-1, keepdims=True))


def absorbing_betas(num_steps: int) -> Array:
    """D3PM's absorbing schedule ``beta_t = 1 / (T - t + 1)``: ``q(x_t = x_0) = 1 - t/T``.

    Args:
      num_steps: ``T``.

    Returns:
      ``[T]`` betas, ending at exactly 1.

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021.

    Examples:
      >>> [round(b, 4) for b in vd.absorbing_betas(4).tolist()]
      [0.25, 0.3333, 0.5, 1.0]
    """
    num_steps = check_int(num_steps, "num_steps")
    t = jnp.arange(1, num_steps + 1, dtype=jnp.result_type(float))
    return 1.0 / (num_steps - t + 1.0)


def betas_from_alpha(alpha_fn: Callable, num_steps: int) -> Array:
    """Per-step betas that discretise a continuous keep-probability schedule ``alpha(t)``.

    .. math:: \\beta_i = 1 - \\alpha(i/T) / \\alpha((i-1)/T)

    With these, uniform and absorbing matrices give ``q(x_{t_i} | x_0)`` of the continuous
    process at ``t_i = i/T`` (both families compose multiplicatively in ``1 - beta``).

    Args:
      alpha_fn: decreasing, ``alpha(0) = 1`` (typically) and ``alpha(1) = 0``.
      num_steps: ``T``.

    Returns:
      ``[T]`` betas.

    References:
      Sahoo et al., Simple and Effective Masked Diffusion Language Models, 2024.

    Examples:
      >>> betas = vd.betas_from_alpha(lambda t: 1.0 - t, 4)  # alpha(t) = 1 - t
      >>> [round(b, 4) for b in betas.tolist()]  # the absorbing schedule 1 / (T - t + 1)
      [0.25, 0.3333, 0.5, 1.0]
    """
    check_callable(alpha_fn, "alpha_fn")
    num_steps = check_int(num_steps, "num_steps")
    grid = jnp.linspace(0.0, 1.0, num_steps + 1)
    alphas = jax.vmap(alpha_fn)(grid)
    ratio = alphas[1:] / jnp.where(alphas[:-1] > 0, alphas[:-1], 1.0)
    return jnp.clip(1.0 - ratio, 0.0, 1.0)


def cumulative_transitions(transitions: ArrayLike) -> Array:
    """``Q_bar_t = Q_1 Q_2 ... Q_t`` for ``t = 1..T``.

    Args:
      transitions: ``[T, V, V]``.

    Returns:
      ``[T, V, V]``; ``Q_bar[t-1][x_0] = q(x_t | x_0)``.

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021.

    Examples:
      >>> q = vd.absorbing_transitions(vd.absorbing_betas(4), 3)
      >>> qbar = vd.cumulative_transitions(q)
      >>> np.asarray(qbar[1], float).round(4).tolist()  # q(x_2 | x_0): kept w.p. 1 - 2/4
      [[0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]
      >>> np.asarray(qbar[-1], float).round(4).tolist()  # q(x_T | x_0): the mask
      [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """
    return _cumulative(_transitions(transitions))


def _product_step(carry, q):
    nxt = jnp.matmul(carry, q, precision=_HIGHEST)
    return nxt, nxt


@jax.jit
def _cumulative(transitions):
    # Jitted at module level so that eager calls reuse one compilation per shape.
    eye = jnp.eye(transitions.shape[-1], dtype=transitions.dtype)
    return jax.lax.scan(_product_step, eye, transitions)[1]


def _transitions(transitions) -> Array:
    transitions = jnp.asarray(transitions)
    if transitions.ndim != 3 or transitions.shape[1] != transitions.shape[2]:
        raise ValueError(f"`transitions` must have shape [T, V, V], got {transitions.shape}.")
    if transitions.shape[0] < 1 or transitions.shape[1] < 2:
        raise ValueError(f"`transitions` needs T >= 1 and V >= 2, got {transitions.shape}.")
    if not jnp.issubdtype(transitions.dtype, jnp.floating):
        raise TypeError(f"`transitions` must be floating, got {transitions.dtype}.")
    if not isinstance(transitions, jax.core.Tracer):
        rows = np.asarray(transitions).sum(-1)
        if not np.allclose(rows, 1.0, atol=1e-4) or np.any(np.asarray(transitions) < 0):
            raise ValueError(
                "`transitions` must be row-stochastic (non-negative rows summing to 1)."
            )
    return transitions


def _classes(x, name, num_classes):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"`{name}` must hold integer classes, got dtype {x.dtype}.")
    require(
        lambda c: (c >= 0) & (c < num_classes),
        x,
        message=f"`{name}` must lie in [0, {num_classes}).",
    )
    return x


def _check_logits(logits, shape, v, name="logits_fn"):
    if jnp.shape(logits) != (*shape, v):
        raise ValueError(
            f"`{name}` must return logits of shape {(*shape, v)}, got {jnp.shape(logits)}."
        )
    return jnp.asarray(logits)


def _safe_normalise(w: Array, axis: int = -1) -> Array:
    total = jnp.sum(w, axis=axis, keepdims=True)
    return w / jnp.where(total > 0, total, 1.0)


def categorical_posterior(
    x0: ArrayLike, x_t: ArrayLike, q_t: ArrayLike, qbar_s: ArrayLike
) -> Array:
    """The forward posterior ``q(x_{t-1} | x_t, x_0)`` as probabilities.

    .. math:: q(x_{t-1} = k | x_t, x_0) \\propto Q_t[k, x_t]\\, \\bar Q_{t-1}[x_0, k]

    Args:
      x0: integer classes, ``[*event]``.
      x_t: integer classes, ``[*event]``.
      q_t: ``Q_t``, ``[V, V]``.
      qbar_s: ``Q_bar_{t-1}``, ``[V, V]`` (the identity for ``t = 1``).

    Returns:
      ``[*event, V]`` probabilities (all zero where ``x_t`` is impossible given ``x_0``).

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021
      (eq. 3).

    Examples:
      >>> q = vd.uniform_transitions(jnp.array([0.5, 0.5]), 2)
      >>> qbar = vd.cumulative_transitions(q)
      >>> post = vd.categorical_posterior(jnp.array([0]), jnp.array([1]), q[1], qbar[0])
      >>> # q(x_1 | x_2 = 1, x_0 = 0) is proportional to [0.75 * 0.25, 0.25 * 0.75]
      >>> np.asarray(post, float).round(4).tolist()
      [[0.5, 0.5]]
    """
    q_t, qbar_s = jnp.asarray(q_t), jnp.asarray(qbar_s)
    v = q_t.shape[-1]
    x0, x_t = _classes(x0, "x0", v), _classes(x_t, "x_t", v)
    return _safe_normalise(q_t.T[x_t] * qbar_s[x0])


def reverse_probs(
    x_t: ArrayLike,
    logits: ArrayLike,
    q_t: ArrayLike,
    qbar_s: ArrayLike,
    *,
    parameterization: str = "mixture",
) -> Array:
    """The reverse step ``p(x_{t-1} | x_t)`` built from a prediction ``p(x_0 | x_t)``.

    ``"mixture"``: ``sum_{x_0} q(x_{t-1} | x_t, x_0) p(x_0 | x_t)``, with ``p(x_0 | x_t)``
    renormalised over the ``x_0`` that can reach ``x_t`` (for the others the posterior is
    undefined). ``"d3pm"``: weight the joint, then normalise,

    .. math:: p(x_{t-1} = k | x_t) \\propto Q_t[k, x_t] \\sum_{x_0} \\bar Q_{t-1}[x_0, k]
       \\, p(x_0 | x_t).

    When they agree: with absorbing noise (mask class ``m``), exactly when the prediction
    puts no mass on the mask, ``p(x_0 = m | x_t) = 0`` (a logit of ``-inf`` for ``m``; a
    finite logit, however small, gives a small difference). At an unmasked ``x_t`` both are
    the point mass on ``x_t``. At ``x_t = m`` with ``p_m = p(x_0 = m | x_t) > 0`` they
    differ: for ``k != m`` the mixture gives ``p_k beta_t abar / (beta_t abar + 1 - abar)``
    and ``"d3pm"`` gives ``p_k beta_t abar / ((1 - p_m)(beta_t abar + 1 - abar) + p_m)``,
    with ``abar = Q_bar_{t-1}[x_0, x_0]`` the keep probability. For uniform or Gaussian
    noise they differ in general, and only the mixture is tight with the exact
    ``q(x_0 | x_t)``.

    Args:
      x_t: integer classes, ``[*event]``.
      logits: ``[*event, V]`` logits of ``p(x_0 | x_t)`` (``-inf`` allowed).
      q_t: ``Q_t``.
      qbar_s: ``Q_bar_{t-1}``.
      parameterization: ``"mixture"`` or ``"d3pm"``.

    Returns:
      ``[*event, V]`` probabilities.

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021
      (eq. 4); Ho et al., Denoising Diffusion Probabilistic Models, 2020.

    Examples:
      >>> q = vd.absorbing_transitions(vd.absorbing_betas(4), 3)  # class 2 is the mask
      >>> qbar = vd.cumulative_transitions(q)
      >>> x_t = jnp.array([2])  # masked at t = 3
      >>> logits = jnp.log(jnp.array([[0.6, 0.4, 0.0]]))  # no mass on the mask
      >>> mixture = vd.reverse_probs(x_t, logits, q[2], qbar[1])
      >>> d3pm = vd.reverse_probs(x_t, logits, q[2], qbar[1], parameterization="d3pm")
      >>> np.asarray(mixture, float).round(4).tolist(), bool(jnp.allclose(mixture, d3pm))
      ([[0.2, 0.1333, 0.6667]], True)
      >>> logits = jnp.log(jnp.array([[0.5, 0.3, 0.2]]))  # mass on the mask: they differ
      >>> d3pm = vd.reverse_probs(x_t, logits, q[2], qbar[1], parameterization="d3pm")
      >>> bool(jnp.allclose(vd.reverse_probs(x_t, logits, q[2], qbar[1]), d3pm))
      False
    """
    check_choice(parameterization, PARAMETERIZATIONS, "parameterization")
    q_t, qbar_s = jnp.asarray(q_t), jnp.asarray(qbar_s)
    v = q_t.shape[-1]
    x_t = _classes(x_t, "x_t", v)
    logits = _check_logits(logits, x_t.shape, v, "logits")
    p_x0 = jax.nn.softmax(logits, axis=-1)
    column = q_t.T[x_t]
    if parameterization == "d3pm":
        predicted = jnp.matmul(p_x0, qbar_s, precision=_HIGHEST)
        return _safe_normalise(column * predicted)
    joint = column[..., None, :] * qbar_s
    reach = jnp.sum(joint, axis=-1)
    posteriors = joint / jnp.where(reach > 0, reach, 1.0)[..., None]
    weights = _safe_normalise(p_x0 * (reach > 0))
    return jnp.einsum("...a,...ak->...k", weights, posteriors, precision=_HIGHEST)


def categorical_step_kl(
    x0: ArrayLike,
    x_t: ArrayLike,
    logits: ArrayLike,
    q_t: ArrayLike,
    qbar_s: ArrayLike,
    *,
    parameterization: str = "mixture",
) -> Array:
    """One step's ``KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))``, summed over the event.

    Args:
      x0: integer classes, ``[*event]``.
      x_t: integer classes, ``[*event]``.
      logits: ``[*event, V]`` logits of ``p(x_0 | x_t)``.
      q_t: ``Q_t``.
      qbar_s: ``Q_bar_{t-1}``.
      parameterization: see ``reverse_probs``.

    Returns:
      A scalar (nats).

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021.

    Examples:
      >>> q = vd.uniform_transitions(jnp.array([0.3, 0.3, 0.3]), 3)
      >>> qbar = vd.cumulative_transitions(q)
      >>> x0, x_t = jnp.array([0, 2]), jnp.array([1, 2])
      >>> knows_x0 = jnp.log(jax.nn.one_hot(x0, 3))  # predicts x_0 exactly: no step loss
      >>> round(float(vd.categorical_step_kl(x0, x_t, knows_x0, q[2], qbar[1])), 4)
      0.0
      >>> round(float(vd.categorical_step_kl(x0, x_t, jnp.zeros((2, 3)), q[2], qbar[1])), 4)
      0.2467
    """
    posterior = categorical_posterior(x0, x_t, q_t, qbar_s)
    model = reverse_probs(x_t, logits, q_t, qbar_s, parameterization=parameterization)
    return jnp.sum(categorical_kl(posterior, model))


def _x0_nll(logits: Array, x0: Array) -> Array:
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_p, x0[..., None], axis=-1)[..., 0]


def categorical_decoder_nll(x0: ArrayLike, logits: ArrayLike) -> Array:
    """The reconstruction term ``-log p(x_0 | x_1)``, summed over the event.

    .. math:: -\\sum_\\ell \\log \\mathrm{softmax}(\\ell_\\theta(x_1))_{x_0^\\ell}

    The ``reconstruction`` term of ``categorical_vlb`` (D3PM's ``L_0``) for a draw
    ``x_1 ~ q(x_1 | x_0)`` of your choosing: pass the logits of ``p(x_0 | x_1)`` that the
    model gives at ``(x_1, t = 1)``. MDLM and UDLM use the same term at ``t = 0``.

    Args:
      x0: integer classes in ``[0, V)``, ``[*event]``.
      logits: ``[*event, V]`` logits of ``p(x_0 | x_1)`` (``-inf`` allowed).

    Returns:
      A scalar (nats).

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021.

    Examples:
      >>> x0 = jnp.array([0, 3])
      >>> round(float(vd.categorical_decoder_nll(x0, jnp.zeros((2, 4)))), 4)  # 2 log 4
      2.7726
    """
    logits = jnp.asarray(logits)
    if logits.ndim < 1 or logits.shape[-1] < 2:
        raise ValueError(f"`logits` must have shape [*event, V] with V >= 2, got {logits.shape}.")
    x0 = _classes(x0, "x0", logits.shape[-1])
    if logits.shape[:-1] != x0.shape:
        raise ValueError(
            f"`logits` must have shape {(*x0.shape, logits.shape[-1])} (the event of `x0`, "
            f"then V), got {logits.shape}."
        )
    return jnp.sum(_x0_nll(logits, x0))


def _sample_classes(key, probs):
    return jax.random.categorical(key, safe_log(probs), axis=-1)


def _given_classes(x, name, x0, v):
    """An injected draw (``x_1``, ``x_t``): integer classes with the shape of ``x0``."""
    x = _classes(x, name, v)
    if x.shape != x0.shape:
        raise ValueError(f"`{name}` must have the shape of `x0` {x0.shape}, got {x.shape}.")
    return x


def _categorical_terms(
    key, x0, logits_fn, transitions, prior, parameterization, *, t=None, x_t=None, x_1=None
):
    """The three VLB terms and the auxiliary cross-entropy at the diffusion step."""
    check_callable(logits_fn, "logits_fn")
    check_choice(parameterization, PARAMETERIZATIONS, "parameterization")
    transitions = _transitions(transitions)
    num_steps, v = transitions.shape[0], transitions.shape[-1]
    x0 = _classes(x0, "x0", v)
    prior = jnp.asarray(prior, transitions.dtype)
    if prior.shape != (v,):
        raise ValueError(f"`prior` must have shape ({v},), got {prior.shape}.")
    if x_t is not None and t is None:
        raise ValueError("`x_t` was given without its step `t`: pass both.")
    if t is not None:
        if num_steps == 1:
            raise ValueError("`t` was given, but with T = 1 there is no diffusion step.")
        t = jnp.asarray(t)
        if t.ndim or not jnp.issubdtype(t.dtype, jnp.integer):
            raise TypeError(f"`t` must be an integer step in [2, T], got {t.dtype} {t.shape}.")
        require(
            lambda s: (s >= 2) & (s <= num_steps),
            t,
            message=f"`t` must be a step in [2, {num_steps}] (T = {num_steps}).",
        )
    qbar = cumulative_transitions(transitions)
    prior_term = jnp.sum(categorical_kl(qbar[-1][x0], jnp.broadcast_to(prior, (*x0.shape, v))))

    k_1, k_t, k_xt = jax.random.split(key, 3)
    if x_1 is None:
        x_1 = _sample_classes(k_1, transitions[0][x0])
    else:
        x_1 = _given_classes(x_1, "x_1", x0, v)
    logits_1 = _check_logits(logits_fn(x_1, jnp.asarray(1)), x0.shape, v)
    reconstruction = jnp.sum(_x0_nll(logits_1, x0))
    if num_steps == 1:
        zero = jnp.zeros((), transitions.dtype)
        return VLBTerms(prior_term, reconstruction, zero), zero
    if t is None:
        t = jax.random.randint(k_t, (), 2, num_steps + 1)
    if x_t is None:
        x_t = _sample_classes(k_xt, qbar[t - 1][x0])
    else:
        x_t = _given_classes(x_t, "x_t", x0, v)
    logits_t = _check_logits(logits_fn(x_t, t), x0.shape, v)
    kl = categorical_step_kl(
        x0, x_t, logits_t, transitions[t - 1], qbar[t - 2], parameterization=parameterization
    )
    aux = jnp.sum(_x0_nll(logits_t, x0))
    return VLBTerms(prior_term, reconstruction, (num_steps - 1) * kl), aux


def categorical_vlb(
    key: jax.Array,
    x0: ArrayLike,
    logits_fn: Callable,
    transitions: ArrayLike,
    prior: ArrayLike,
    *,
    parameterization: str = "mixture",
    t: ArrayLike | None = None,
    x_t: ArrayLike | None = None,
    x_1: ArrayLike | None = None,
) -> VLBTerms:
    """One-draw estimate of the negative ELBO of a discrete-state (D3PM) diffusion model.

    .. math:: -\\mathrm{ELBO} = KL(q(x_T|x_0) || p(x_T)) + E_{x_1}[-\\log p(x_0|x_1)]
       + (T-1)\\, E_{t \\sim U\\{2..T\\}, x_t}[KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))]

    The prior term is exact; the others use one ``x_1 ~ q(x_1 | x_0)``, one ``t`` and one
    ``x_t ~ q(x_t | x_0)``, drawn from ``key`` unless given (``t``, ``x_t``, ``x_1``: to
    reproduce a draw, or to evaluate every step). Each is summed over the event.

    Args:
      key: PRNG key.
      x0: integer classes in ``[0, V)``, any event shape.
      logits_fn: ``logits_fn(x_t, t) -> [*event, V]`` logits of ``p(x_0 | x_t)``, ``t`` an
        integer in ``1..T``; ``-inf`` for impossible classes is allowed.
      transitions: ``[T, V, V]`` one-step matrices (row-stochastic).
      prior: ``[V]`` probabilities of ``p(x_T)``.
      parameterization: ``"mixture"`` or ``"d3pm"`` (see ``reverse_probs``).
      t: optional integer step in ``[2, T]`` for the diffusion term, instead of a draw.
      x_t: optional ``x_t``, integer classes shaped like ``x0``, instead of a draw from
        ``q(x_t | x_0)``; needs ``t``.
      x_1: optional ``x_1`` for the reconstruction term, instead of a draw.

    Returns:
      ``VLBTerms(prior, reconstruction, diffusion)``.

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021.

    Examples:
      >>> q = vd.uniform_transitions(jnp.array([0.1, 0.2, 0.5]), 3)  # T = 3, V = 3
      >>> prior = jnp.full(3, 1 / 3)  # uniform noise is stationary at the uniform prior
      >>> x0 = jnp.array([0, 2])
      >>> def logits_fn(x_t, t):  # a model that knows x_0: only the prior term remains
      ...     return jnp.log(jax.nn.one_hot(x0, 3))
      >>> terms = vd.categorical_vlb(jax.random.key(0), x0, logits_fn, q, prior)
      >>> [round(float(v), 4) for v in terms]  # prior, reconstruction, diffusion
      [0.241, 0.0, 0.0]
      >>> fixed = vd.categorical_vlb(jax.random.key(1), x0, logits_fn, q, prior,
      ...                            t=2, x_t=jnp.array([1, 2]), x_1=jnp.array([0, 2]))
      >>> round(float(fixed.total), 4)  # the draws given: the key no longer matters
      0.241
    """
    terms, _ = _categorical_terms(
        key, x0, logits_fn, transitions, prior, parameterization, t=t, x_t=x_t, x_1=x_1
    )
    return terms


def categorical_hybrid_loss(
    key: jax.Array,
    x0: ArrayLike,
    logits_fn: Callable,
    transitions: ArrayLike,
    prior: ArrayLike,
    *,
    aux_weight: float = 0.01,
    parameterization: str = "d3pm",
    t: ArrayLike | None = None,
    x_t: ArrayLike | None = None,
    x_1: ArrayLike | None = None,
) -> Array:
    """D3PM's hybrid loss: the negative ELBO plus an auxiliary cross-entropy on ``x_0``.

    .. math:: L_\\lambda = -\\mathrm{ELBO} + \\lambda E_{t, x_t}[-\\log p(x_0 | x_t)]

    with the cross-entropy at the same ``(t, x_t)`` as the diffusion term. An upper bound on
    ``-log p(x_0)`` (the extra term is non-negative), not tight.

    Args:
      key: PRNG key.
      x0: integer classes.
      logits_fn: as in ``categorical_vlb``.
      transitions: ``[T, V, V]``.
      prior: ``[V]``.
      aux_weight: ``lambda`` (D3PM used 0.01 and 0.001).
      parameterization: ``"d3pm"`` (the paper's) or ``"mixture"``.
      t: optional step, as in ``categorical_vlb``.
      x_t: optional ``x_t`` (needs ``t``), as in ``categorical_vlb``.
      x_1: optional ``x_1``, as in ``categorical_vlb``.

    Returns:
      A scalar.

    References:
      Austin et al., Structured Denoising Diffusion Models in Discrete State-Spaces, 2021
      (eq. 5).

    Examples:
      >>> q = vd.uniform_transitions(jnp.array([0.1, 0.2, 0.5]), 3)  # T = 3, V = 3
      >>> prior = jnp.full(3, 1 / 3)  # uniform noise is stationary at the uniform prior
      >>> x0 = jnp.array([0, 2])
      >>> def logits_fn(x_t, t):  # a model that knows x_0: only the prior term remains
      ...     return jnp.log(jax.nn.one_hot(x0, 3))
      >>> loss = vd.categorical_hybrid_loss(jax.random.key(0), x0, logits_fn, q, prior)
      >>> round(float(loss), 4)  # the auxiliary cross-entropy is 0 too
      0.241
    """
    terms, aux = _categorical_terms(
        key, x0, logits_fn, transitions, prior, parameterization, t=t, x_t=x_t, x_1=x_1
    )
    return terms.total + aux_weight * aux


def _check_time(t):
    """``t`` as a float scalar in ``[0, 1]``: its own float dtype, else the default one."""
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating):
        t = t.astype(jnp.result_type(float))
    if t.ndim:
        raise ValueError(f"`t` must be a scalar time, got shape {t.shape}.")
    require(lambda u: (u >= 0) & (u <= 1), t, message="`t` must lie in [0, 1].")
    return t


def _time_or_draw(key, t, x_t):
    """A given time (checked) or ``t ~ U(0, 1)``; a given ``x_t`` needs its ``t``."""
    if t is None:
        if x_t is not None:
            raise ValueError("`x_t` was given without its time `t`: pass both.")
        return jax.random.uniform(key, ())
    return _check_time(t)


def _schedule(alpha_fn, t):
    """``(alpha(t), alpha'(t))`` at a checked time ``t``, in ``t``'s dtype."""
    return jax.jvp(alpha_fn, (t,), (jnp.ones_like(t),))


def mdlm_diffusion_loss(
    x0: ArrayLike,
    x_t: ArrayLike,
    t: ArrayLike,
    logits_fn: Callable,
    alpha_fn: Callable,
    *,
    mask_index: int,
) -> Array:
    """MDLM's continuous-time integrand at one ``(t, x_t)``.

    .. math:: L = \\frac{-\\alpha'(t)}{1 - \\alpha(t)} \\sum_{\\ell: x_t^\\ell = m}
       -\\log p(x_0^\\ell | x_t)

    whose expectation over ``t ~ U(0, 1)`` and ``x_t ~ q(x_t | x_0)`` (each token kept with
    probability ``alpha(t)``, else masked) is the diffusion term of the negative ELBO; unmasked
    tokens are carried over.

    Args:
      x0: integer classes, ``[*event]``.
      x_t: the masked sequence, ``[*event]``.
      t: a scalar time.
      logits_fn: ``logits_fn(x_t, t) -> [*event, V]``.
      alpha_fn: ``alpha(t)``, the keep probability, decreasing with ``alpha(1) = 0``.
      mask_index: the mask class.

    Returns:
      A scalar.

    References:
      Sahoo et al., Simple and Effective Masked Diffusion Language Models, 2024 (eq. 10);
      Shi et al., Simplified and Generalized Masked Diffusion, 2024.

    Examples:
      >>> x0, x_t = jnp.array([0, 1]), jnp.array([2, 1])  # class 2 is the mask
      >>> def logits_fn(x, t):
      ...     return jnp.eye(3)[x]
      >>> loss = vd.mdlm_diffusion_loss(x0, x_t, 1 / 3, logits_fn, lambda t: 1.0 - t, mask_index=2)
      >>> round(float(loss), 4)  # -alpha'/(1 - alpha) = 3 times -log softmax([0, 0, 1])[0]
      4.6543
    """
    check_callable(logits_fn, "logits_fn")
    check_callable(alpha_fn, "alpha_fn")
    x0, x_t = jnp.asarray(x0), jnp.asarray(x_t)
    t = _check_time(t)
    alpha, dalpha = _schedule(alpha_fn, t)
    logits = jnp.asarray(logits_fn(x_t, t))
    if logits.shape[:-1] != x0.shape or not 0 <= mask_index < logits.shape[-1]:
        raise ValueError(
            f"`logits_fn` must return [*event, V] logits with event {x0.shape} and "
            f"`mask_index` < V, got {logits.shape} and mask_index={mask_index}."
        )
    v = logits.shape[-1]
    _classes(x0, "x0", v)
    _classes(x_t, "x_t", v)
    masked = x_t == mask_index
    # The weight -alpha'/(1 - alpha) is infinite at alpha = 1 (t = 0), where no token is
    # masked: keep it out of the unmasked terms, whose inf * 0 made the gradient NaN.
    keep_prob_below_one = alpha < 1.0
    weight = jnp.where(
        keep_prob_below_one, -dalpha / jnp.where(keep_prob_below_one, 1.0 - alpha, 1.0), jnp.inf
    )
    token_weight = jnp.where(masked, weight, 0.0)
    return jnp.sum(jnp.where(masked, token_weight * _x0_nll(logits, x0), 0.0))


def _mask(key, x0, alpha, mask_index):
    keep = jax.random.uniform(key, x0.shape) < alpha
    return jnp.where(keep, x0, mask_index)


def mdlm_vlb(
    key: jax.Array,
    x0: ArrayLike,
    logits_fn: Callable,
    alpha_fn: Callable,
    *,
    mask_index: int,
    t: ArrayLike | None = None,
    x_t: ArrayLike | None = None,
) -> VLBTerms:
    """One-draw negative ELBO of continuous-time masked diffusion (MDLM).

    ``prior`` is the exact ``KL(q(x_1 | x_0) || mask)`` (0 when ``alpha(1) = 0``, else
    infinite); ``reconstruction`` is ``-log p(x_0 | x_{t=0})`` over the tokens masked at
    ``t = 0`` (0 when ``alpha(0) = 1``); ``diffusion`` is ``mdlm_diffusion_loss`` at one
    ``t ~ U(0, 1)``. With exact conditionals the expected total is ``-log q(x_0)`` for any
    schedule (an average over unmasking orders of exact autoregressive factorisations).

    Args:
      key: PRNG key.
      x0: integer classes in ``[0, V)``, not the mask, ``[*event]``.
      logits_fn: ``logits_fn(x_t, t) -> [*event, V]``, ``t`` a float in ``[0, 1]``.
      alpha_fn: ``alpha(t)`` (e.g. ``lambda t: 1 - t``).
      mask_index: the mask class.
      t: optional time in ``[0, 1]`` instead of a draw.
      x_t: optional masked sequence at ``t`` (shaped like ``x0``) instead of a draw; needs
        ``t``.

    Returns:
      ``VLBTerms``.

    References:
      Sahoo et al., Simple and Effective Masked Diffusion Language Models, 2024.

    Examples:
      >>> x0 = jnp.array([0, 1])
      >>> def uniform(x_t, t):  # p(x_0 | x_t) uniform over V = 3 classes (mask 2 included)
      ...     return jnp.zeros((2, 3))
      >>> terms = vd.mdlm_vlb(jax.random.key(0), x0, uniform, lambda t: 1.0 - t, mask_index=2,
      ...                     t=0.5, x_t=jnp.array([2, 1]))
      >>> [round(float(v), 4) for v in terms]  # one masked token: -alpha'/(1 - alpha) log 3
      [0.0, 0.0, 2.1972]
    """
    check_callable(alpha_fn, "alpha_fn")
    x0 = jnp.asarray(x0)
    if not jnp.issubdtype(x0.dtype, jnp.integer):
        raise TypeError(f"`x0` must hold integer classes, got dtype {x0.dtype}.")
    k_t, k_mask, k_mask0 = jax.random.split(key, 3)
    t = _time_or_draw(k_t, t, x_t)
    alpha_1 = jnp.asarray(alpha_fn(jnp.ones(())))
    kept = jnp.stack([alpha_1, 1.0 - alpha_1])
    prior = x0.size * categorical_kl(kept, jnp.array([0.0, 1.0]))
    x_00 = _mask(k_mask0, x0, alpha_fn(jnp.zeros(())), mask_index)
    logits_0 = jnp.asarray(logits_fn(x_00, jnp.zeros(())))
    if logits_0.shape[:-1] != x0.shape or not 0 <= mask_index < logits_0.shape[-1]:
        raise ValueError(
            f"`logits_fn` must return [*event, V] logits with event {x0.shape} and "
            f"`mask_index` < V, got {logits_0.shape} and mask_index={mask_index}."
        )
    # Out-of-range classes would silently index nothing (one_hot gives zeros).
    _classes(x0, "x0", logits_0.shape[-1])
    require(
        lambda c: c != mask_index,
        x0,
        message=f"`x0` must not contain the mask class {mask_index}.",
    )
    reconstruction = jnp.sum(jnp.where(x_00 == mask_index, _x0_nll(logits_0, x0), 0.0))
    if x_t is None:
        x_t = _mask(k_mask, x0, alpha_fn(t), mask_index)
    else:
        x_t = _given_classes(x_t, "x_t", x0, logits_0.shape[-1])
    diffusion = mdlm_diffusion_loss(x0, x_t, t, logits_fn, alpha_fn, mask_index=mask_index)
    return VLBTerms(prior, reconstruction, diffusion)


def udlm_diffusion_loss(
    x0: ArrayLike, x_t: ArrayLike, t: ArrayLike, logits_fn: Callable, alpha_fn: Callable
) -> Array:
    """UDLM's continuous-time integrand (uniform noise) at one ``(t, x_t)``.

    With ``N`` classes, ``i = x_t``, ``x_bar = N alpha x_0 + (1 - alpha)`` and
    ``x_bar_theta = N alpha p_theta(x_0 | x_t) + (1 - alpha)``:

    .. math:: L = \\frac{-\\alpha'}{N \\alpha} \\Big[\\frac{N}{\\bar x_{\\theta,i}}
       - \\frac{N}{\\bar x_i} + \\sum_j \\frac{\\bar x_j}{\\bar x_i}
       \\log \\frac{\\bar x_j \\bar x_{\\theta,i}}{\\bar x_i \\bar x_{\\theta,j}}\\Big]

    (derived here as the ``T -> inf`` limit of the per-step KLs: with ``c = -alpha' dt /
    (N alpha)`` each step's KL is ``c`` times the bracket plus ``O(dt^2)``). It is the limit
    of the discrete-time bound with the D3PM (joint-then-normalise) reverse step and is not
    tight even with the exact ``q(x_0 | x_t)``.

    Args:
      x0: integer classes, ``[*event]``.
      x_t: noisy classes, ``[*event]``.
      t: a scalar time.
      logits_fn: ``logits_fn(x_t, t) -> [*event, N]``.
      alpha_fn: ``alpha(t)``, decreasing, ``alpha(1) = 0``.

    Returns:
      A scalar.

    References:
      Schiff et al., Simple Guidance Mechanisms for Discrete Diffusion Models (UDLM), 2024.

    Examples:
      >>> x0, x_t = jnp.array([0, 3]), jnp.array([1, 3])
      >>> knows_x0 = lambda x, t: jnp.log(jax.nn.one_hot(x0, 4))
      >>> round(float(vd.udlm_diffusion_loss(x0, x_t, 0.5, knows_x0, lambda t: 1.0 - t)), 4)
      0.0
      >>> uniform = lambda x, t: jnp.zeros((2, 4))
      >>> round(float(vd.udlm_diffusion_loss(x0, x_t, 0.5, uniform, lambda t: 1.0 - t)), 4)
      2.7408
    """
    check_callable(logits_fn, "logits_fn")
    check_callable(alpha_fn, "alpha_fn")
    x0, x_t = jnp.asarray(x0), jnp.asarray(x_t)
    t = _check_time(t)
    alpha, dalpha = _schedule(alpha_fn, t)
    logits = jnp.asarray(logits_fn(x_t, t))
    if logits.shape[:-1] != x0.shape:
        raise ValueError(f"`logits_fn` must return [*event, N] logits, got {logits.shape}.")
    n = logits.shape[-1]
    _classes(x0, "x0", n)
    _classes(x_t, "x_t", n)
    x_bar = n * alpha * jax.nn.one_hot(x0, n) + (1.0 - alpha)
    x_bar_theta = n * alpha * jax.nn.softmax(logits, axis=-1) + (1.0 - alpha)
    xb_i = jnp.take_along_axis(x_bar, x_t[..., None], axis=-1)
    xbt_i = jnp.take_along_axis(x_bar_theta, x_t[..., None], axis=-1)
    bracket = (
        n / xbt_i[..., 0] - n / xb_i[..., 0] + categorical_kl(x_bar / xb_i, x_bar_theta / xbt_i)
    )
    # At alpha = 0 (t = 1) x_bar = x_bar_theta = 1 and the bracket is 0; it vanishes like
    # alpha^2, so the integrand tends to 0, but the prefactor's 1/alpha made it inf * 0 = NaN.
    positive = alpha > 0.0
    prefactor = -dalpha / (n * jnp.where(positive, alpha, 1.0))
    return jnp.where(positive, prefactor * jnp.sum(bracket), 0.0)


def udlm_vlb(
    key: jax.Array,
    x0: ArrayLike,
    logits_fn: Callable,
    alpha_fn: Callable,
    *,
    num_classes: int,
    t: ArrayLike | None = None,
    x_t: ArrayLike | None = None,
) -> VLBTerms:
    """One-draw negative ELBO of continuous-time uniform-noise diffusion (UDLM).

    ``q(x_t | x_0) = alpha(t) e_{x_0} + (1 - alpha(t)) / N``. ``prior`` is the exact
    ``KL(q(x_1 | x_0) || uniform)``; ``reconstruction`` is ``-log p(x_0 | x_{t=0})`` at one
    draw of ``x_{t=0}``; ``diffusion`` is ``udlm_diffusion_loss`` at one ``t ~ U(0, 1)``.

    Args:
      key: PRNG key.
      x0: integer classes in ``[0, N)``.
      logits_fn: ``logits_fn(x_t, t) -> [*event, N]``.
      alpha_fn: ``alpha(t)``.
      num_classes: ``N``.
      t: optional time in ``[0, 1]`` instead of a draw.
      x_t: optional noisy classes at ``t`` (shaped like ``x0``) instead of a draw; needs
        ``t``.

    Returns:
      ``VLBTerms``.

    References:
      Schiff et al., Simple Guidance Mechanisms for Discrete Diffusion Models (UDLM), 2024.

    Examples:
      >>> x0 = jnp.array([0, 3])
      >>> uniform = lambda x_t, t: jnp.zeros((2, 4))  # p(x_0 | x_t) uniform over N = 4
      >>> terms = vd.udlm_vlb(jax.random.key(0), x0, uniform, lambda t: 1.0 - t, num_classes=4)
      >>> round(float(terms.prior), 4), round(float(terms.reconstruction), 4)  # 0 and 2 log 4
      (0.0, 2.7726)
    """
    check_callable(alpha_fn, "alpha_fn")
    n = _num_classes(num_classes)
    x0 = _classes(x0, "x0", n)
    k_t, k_x, k_x0 = jax.random.split(key, 3)
    t = _time_or_draw(k_t, t, x_t)

    def marginal(a):
        return a * jax.nn.one_hot(x0, n) + (1.0 - a) / n

    alpha_1 = jnp.asarray(alpha_fn(jnp.ones(())))
    prior = jnp.sum(categorical_kl(marginal(alpha_1), jnp.full((*x0.shape, n), 1.0 / n)))
    x_00 = _sample_classes(k_x0, marginal(jnp.asarray(alpha_fn(jnp.zeros(())))))
    reconstruction = jnp.sum(_x0_nll(jnp.asarray(logits_fn(x_00, jnp.zeros(()))), x0))
    if x_t is None:
        x_t = _sample_classes(k_x, marginal(jnp.asarray(alpha_fn(t))))
    else:
        x_t = _given_classes(x_t, "x_t", x0, n)
    diffusion = udlm_diffusion_loss(x0, x_t, t, logits_fn, alpha_fn)
    return VLBTerms(prior, reconstruction, diffusion)
