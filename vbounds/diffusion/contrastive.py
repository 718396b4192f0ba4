"""Contrastive diffusion (CDCD): score matrices of conditional diffusion bounds for InfoNCE.

A conditional diffusion model gives a negative ELBO ``L(x | c)`` per step; CDCD adds a
contrastive term that makes the bound of the data under its own condition smaller than under
the others. With ``scores[i, j] = -L(x_j | c_i)``, ``vb.mi.infonce(scores)`` is a lower bound
on ``I(x; c)`` under the model's conditional bounds as critic; maximise it beside the VLB.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from vbounds.diffusion._common import check_callable

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def contrastive_scores(key: jax.Array, x: ArrayLike, c: ArrayLike, nll_fn: Callable) -> Array:
    """The ``[N, N]`` matrix of negative per-step bounds of candidate ``x_j`` given ``c_i``.

    .. math:: S_{ij} = -\\mathcal L(x_j \\mid c_i; \\kappa_j)

    where ``L`` is a one-draw negative ELBO (or one diffusion step of it) and ``kappa_j`` the
    ``j``-th of ``N`` keys split from ``key``: every condition scores candidate ``x_j`` with
    the same draws (time, noise), so the differences along a column come from the condition
    alone. Joint pairs lie on the diagonal, the convention of ``vb.mi.infonce``, whose
    rows normalise over the candidates ``x_j`` for condition ``c_i``.

    Args:
      key: PRNG key.
      x: ``[N, ...]`` data (the candidates), batch on axis 0.
      c: ``[N, ...]`` conditions, ``c[i]`` paired with ``x[i]``.
      nll_fn: ``nll_fn(key, x_j, c_i) -> scalar``, e.g. a closure calling
        ``gaussian_vlb(key, x_j, lambda z, t: eps_fn(z, t, c_i), gamma_fn).diffusion``.

    Returns:
      ``[N, N]`` scores.

    References:
      Zhu et al., Discrete Contrastive Diffusion for Cross-Modal Music and Image Generation,
      2023; van den Oord, Li & Vinyals, Representation Learning with Contrastive Predictive
      Coding, 2018.

    Examples:
      >>> x, c = jnp.array([[0.0], [1.0], [2.0]]), jnp.array([[0.0], [1.0], [2.0]])
      >>> def nll_fn(key, x_j, c_i):  # a model that reconstructs x from c exactly
      ...     return jnp.sum((x_j - c_i) ** 2)
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

    def row(c_i):
        return jax.vmap(lambda k, x_j: jnp.asarray(nll_fn(k, x_j, c_i)))(keys, x)

    scores = -jax.vmap(row)(c)
    if scores.shape != (x.shape[0], x.shape[0]):
        raise ValueError(f"`nll_fn` must return a scalar, got scores of shape {scores.shape}.")
    return scores
