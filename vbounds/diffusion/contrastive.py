"""Contrastive diffusion (CDCD): score matrices of conditional diffusion bounds for InfoNCE.

A conditional diffusion model gives a negative ELBO ``L(x | c)`` per step; CDCD adds a
contrastive term that makes the bound of the data under its own condition smaller than under
the others. With ``scores[i, j] = -L(x_i | c_j)``, ``vb.mi.infonce(scores)`` is a lower bound
on ``I(x; c)`` with the model's conditional bounds as critic; maximise it beside the VLB.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from vbounds.diffusion._common import check_callable

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def contrastive_scores(key: jax.Array, x: ArrayLike, c: ArrayLike, nll_fn: Callable) -> Array:
    """The ``[N, N]`` matrix of negative per-step bounds of ``x_i`` under candidate ``c_j``.

    .. math:: S_{ij} = -\\mathcal L(x_i \\mid c_j; \\kappa_i)

    where ``L`` is a one-draw negative ELBO (or one diffusion step of it) and ``kappa_i`` the
    ``i``-th of ``N`` keys split from ``key``: every candidate condition scores ``x_i`` with
    the same draws (time, noise), so the differences along a row come from the condition
    alone, and the draws of a row shift it by a constant that InfoNCE ignores. Joint pairs
    lie on the diagonal, the convention of ``vb.mi.infonce``, whose rows normalise over the
    candidates.

    Args:
      key: PRNG key.
      x: ``[N, ...]`` data, batch on axis 0.
      c: ``[N, ...]`` conditions (the candidates), ``c[i]`` paired with ``x[i]``.
      nll_fn: ``nll_fn(key, x_i, c_j) -> scalar``, e.g. a closure calling
        ``gaussian_vlb(key, x_i, lambda z, t: eps_fn(z, t, c_j), gamma_fn).diffusion``.

    Returns:
      ``[N, N]`` scores.

    References:
      Zhu et al., Discrete Contrastive Diffusion for Cross-Modal Music and Image Generation,
      2023; van den Oord, Li & Vinyals, Representation Learning with Contrastive Predictive
      Coding, 2018.

    Examples:
      >>> x, c = jnp.array([[0.0], [1.0], [2.0]]), jnp.array([[0.0], [1.0], [2.0]])
      >>> def nll_fn(key, x_i, c_j):  # a model that reconstructs x from c exactly
      ...     return jnp.sum((x_i - c_j) ** 2)
      >>> scores = vd.contrastive_scores(jax.random.key(0), x, c, nll_fn)
      >>> scores.tolist()
      [[-0.0, -1.0, -4.0], [-1.0, -0.0, -1.0], [-4.0, -1.0, -0.0]]
      >>> round(float(vb.mi.infonce(scores)), 4)
      0.6971
    """
    check_callable(nll_fn, "nll_fn")
    x, c = jnp.asarray(x), jnp.asarray(c)
    if x.ndim == 0 or c.ndim == 0 or x.shape[0] != c.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"`x` and `c` must share a non-empty batch axis 0, got shapes {x.shape} and {c.shape}."
        )
    keys = jax.random.split(key, x.shape[0])

    def row(k, x_i):
        return jax.vmap(lambda c_j: jnp.asarray(nll_fn(k, x_i, c_j)))(c)

    scores = -jax.vmap(row)(keys, x)
    if scores.shape != (x.shape[0], x.shape[0]):
        raise ValueError(f"`nll_fn` must return a scalar, got scores of shape {scores.shape}.")
    return scores
