"""Multi-task diffusion: one bound over any number of modalities, on a learnable clock path.

Each modality ``m`` of one example (images, coordinates, types, tokens, ...) diffuses
independently given the data under its own forward process: a Gaussian one (VDM, schedule
``gamma_m``) or masking (MDLM, keep probability ``alpha_m``). A path
``u -> tau(u) = (tau_1(u), ..., tau_M(u))`` from ``0`` to ``1`` in every coordinate sets
each modality's clock from one shared time ``u``; the reverse network sees every noisy
modality at once. Because the forward processes factorise given the data, every step's KL
is the sum of the modalities' KLs, and the continuous-time negative ELBO is the sum of the
single-modality bounds under the reparameterised schedules ``gamma_m o tau_m`` and
``alpha_m o tau_m``, evaluated at the same ``u``. Any monotone path gives a valid bound;
the path decides which joint noise levels the shared network is trained on, and can be
learned by minimising the bound (``monotone_path``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from vbounds._validation import check_int, require
from vbounds.diffusion._common import (
    VLBTerms,
    categorical_kl,
    check_callable,
    check_choice,
    float_data,
)
from vbounds.diffusion.categorical import (
    _check_time,
    _classes,
    _mask,
    _x0_nll,
    mdlm_diffusion_loss,
)
from vbounds.diffusion.gaussian import DECODERS, _alpha_sigma, gaussian_vlb

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

KINDS = frozenset({"gaussian", "masked"})


# --------------------------------------------------------------------------------------
# A learnable monotone path u -> tau(u) in [0, 1]^M.
# --------------------------------------------------------------------------------------


def init_monotone_path(
    num_modalities: int, *, num_knots: int = 8, dtype: Any = jnp.float32
) -> Array:
    """Initial parameters of ``monotone_path``: the identity path (one shared clock).

    Args:
      num_modalities: ``M``, the number of clocks.
      num_knots: ``K``, the number of equal pieces of ``[0, 1]`` in ``u`` on which each
        clock is linear.
      dtype: the float dtype of the parameters.

    Returns:
      Zeros of shape ``[M, K]`` (unconstrained logits; equal logits give ``tau(u) = u``).

    Examples:
      >>> params = vd.init_monotone_path(3, num_knots=4)
      >>> params.shape, [round(float(v), 4) for v in vd.monotone_path(params, 0.3)]
      ((3, 4), [0.3, 0.3, 0.3])
    """
    num_modalities = check_int(num_modalities, "num_modalities")
    num_knots = check_int(num_knots, "num_knots")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a float dtype, got {dtype!r}.")
    return jnp.zeros((num_modalities, num_knots), dtype)


def monotone_path(params: ArrayLike, u: ArrayLike) -> Array:
    """A learnable, strictly increasing path from ``0`` to ``1`` in each coordinate.

    Each row of ``params`` (unconstrained logits ``theta_m``, ``[K]``) gives one clock.
    ``[0, 1]`` in ``u`` is cut into ``K`` equal pieces; on piece ``k`` the clock advances
    by ``p_mk = softmax(theta_m)_k``, linearly in ``u``:

    .. math:: \\tau_m(u) = (1 - f)\\, c_{m,k} + f\\, c_{m,k+1}, \\quad
       k = \\lfloor K u \\rfloor,\\; f = K u - k,\\; c_{m,j} = \\textstyle\\sum_{i < j} p_{mi},

    with the end knots set to exactly ``c_{m,0} = 0`` and ``c_{m,K} = 1``, so that
    ``tau(0) = 0`` and ``tau(1) = 1`` hold in floating point (a masked schedule needs
    ``alpha(tau(1)) = 0`` exactly, or its prior KL is infinite). The slope on piece ``k``
    is ``K p_mk > 0``: every clock is strictly increasing for any finite ``params``, and
    equal logits (``init_monotone_path``) give the identity. It is a monotone piecewise
    linear interpolation, continuous with a jump in slope at the knots; bounds that need
    ``tau'`` take the one-sided slope there (a set of zero measure). Differentiable in
    ``params`` and in ``u``, safe under ``jit``, ``grad`` and ``vmap``.

    Pass ``functools.partial(vd.monotone_path, params)`` as ``path_fn`` of
    ``multitask_vlb`` or ``joint_vlb`` and minimise the bound over ``params``.

    Args:
      params: ``[M, K]`` logits (or ``[K]`` for a single clock).
      u: a scalar time in ``[0, 1]``.

    Returns:
      ``tau(u)``, shape ``[M]`` (a scalar for ``[K]`` params).

    References:
      The learned joint schedule of continuous-discrete diffusion (VOS, variational
      optimisation of the schedule path); Kingma et al., Variational Diffusion Models, 2021
      (the continuous-time bound is invariant to a monotone reparameterisation of time).

    Examples:
      >>> params = jnp.array([[0.0, 0.0], [2.0, 0.0]])  # clock 2 runs ahead early on
      >>> [[round(float(v), 4) for v in vd.monotone_path(params, u)] for u in (0.0, 0.25, 1.0)]
      [[0.0, 0.0], [0.25, 0.4404], [1.0, 1.0]]
    """
    params = jnp.asarray(params)
    if not jnp.issubdtype(params.dtype, jnp.floating):
        params = params.astype(jnp.result_type(float))
    if params.ndim not in (1, 2) or params.shape[-1] < 1:
        raise ValueError(
            f"`params` must be [M, K] (or [K]) logits with K >= 1, got shape {params.shape}."
        )
    u = jnp.asarray(u, params.dtype)
    if u.ndim:
        raise ValueError(f"`u` must be a scalar time, got shape {u.shape}; vmap over times.")
    num_knots = params.shape[-1]
    p = jax.nn.softmax(params, axis=-1)
    ends = jnp.ones((*params.shape[:-1], 1), params.dtype)
    knots = jnp.concatenate([0.0 * ends, jnp.cumsum(p, axis=-1)[..., :-1], ends], axis=-1)
    scaled = u * num_knots
    k = jnp.clip(jnp.floor(scaled), 0, num_knots - 1)
    f = scaled - k
    k = k.astype(jnp.int32)
    lo = jnp.take(knots, k, axis=-1)
    hi = jnp.take(knots, k + 1, axis=-1)
    return (1.0 - f) * lo + f * hi


# --------------------------------------------------------------------------------------
# The multi-task bound.
# --------------------------------------------------------------------------------------


class Modality(NamedTuple):
    """How one modality diffuses in ``multitask_vlb``.

    Attributes:
      kind: ``"gaussian"`` (VDM: ``z = alpha x + sigma eps`` with
        ``sigma^2 = sigmoid(gamma)``; float data, the network returns ``eps_hat`` shaped
        like the data) or ``"masked"`` (MDLM: each token kept with probability ``alpha``,
        else the mask; integer data, the network returns ``[*event, V]`` logits of the
        clean tokens).
      schedule: ``gamma(tau)`` (increasing) for ``"gaussian"``; the keep probability
        ``alpha(tau)`` (decreasing, ``alpha(1) = 0``) for ``"masked"``. A learned schedule
        closes over its parameters.
      mask_index: the mask class (``"masked"`` only, required there).
      decoder: the Gaussian decoder, as in ``gaussian_vlb`` (``"gaussian"`` only).
      num_bins: grid size of the discretised decoders (``"gaussian"`` only).
    """

    kind: str
    schedule: Callable
    mask_index: int | None = None
    decoder: str = "gaussian"
    num_bins: int = 256


class MultitaskVLBTerms(NamedTuple):
    """The negative ELBO of multi-task diffusion, per modality.

    Attributes:
      terms: one ``VLBTerms(prior, reconstruction, diffusion)`` per modality, in the
        container of the data (a tuple, or a dict with the data's keys).
      t: the shared time ``u`` of the draw.
    """

    terms: tuple | dict
    t: jax.Array

    @property
    def total(self) -> jax.Array:
        """The multi-task negative ELBO estimate, the sum of every modality's total."""
        values = self.terms.values() if isinstance(self.terms, Mapping) else self.terms
        return sum(term.total for term in values)


def _layout(data, modalities):
    """The modality names (indices or keys), checking ``modalities`` against ``data``."""
    if isinstance(data, Mapping):
        if not isinstance(modalities, Mapping) or set(modalities) != set(data):
            got = sorted(modalities) if isinstance(modalities, Mapping) else type(modalities)
            raise ValueError(
                f"`modalities` must be a dict with the keys of `data` {sorted(data)}, got {got}."
            )
        names = list(data)
    elif isinstance(data, (tuple, list)):
        if isinstance(modalities, Mapping) or not isinstance(modalities, Sequence):
            raise TypeError(
                "`modalities` must be a tuple or list of `Modality` like `data`, got "
                f"{type(modalities).__name__}."
            )
        if len(modalities) != len(data):
            raise ValueError(
                f"`modalities` must give one `Modality` per modality of `data` ({len(data)}), "
                f"got {len(modalities)}."
            )
        names = list(range(len(data)))
    else:
        raise TypeError(
            f"`data` must be a tuple, list or dict of modalities, got {type(data).__name__}."
        )
    if not names:
        raise ValueError("`data` must hold at least one modality.")
    for name in names:
        spec = modalities[name]
        where = f"modalities[{name!r}]"
        if not isinstance(spec, Modality):
            raise TypeError(f"`{where}` must be a `Modality`, got {type(spec).__name__}.")
        check_choice(spec.kind, KINDS, f"{where}.kind")
        check_callable(spec.schedule, f"{where}.schedule")
        if spec.kind == "masked":
            check_int(spec.mask_index, f"{where}.mask_index", minimum=0)
        else:
            check_choice(spec.decoder, DECODERS, f"{where}.decoder")
            check_int(spec.num_bins, f"{where}.num_bins")
    return names


def _pack(data, names, values):
    if isinstance(data, Mapping):
        return dict(zip(names, values))
    return tuple(values)


def _unpack(outputs, data, names, what):
    """The network's per-modality outputs, in the order of ``names``."""
    if isinstance(data, Mapping):
        if not isinstance(outputs, Mapping) or set(outputs) != set(names):
            raise ValueError(
                f"`network` must return {what} as a dict with the keys of `data` "
                f"{sorted(names)}, got {type(outputs).__name__}."
            )
    elif not isinstance(outputs, (tuple, list)) or len(outputs) != len(names):
        raise ValueError(
            f"`network` must return {what} as a tuple with one entry per modality "
            f"({len(names)}), got {type(outputs).__name__}."
        )
    return [outputs[name] for name in names]


def multitask_vlb(
    key: jax.Array,
    data: Sequence | Mapping,
    network: Callable,
    modalities: Sequence[Modality] | Mapping[Any, Modality],
    *,
    path_fn: Callable | None = None,
    t: ArrayLike | None = None,
) -> MultitaskVLBTerms:
    """One-draw continuous-time negative ELBO of multi-task (multi-modality) diffusion.

    .. math:: -\\mathrm{ELBO} = \\sum_{m=1}^M \\mathcal L_{m}(x_m; s_m \\circ \\tau_m)

    at one shared ``u ~ U(0, 1)``, where ``L_m`` is ``gaussian_vlb`` (schedule
    ``gamma_m``) or ``mdlm_vlb`` (keep probability ``alpha_m``) on modality ``m``'s own
    clock ``tau_m(u)``, and every denoiser sees all noisy modalities:
    ``network(states_u, u)`` returns one output per modality (``eps_hat`` for a Gaussian
    modality, ``[*event, V]`` logits for a masked one). The masked reconstruction terms ask
    ``network(states_0, 0)``, with every modality at its ``tau = 0`` state.

    Draws: ``key`` is split into one key per modality, used as that modality's family
    function uses its key (so with ``t = u`` each modality's terms are
    ``gaussian_vlb(key_m, ...)`` or ``mdlm_vlb(key_m, ...)`` with the network restricted to
    it), and ``u`` is drawn as the last modality's family function draws its time. With
    one Gaussian and one masked modality this is ``joint_vlb`` for the same key.

    Args:
      key: PRNG key.
      data: one example's modalities, a tuple (or list) or a dict: float arrays for
        Gaussian modalities, integer arrays (never the mask) for masked ones, any shapes.
      network: ``network(states, u) -> outputs``; ``states`` holds every modality's noisy
        state in the container of ``data`` (a tuple or a dict), and ``outputs`` is the same
        container of per-modality predictions.
      modalities: one ``Modality`` per modality, in the container of ``data``.
      path_fn: ``path_fn(u) -> taus``, one clock per modality (a sequence or an ``[M]``
        array), each increasing from ``tau(0) = 0`` to ``tau(1) = 1``; the identity (one
        shared schedule) by default. ``functools.partial(monotone_path, params)`` learns it.
      t: optional shared time ``u`` in ``[0, 1]`` instead of a draw.

    Returns:
      ``MultitaskVLBTerms(terms, t)``; ``.total`` is the multi-task estimate, unbiased for
      the continuous-time bound over the key.

    References:
      Chen et al., Diffusion Models for Multi-Task Generative Modeling, ICLR 2024 (a
      multi-modal forward process and a shared reverse network; here the factorised form,
      each modality noised in its own space); the learned joint schedule of
      continuous-discrete diffusion (VOS); Kingma et al., Variational Diffusion Models,
      2021; Sahoo et al., Simple and Effective Masked Diffusion Language Models, 2024.

    Examples:
      >>> data = (jnp.array([0.5, -0.5]), jnp.array([0, 1]), jnp.array([0.2]))
      >>> specs = (vd.Modality("gaussian", vd.linear_gamma),
      ...          vd.Modality("masked", lambda s: 1.0 - s, mask_index=2),
      ...          vd.Modality("gaussian", vd.linear_gamma))
      >>> def network(states, u):  # predicts no noise, uniform logits over V = 3
      ...     return jnp.zeros(2), jnp.zeros((2, 3)), jnp.zeros(1)
      >>> terms = vd.multitask_vlb(jax.random.key(0), data, network, specs)
      >>> len(terms.terms), terms.total.shape
      (3, ())
    """
    names = _layout(data, modalities)
    check_callable(network, "network")
    specs = [modalities[name] for name in names]
    num = len(names)
    if path_fn is None:

        def path_fn(u):  # the identity: one shared schedule
            return (u,) * num

    check_callable(path_fn, "path_fn")

    values = []
    for name, spec in zip(names, specs):
        where = f"data[{name!r}]"
        if spec.kind == "gaussian":
            values.append(float_data(data[name], where))
        else:
            value = jnp.asarray(data[name])
            if not jnp.issubdtype(value.dtype, jnp.integer):
                raise TypeError(f"`{where}` must hold integer classes, got dtype {value.dtype}.")
            if value.size == 0:
                raise ValueError(f"`{where}` must not be empty, got shape {value.shape}.")
            values.append(value)

    keys = jax.random.split(key, num)
    subkeys = [jax.random.split(k, 3) for k in keys]  # (time, noise at u, noise at 0)
    if t is None:
        dtype = values[-1].dtype if specs[-1].kind == "gaussian" else jnp.result_type(float)
        u = jax.random.uniform(subkeys[-1][0], (), dtype=dtype)
    else:
        u = _check_time(t)

    taus = path_fn(u)
    if isinstance(taus, (tuple, list)):
        ok, got = len(taus) == num, f"{len(taus)} values"
    else:
        ok, got = jnp.shape(taus) == (num,), f"shape {jnp.shape(taus)}"
    if not ok:
        raise ValueError(f"`path_fn` must return one clock per modality ({num}), got {got}.")

    def schedule_on_clock(m, schedule):  # s_m(tau_m(u)), the schedule in the shared time u
        return lambda s: schedule(path_fn(s)[m])

    schedules = [schedule_on_clock(m, spec.schedule) for m, spec in enumerate(specs)]

    states_u, states_0, noises = [], [], []
    for value, spec, sched, sub in zip(values, specs, schedules, subkeys):
        if spec.kind == "gaussian":
            eps = jax.random.normal(sub[1], value.shape, dtype=value.dtype)
            eps_0 = jax.random.normal(sub[2], value.shape, dtype=value.dtype)
            alpha_u, sigma_u = _alpha_sigma(sched(u.astype(value.dtype)))
            alpha_0, sigma_0 = _alpha_sigma(sched(jnp.zeros((), value.dtype)))
            states_u.append(alpha_u * value + sigma_u * eps)
            states_0.append(alpha_0 * value + sigma_0 * eps_0)
            noises.append((eps, eps_0))
        else:
            states_u.append(_mask(sub[1], value, sched(u), spec.mask_index))
            states_0.append(_mask(sub[2], value, sched(jnp.zeros(())), spec.mask_index))
            noises.append(None)

    outputs_u = _unpack(network(_pack(data, names, states_u), u), data, names, "its outputs")
    if any(spec.kind == "masked" for spec in specs):
        zero = jnp.zeros((), u.dtype)
        outputs_0 = _unpack(network(_pack(data, names, states_0), zero), data, names, "its outputs")

    terms = []
    for m, (name, value, spec, sched) in enumerate(zip(names, values, specs, schedules)):
        if spec.kind == "gaussian":
            eps, eps_0 = noises[m]
            if jnp.shape(outputs_u[m]) != value.shape:
                raise ValueError(
                    f"`network` must return eps_hat for `data[{name!r}]` shaped like it "
                    f"{value.shape}, got {jnp.shape(outputs_u[m])}."
                )
            terms.append(
                gaussian_vlb(
                    keys[m],
                    value,
                    lambda z, s, out=outputs_u[m]: out,
                    sched,
                    decoder=spec.decoder,
                    num_bins=spec.num_bins,
                    t=u,
                    eps=eps,
                    eps_0=eps_0,
                )
            )
        else:
            terms.append(
                _masked_terms(
                    value,
                    states_u[m],
                    states_0[m],
                    outputs_u[m],
                    outputs_0[m],
                    sched,
                    u,
                    spec.mask_index,
                    f"data[{name!r}]",
                )
            )
    return MultitaskVLBTerms(terms=_pack(data, names, terms), t=u)


def _masked_terms(x0, x_t, x_00, logits_u, logits_0, alpha_fn, u, mask_index, name):
    """``mdlm_vlb``'s terms for given draws ``x_t`` (at ``u``) and ``x_00`` (at 0)."""
    logits_0 = jnp.asarray(logits_0)
    for logits in (logits_u, logits_0):
        shape = jnp.shape(logits)
        if shape[:-1] != x0.shape or not 0 <= mask_index < shape[-1] or shape != logits_0.shape:
            raise ValueError(
                f"`network` must return [*event, V] logits for `{name}` with event {x0.shape} "
                f"and mask_index < V, got {shape} and mask_index={mask_index}."
            )
    _classes(x0, name, logits_0.shape[-1])
    require(
        lambda c: c != mask_index,
        x0,
        message=f"`{name}` must not contain the mask class {mask_index}.",
    )
    alpha_1 = jnp.asarray(alpha_fn(jnp.ones(())))
    kept = jnp.stack([alpha_1, 1.0 - alpha_1])
    prior = x0.size * categorical_kl(kept, jnp.array([0.0, 1.0]))
    reconstruction = jnp.sum(jnp.where(x_00 == mask_index, _x0_nll(logits_0, x0), 0.0))
    diffusion = mdlm_diffusion_loss(
        x0, x_t, u, lambda c, s: logits_u, alpha_fn, mask_index=mask_index
    )
    return VLBTerms(prior, reconstruction, diffusion)
