"""Stein variational gradient descent (``vb.svgd``): particles that follow a kernelised gradient.

Each step moves every particle along the direction that decreases ``KL(q || p)`` fastest
within the unit ball of an RBF kernel's RKHS, where ``q`` is the particles' empirical
distribution. Only ``grad log p`` is needed, so ``p`` may be unnormalised. The transform has
the two fields of an optax ``GradientTransformation`` (the core does not import optax):
``optax.chain(vb.svgd.transform(), optax.sgd(learning_rate))`` is SVGD with step size
``learning_rate``, and any optax optimiser may follow it instead (Adagrad in the paper).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array, require

__all__ = [
    "GradientTransformation",
    "SvgdState",
    "bandwidth_heuristic",
    "stein_direction",
    "transform",
]


def _check_bandwidth(bandwidth) -> jax.Array | None:
    if bandwidth is None:
        return None
    bandwidth = as_float_array(bandwidth, "bandwidth")
    if bandwidth.ndim != 0:
        raise ValueError(f"`bandwidth` must be a scalar or None, got shape {bandwidth.shape}.")
    require(lambda h: h > 0, bandwidth, message=f"`bandwidth` must be positive, got {bandwidth}.")
    return bandwidth


def _sq_dists(particles: jax.Array) -> jax.Array:
    return jnp.sum((particles[:, None, :] - particles[None, :, :]) ** 2, axis=-1)


def bandwidth_heuristic(particles: jax.typing.ArrayLike) -> jax.Array:
    """The median heuristic ``h = median_ij |x_i - x_j|^2 / log(n + 1)``.

    The median runs over all ``n^2`` ordered pairs, the zero diagonal included, as in the
    paper's implementation. A pair at the median distance then has ``k = 1 / (n + 1)``, so a
    particle's own gradient and the sum over the others weigh about the same. When all
    particles coincide (``h = 0``) it returns 1 so that the kernel stays defined.

    Args:
      particles: ``[n, d]``.

    Returns:
      The scalar bandwidth ``h`` of the kernel ``exp(-|x - x'|^2 / h)``.

    References:
      Liu & Wang, Stein Variational Gradient Descent, 2016, section 5.

    Examples:
      >>> x = jnp.array([[0.0], [1.0], [3.0]])  # squared distances 0,0,0,1,1,4,4,9,9
      >>> round(float(vb.svgd.bandwidth_heuristic(x)), 4)  # median 1 / log 4
      0.7213
    """
    particles = _particles(particles)
    h = jnp.median(_sq_dists(particles)) / math.log(particles.shape[0] + 1)
    return jnp.where(h > 0, h, 1.0)


def _particles(particles) -> jax.Array:
    particles = as_float_array(particles, "particles")
    if particles.ndim != 2 or particles.shape[0] == 0:
        raise ValueError(f"`particles` must be [num_particles, dims], got {particles.shape}.")
    return particles


def stein_direction(
    particles: jax.typing.ArrayLike,
    grad_log_p: jax.typing.ArrayLike,
    *,
    bandwidth: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """The SVGD update direction ``phi`` (ascend it to move the particles towards ``p``).

    .. math:: \\phi(x_i) = \\frac{1}{n} \\sum_j \\big[k(x_j, x_i) \\nabla \\log p(x_j)
        + \\nabla_{x_j} k(x_j, x_i)\\big], \\quad k(x, x') = e^{-|x - x'|^2 / h}

    The first term drives the particles up ``log p`` (smoothed by the kernel); the second
    repels them from each other, ``grad_{x_j} k(x_j, x_i) = 2 k (x_i - x_j) / h``. For one
    particle ``phi = grad_log_p``: SVGD is then gradient ascent on ``log p`` (MAP).

    Args:
      particles: ``[n, d]``.
      grad_log_p: ``grad log p`` at each particle, ``[n, d]``.
      bandwidth: the kernel's ``h``; ``None`` uses :func:`bandwidth_heuristic` (recomputed
        from the particles at every call).

    Returns:
      ``phi`` ``[n, d]``.

    References:
      Liu & Wang, Stein Variational Gradient Descent: A General Purpose Bayesian Inference
      Algorithm, 2016.

    Examples:
      >>> x = jnp.array([[0.5, -1.0]])
      >>> vb.svgd.stein_direction(x, -x).tolist()  # one particle: the gradient of log N(0, I)
      [[-0.5, 1.0]]
      >>> x = jnp.array([[-1.0], [1.0]])  # two particles at the optimum repel each other
      >>> phi = vb.svgd.stein_direction(x, jnp.zeros((2, 1)), bandwidth=2.0)
      >>> [round(float(v), 4) for v in phi[:, 0]]  # -/+ exp(-2): (1/2)(2/h) k(x_1, x_2) * 2
      [-0.1353, 0.1353]
    """
    particles = _particles(particles)
    grad_log_p = as_float_array(grad_log_p, "grad_log_p")
    if grad_log_p.shape != particles.shape:
        raise ValueError(
            f"`grad_log_p` must have the shape of `particles` {particles.shape}, got "
            f"{grad_log_p.shape}."
        )
    h = _check_bandwidth(bandwidth)
    if h is None:
        h = bandwidth_heuristic(particles)
    k = jnp.exp(-_sq_dists(particles) / h)  # symmetric: k[j, i] = k(x_j, x_i)
    # sum_j k_ij (x_i - x_j) = x_i sum_j k_ij - (K x)_i
    repulsion = (particles * jnp.sum(k, axis=1, keepdims=True) - k @ particles) * (2.0 / h)
    return (k @ grad_log_p + repulsion) / particles.shape[0]


class SvgdState(NamedTuple):
    """The (empty) state of :func:`transform`."""


class GradientTransformation(NamedTuple):
    """The two fields of an optax ``GradientTransformation``: ``init`` and ``update``."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


def _flatten_particles(tree) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """Concatenates leaves ``[n, ...]`` into ``[n, d]``; returns the inverse as well."""
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves:
        raise ValueError("`params` must hold at least one array of particles.")
    n = jnp.shape(leaves[0])[0] if jnp.ndim(leaves[0]) else None
    if n is None or any(jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != n for leaf in leaves):
        raise ValueError(
            "`params` must be particles: every leaf [num_particles, ...] with the same "
            f"leading axis, got shapes {[jnp.shape(leaf) for leaf in leaves]}."
        )
    shapes = [jnp.shape(leaf) for leaf in leaves]
    sizes = [math.prod(shape[1:]) for shape in shapes]
    flat = jnp.concatenate([jnp.reshape(leaf, (n, size)) for leaf, size in zip(leaves, sizes)], 1)

    def unflatten(matrix):
        parts = jnp.split(matrix, list(itertools.accumulate(sizes))[:-1], axis=1)
        return treedef.unflatten(
            [jnp.reshape(p, s).astype(leaf.dtype) for p, s, leaf in zip(parts, shapes, leaves)]
        )

    return flat, unflatten


def transform(*, bandwidth: jax.typing.ArrayLike | None = None) -> GradientTransformation:
    """SVGD as an optax gradient transformation: loss gradients in, ``-phi`` out.

    ``update(grads, state, params)`` reads the particles from ``params`` and
    ``grad log p = -grads`` (``grads`` of the loss ``-log p``), and returns ``-phi``
    (:func:`stein_direction`) in place of the gradient, so that a following descent step
    ``params - learning_rate * (-phi)`` ascends ``phi``. ``params`` may be one ``[n, d]``
    array or any pytree whose leaves all carry the particle axis first (``[n, ...]``);
    the kernel then acts on the concatenated ``[n, sum of sizes]`` vectors.

    Args:
      bandwidth: the kernel's ``h``; ``None`` uses the median heuristic at every step.

    Returns:
      A ``GradientTransformation(init, update)`` NamedTuple with optax's fields, accepted by
      ``optax.chain``; its state is the empty :class:`SvgdState`.

    References:
      Liu & Wang, Stein Variational Gradient Descent, 2016.

    Examples:
      >>> tx = vb.svgd.transform()
      >>> x = jnp.array([[2.0]])  # one particle, loss (x^2)/2: the update is the gradient
      >>> updates, _ = tx.update(x, tx.init(x), x)
      >>> updates.tolist()
      [[2.0]]
    """
    h = _check_bandwidth(bandwidth)

    def init(params):
        del params
        return SvgdState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("`params` (the particles) is required by the SVGD transform.")
        particles, unflatten = _flatten_particles(params)
        grads, _ = _flatten_particles(updates)
        if grads.shape != particles.shape:
            raise ValueError("`updates` must have the structure and shapes of `params`.")
        phi = stein_direction(particles, -grads, bandwidth=h)
        return unflatten(-phi), state

    return GradientTransformation(init, update)
