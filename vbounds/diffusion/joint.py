"""Joint continuous-discrete diffusion: one bound over coordinates and types on a 2-D path.

Data with a continuous part ``x`` (coordinates, ``[*event_c]``) and a categorical part
``classes`` (types, ``[*event_d]``) diffuse independently given the data: ``x`` by VDM's
Gaussian process with schedule ``gamma``, ``classes`` by masking with keep-probability
``alpha``. A path ``u -> (tau_c(u), tau_d(u))`` from ``(0, 0)`` to ``(1, 1)`` moves the two
clocks together (VOS learns it); the reverse model sees both noisy parts. Because the forward
processes are independent given the data, each step's KL is the sum of the two modalities'
KLs and the continuous-time bound is the sum of ``gaussian_vlb`` under
``gamma(tau_c(u))`` and ``mdlm_vlb`` under ``alpha(tau_d(u))`` at the same ``u``, each with
the other modality's noisy state given to its network. Any monotone path gives a valid bound
(a reparameterisation of each clock); the path changes the estimator and what the shared
network must learn, and is learned by minimising the bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vbounds.diffusion._common import VLBTerms, check_callable, float_data
from vbounds.diffusion.categorical import _mask, _time_or_draw, mdlm_vlb
from vbounds.diffusion.gaussian import _alpha_sigma, _sample, gaussian_vlb

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class JointVLBTerms(NamedTuple):
    """The negative ELBO of joint diffusion, per modality (each a ``VLBTerms``).

    Attributes:
      continuous: the Gaussian part (prior, reconstruction, diffusion).
      discrete: the masked categorical part.
    """

    continuous: VLBTerms
    discrete: VLBTerms

    @property
    def total(self) -> jax.Array:
        """The joint negative ELBO estimate, the sum of both modalities' totals."""
        return self.continuous.total + self.discrete.total


def _identity_path(u):
    return u, u


def joint_vlb(
    key: jax.Array,
    x: ArrayLike,
    classes: ArrayLike,
    eps_fn: Callable,
    logits_fn: Callable,
    gamma_fn: Callable,
    alpha_fn: Callable,
    *,
    mask_index: int,
    path_fn: Callable | None = None,
    decoder: str = "gaussian",
    num_bins: int = 256,
    t: ArrayLike | None = None,
    eps: ArrayLike | None = None,
    eps_0: ArrayLike | None = None,
    x_t: ArrayLike | None = None,
) -> JointVLBTerms:
    """One-draw continuous-time negative ELBO of joint Gaussian and masked diffusion.

    .. math:: -\\mathrm{ELBO} = \\mathcal L_{VDM}(x; \\gamma \\circ \\tau_c)
       + \\mathcal L_{MDLM}(c; \\alpha \\circ \\tau_d)

    at one shared ``u ~ U(0, 1)``, where the denoisers see both noisy parts:
    ``eps_fn(z_u, c_u, u)`` and ``logits_fn(z_u, c_u, u)``. The categorical reconstruction
    term sees ``z_0``, the latent of the Gaussian reconstruction term. With the identity
    path and networks that ignore the other modality this is ``gaussian_vlb`` plus
    ``mdlm_vlb`` on the same draws.

    Args:
      key: PRNG key.
      x: one example's continuous part, any shape.
      classes: its integer types, any shape, never the mask.
      eps_fn: ``eps_fn(z_u, c_u, u) -> eps_hat`` shaped like ``x``.
      logits_fn: ``logits_fn(z_u, c_u, u) -> [*classes.shape, V]`` logits of the types.
      gamma_fn: the Gaussian schedule ``gamma(tau)``, increasing.
      alpha_fn: the keep probability ``alpha(tau)``, decreasing, ``alpha(1) = 0``.
      mask_index: the mask class.
      path_fn: ``path_fn(u) -> (tau_c, tau_d)``, each increasing from 0 to 1; the identity
        (a shared schedule) by default. A learnable path closes over its parameters.
      decoder: the Gaussian decoder, as in ``gaussian_vlb``.
      num_bins: as in ``gaussian_vlb``.
      t: optional shared time ``u`` instead of a draw.
      eps: optional Gaussian noise at ``u``.
      eps_0: optional Gaussian noise of the reconstruction term.
      x_t: optional masked types at ``u`` (needs ``t``).

    Returns:
      ``JointVLBTerms(continuous, discrete)``; ``.total`` is the joint estimate.

    References:
      Vignac et al., MiDi: Mixed Graph and 3D Denoising Diffusion for Molecule Generation,
      2023; Kingma et al., Variational Diffusion Models, 2021; Sahoo et al., Simple and
      Effective Masked Diffusion Language Models, 2024.

    Examples:
      >>> x, classes = jnp.array([0.5, -0.5]), jnp.array([0, 1])
      >>> eps_fn = lambda z, c, u: jnp.zeros(2)
      >>> logits_fn = lambda z, c, u: jnp.zeros((2, 3))  # uniform over V = 3 (mask 2)
      >>> terms = vd.joint_vlb(jax.random.key(0), x, classes, eps_fn, logits_fn,
      ...                      vd.linear_gamma, lambda s: 1.0 - s, mask_index=2, t=0.5,
      ...                      eps=jnp.ones(2), eps_0=jnp.zeros(2), x_t=jnp.array([2, 1]))
      >>> [round(float(v), 4) for v in terms.continuous]  # gaussian_vlb's, at u = 0.5
      [0.0017, -11.4621, 18.3]
      >>> [round(float(v), 4) for v in terms.discrete]  # mdlm_vlb's, one token masked
      [0.0, 0.0, 2.1972]
    """
    x = float_data(x, "x")
    for fn, name in (
        (eps_fn, "eps_fn"),
        (logits_fn, "logits_fn"),
        (gamma_fn, "gamma_fn"),
        (alpha_fn, "alpha_fn"),
    ):
        check_callable(fn, name)
    path_fn = _identity_path if path_fn is None else path_fn
    check_callable(path_fn, "path_fn")
    classes = jnp.asarray(classes)
    if not jnp.issubdtype(classes.dtype, jnp.integer):
        raise TypeError(f"`classes` must hold integer types, got dtype {classes.dtype}.")

    def gamma_path(u):
        return gamma_fn(path_fn(u)[0])

    def alpha_path(u):
        return alpha_fn(path_fn(u)[1])

    k_c, k_d = jax.random.split(key)
    k_u, k_mask, _ = jax.random.split(k_d, 3)
    u = _time_or_draw(k_u, t, x_t)
    u, eps, eps_0 = _sample(k_c, x, u, False, 1.0, eps, eps_0)
    if x_t is None:
        x_t = _mask(k_mask, classes, alpha_path(u), mask_index)
    x_t = jnp.asarray(x_t)
    alpha_u, sigma_u = _alpha_sigma(gamma_path(u))
    alpha_0, sigma_0 = _alpha_sigma(gamma_path(jnp.zeros_like(u)))
    z_u = alpha_u * x + sigma_u * eps
    z_0 = alpha_0 * x + sigma_0 * eps_0
    continuous = gaussian_vlb(
        k_c,
        x,
        lambda z, s: eps_fn(z, x_t, s),
        gamma_path,
        decoder=decoder,
        num_bins=num_bins,
        t=u,
        eps=eps,
        eps_0=eps_0,
    )

    def types_logits(c, s):
        # mdlm_vlb asks at u (the diffusion term) and at 0 (its reconstruction term).
        return logits_fn(jnp.where(s == 0, z_0, z_u), c, s)

    discrete = mdlm_vlb(k_d, classes, types_logits, alpha_path, mask_index=mask_index, t=u, x_t=x_t)
    return JointVLBTerms(continuous=continuous, discrete=discrete)
