"""Free-energy differences from work values, in units of kT.

Two states with reduced potentials ``u_A, u_B`` (energy over kT) and densities
``p_A ∝ exp(-u_A)``, ``p_B ∝ exp(-u_B)``. The forward work of a sample ``x_n ~ p_A`` is
``w_forward[n] = u_B(x_n) - u_A(x_n)``, the reverse work of ``y_m ~ p_B`` is
``w_reverse[m] = u_A(y_m) - u_B(y_m)``, and the target is
``dF = -log(Z_B / Z_A)``. The same identities that make the ELBO and IWAE bounds on
``log Z`` give these estimators: ``-w_forward`` is a log-weight of ``p_B`` against ``p_A``.

``jarzynski`` (one direction), ``bar`` (both directions, the minimum-variance combination),
``mbar`` (many states), ``bounds`` (the bracket from the mean works) and, for estimators
escorted by an invertible map, ``mapped_work``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vbounds._validation import as_float_array, check_finite_if_concrete, check_int

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _works(w: ArrayLike, name: str) -> Array:
    v = as_float_array(w, name)
    if v.ndim != 1 or v.shape[0] < 1:
        raise ValueError(f"`{name}` must be a non-empty 1-D array of works, got shape {v.shape}.")
    check_finite_if_concrete(v, name)
    return v


def _logmeanexp(x: Array, axis: int = 0) -> Array:
    return jax.nn.logsumexp(x, axis=axis) - math.log(x.shape[axis])


def jarzynski(w_forward: ArrayLike) -> Array:
    """Jarzynski / Zwanzig free-energy perturbation estimate of ``dF`` from forward works.

    .. math::
        \\Delta F = -\\log \\frac1N \\sum_n e^{-w_n}

    Exact in the limit (``E_A e^{-w} = Z_B / Z_A``); for finite ``N`` it is biased upwards
    (Jensen): ``E[jarzynski] >= dF``, decreasing in ``N``, as IWAE is biased downwards for
    ``log Z``. Accurate only when ``p_A`` covers the bulk of ``p_B``.

    Args:
      w_forward: ``[N]`` works ``u_B(x_n) - u_A(x_n)`` for ``x_n ~ p_A``.

    Returns:
      The estimate (scalar, kT).

    References:
      Zwanzig, High-Temperature Equation of State by a Perturbation Method, J. Chem. Phys.
      1954. Jarzynski, Nonequilibrium Equality for Free Energy Differences, PRL 1997.

    Examples:
      >>> round(float(vb.free_energy.jarzynski(jnp.array([0.0, 2.0]))), 4)
      0.5662
    """
    return -_logmeanexp(-_works(w_forward, "w_forward"))


def bounds(w_forward: ArrayLike, w_reverse: ArrayLike) -> tuple[Array, Array]:
    """The bracket ``(-mean(w_reverse), mean(w_forward))`` on ``dF``.

    .. math::
        -\\mathbb E_B[w_\\mathrm{rev}] \\le \\Delta F \\le \\mathbb E_A[w_\\mathrm{fwd}]

    The upper end exceeds ``dF`` by ``KL(p_A || p_B)`` and the lower end falls short by
    ``KL(p_B || p_A)`` (the second law; the ELBO of each direction). A bracket in
    expectation: the sample means fluctuate around the ends.

    Args:
      w_forward: ``[N]`` forward works.
      w_reverse: ``[M]`` reverse works.

    Returns:
      ``(lower, upper)`` (scalars, kT).

    References:
      Jarzynski, Nonequilibrium Equality for Free Energy Differences, PRL 1997.

    Examples:
      >>> lower, upper = vb.free_energy.bounds(jnp.array([1.0, 2.0]), jnp.array([0.5, -1.5]))
      >>> float(lower), float(upper)
      (0.5, 1.5)
    """
    fwd = _works(w_forward, "w_forward")
    rev = _works(w_reverse, "w_reverse")
    return -jnp.mean(rev), jnp.mean(fwd)


def _bennett_residual(delta_f: Array, w_forward: Array, w_reverse: Array) -> Array:
    """Log of Bennett's forward sum minus log of the reverse sum; increasing in ``delta_f``."""
    log_ratio = math.log(w_forward.shape[0] / w_reverse.shape[0])
    forward = jax.nn.logsumexp(-jax.nn.softplus(log_ratio + w_forward - delta_f))
    reverse = jax.nn.logsumexp(-jax.nn.softplus(-log_ratio + w_reverse + delta_f))
    return forward - reverse


def bar(w_forward: ArrayLike, w_reverse: ArrayLike, *, num_iterations: int = 100) -> Array:
    """Bennett's acceptance ratio (BAR): the self-consistent two-sided estimate of ``dF``.

    .. math::
        \\sum_{n=1}^{N} f\\big(M + w^F_n - \\Delta F\\big)
            = \\sum_{m=1}^{M'} f\\big(-M + w^R_m + \\Delta F\\big), \\quad
        f(x) = \\frac{1}{1 + e^x}, \\quad M = \\log \\frac{N}{M'}

    The left side increases and the right side decreases in ``dF``, so the root is unique.
    It is found by bisection on the logs of the two sides (``num_iterations`` halvings of
    a bracket that provably contains it, in a ``lax.fori_loop``: jittable), then one
    Newton step whose gradient is that of the implicit function, so ``jax.grad`` through
    the estimate is exact. The minimum-variance estimator using both directions; the
    maximum-likelihood estimate of the logistic model of which state a sample came from.

    Args:
      w_forward: ``[N]`` works ``u_B(x_n) - u_A(x_n)``, ``x_n ~ p_A``.
      w_reverse: ``[M']`` works ``u_A(y_m) - u_B(y_m)``, ``y_m ~ p_B``.
      num_iterations: bisection steps (static int); 100 reach float64 resolution.

    Returns:
      The estimate (scalar, kT).

    References:
      Bennett, Efficient Estimation of Free Energy Differences from Monte Carlo Data,
      J. Comput. Phys. 1976. Shirts et al., Equilibrium Free Energies from
      Nonequilibrium Measurements Using Maximum-Likelihood Methods, PRL 2003.

    Examples:
      >>> # Symmetric works: dF = 0 by symmetry of Bennett's equation.
      >>> w = jnp.array([0.5, 1.0, 2.0])
      >>> round(float(vb.free_energy.bar(w, w)), 4)
      0.0
    """
    fwd = _works(w_forward, "w_forward")
    rev = _works(w_reverse, "w_reverse")
    steps = check_int(num_iterations, "num_iterations")
    dtype = jnp.result_type(fwd, rev)
    fwd, rev = fwd.astype(dtype), rev.astype(dtype)
    # At dF = min(w_f) - |M| - 40 every forward term is below e^-40 of the largest reverse
    # term, and symmetrically at the upper end: the root lies inside.
    margin = abs(math.log(fwd.shape[0] / rev.shape[0])) + 40.0
    low0 = jax.lax.stop_gradient(jnp.minimum(jnp.min(fwd), jnp.min(-rev)) - margin)
    high0 = jax.lax.stop_gradient(jnp.maximum(jnp.max(fwd), jnp.max(-rev)) + margin)
    stopped_fwd, stopped_rev = jax.lax.stop_gradient(fwd), jax.lax.stop_gradient(rev)

    def bisect(_, bracket):
        low, high = bracket
        mid = 0.5 * (low + high)
        above = _bennett_residual(mid, stopped_fwd, stopped_rev) > 0
        return jnp.where(above, low, mid), jnp.where(above, mid, high)

    low, high = jax.lax.fori_loop(0, steps, bisect, (low0, high0))
    root = jax.lax.stop_gradient(0.5 * (low + high))
    residual, slope = jax.value_and_grad(_bennett_residual)(root, fwd, rev)
    return root - residual / jax.lax.stop_gradient(slope)


def mbar(
    reduced_potentials: ArrayLike,
    num_samples: ArrayLike,
    *,
    num_iterations: int = 1000,
    tolerance: float = 1e-10,
) -> Array:
    """MBAR: self-consistent free energies of ``K`` states from pooled samples.

    .. math::
        f_i = -\\log \\sum_{n=1}^{N} \\frac{e^{-u_i(x_n)}}
            {\\sum_k N_k\\, e^{f_k - u_k(x_n)}}

    where the ``N = sum_k N_k`` samples pool ``N_k`` draws from each state ``k``. The
    fixed point is the maximum-likelihood (and minimum-variance) estimate; with two states
    it is Bennett's acceptance ratio. Iterated in log-space in a ``lax.while_loop``
    (jittable) until the largest change is below ``tolerance`` or after
    ``num_iterations`` updates.

    Args:
      reduced_potentials: ``[K, N]`` values ``u_k(x_n)`` of every state at every pooled
        sample.
      num_samples: ``[K]`` counts ``N_k`` of the samples from each state (summing to ``N``).
      num_iterations: most fixed-point updates (static int).
      tolerance: stop when no free energy moves by more than this (kT).

    Returns:
      ``[K]`` free energies ``f_k - f_0`` (``f_0 = 0``), kT.

    References:
      Shirts & Chodera, Statistically Optimal Analysis of Samples from Multiple
      Equilibrium States, J. Chem. Phys. 2008.

    Examples:
      >>> # One sample from each of two states with u_0 = 0, u_1 = 1 everywhere.
      >>> u = jnp.array([[0.0, 0.0], [1.0, 1.0]])
      >>> [round(float(f), 4) for f in vb.free_energy.mbar(u, jnp.array([1, 1]))]
      [0.0, 1.0]
    """
    u = as_float_array(reduced_potentials, "reduced_potentials")
    if u.ndim != 2 or u.shape[0] < 2 or u.shape[1] < 1:
        raise ValueError(
            f"`reduced_potentials` must be a [K, N] array with K >= 2 states, got shape {u.shape}."
        )
    check_finite_if_concrete(u, "reduced_potentials")
    counts = jnp.asarray(num_samples)
    if counts.shape != (u.shape[0],):
        raise ValueError(
            f"`num_samples` must have shape ({u.shape[0]},), one count per state, got "
            f"{counts.shape}."
        )
    if not isinstance(counts, jax.core.Tracer):
        if bool(jnp.any(counts < 0)) or int(jnp.sum(counts)) != u.shape[1]:
            raise ValueError(
                f"`num_samples` must be non-negative counts summing to N = {u.shape[1]}, "
                f"got {counts.tolist()}."
            )
    steps = check_int(num_iterations, "num_iterations")
    log_counts = jnp.log(counts.astype(u.dtype))

    def update(f):
        log_denominator = jax.nn.logsumexp(log_counts[:, None] + f[:, None] - u, axis=0)
        new = -jax.nn.logsumexp(-u - log_denominator[None], axis=1)
        return new - new[0]

    def not_done(state):
        i, f, change = state
        return (i < steps) & (change > tolerance)

    def body(state):
        i, f, _ = state
        new = update(f)
        return i + 1, new, jnp.max(jnp.abs(new - f))

    zeros = jnp.zeros(u.shape[0], u.dtype)
    _, f, _ = jax.lax.while_loop(not_done, body, (0, zeros, jnp.asarray(jnp.inf, u.dtype)))
    return f


def mapped_work(
    u_source: ArrayLike, u_target_mapped: ArrayLike, log_det_jacobian: ArrayLike
) -> Array:
    """Work of a sample carried by an invertible map (targeted / escorted FEP), per sample.

    .. math::
        w(x) = u_\\mathrm{target}(M(x)) - u_\\mathrm{source}(x)
            - \\log \\big|\\det \\partial M(x) / \\partial x\\big|

    for ``x`` drawn from the source state. ``jarzynski`` of these forward works estimates
    ``dF`` (Jarzynski's targeted free-energy perturbation), and ``bar`` of the forward works
    with the reverse works of the inverse map (source ``B``, target ``A``, map ``M^{-1}``) is
    FEAT's estimate. Their means bracket ``dF`` (``bounds``) for any map, and the bracket
    closes when ``M`` carries ``p_A`` exactly onto ``p_B``: then every work equals ``dF``.
    Training the map to minimise ``mean(w_forward) + mean(w_reverse)`` (the width of the
    bracket, a sum of two KLs) is the escorted estimator's objective. The identity map
    gives the plain works.

    Args:
      u_source: ``[N]`` reduced potentials of the source state at ``x_n``.
      u_target_mapped: ``[N]`` reduced potentials of the target state at ``M(x_n)``.
      log_det_jacobian: ``[N]`` values ``log |det dM/dx|`` at ``x_n``.

    Returns:
      ``[N]`` works (kT).

    References:
      Jarzynski, Targeted Free Energy Perturbation, Phys. Rev. E 2002. He, Du, Vargas
      et al., FEAT: Free Energy Estimators with Adaptive Transport, 2025.

    Examples:
      >>> # A = N(0, 1), B = N(0, 4), M(x) = 2x: every work is dF = -log 2.
      >>> x = jnp.array([-1.0, 0.3, 2.0])
      >>> w = vb.free_energy.mapped_work(x**2 / 2, (2 * x) ** 2 / 8, jnp.log(2.0) * jnp.ones(3))
      >>> [round(float(v), 4) for v in w]
      [-0.6931, -0.6931, -0.6931]
    """
    source = _works(u_source, "u_source")
    n = source.shape[0]
    target = _works(u_target_mapped, "u_target_mapped")
    log_det = _works(log_det_jacobian, "log_det_jacobian")
    for name, arr in (("u_target_mapped", target), ("log_det_jacobian", log_det)):
        if arr.shape != (n,):
            raise ValueError(f"`{name}` must have shape ({n},) like `u_source`, got {arr.shape}.")
    return target - source - log_det
