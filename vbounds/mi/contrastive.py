"""Critic-based (contrastive) lower bounds on mutual information from a score matrix.

Convention (the score matrix of ``vb.mi``): for a batch of N pairs ``(x_i, y_i) ~ p(x, y)``,
``scores[i, j] = f(x_i, y_j)``. The diagonal holds the joint pairs; an off-diagonal
entry stands for a draw from ``p(x) p(y)``, and marginal terms average over the
``N (N - 1)`` off-diagonal entries only. Every bound returns one scalar in nats.

Each bound that is a sum of per-row terms is written once, as per-row statistics of
the score matrix plus a final reduction (`_RowForm`); the dense functions here, the
chunked form and the all-gather multi-device form (`vbounds.mi.scalable`) all
evaluate that one definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vbounds.mi import _checks

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class _RowForm(NamedTuple):
    """A bound as per-row statistics and a final reduction.

    ``rows(block, row_ids)`` maps rows ``[B, N]`` of the score matrix, with their global
    indices ``[B]``, to a tuple of ``[B]`` arrays; ``total(stats, n)`` reduces the
    statistics of all N rows (in row order) to the bound.
    """

    rows: Callable[[Array, Array], tuple[Array, ...]]
    total: Callable[[tuple[Array, ...], int], Array]


def _dense(form: _RowForm, scores: Array) -> Array:
    n = scores.shape[0]
    return form.total(form.rows(scores, jnp.arange(n)), n)


def _logmeanexp_offdiag(row_lse: Array, n: int) -> Array:
    return jax.nn.logsumexp(row_lse) - _checks.log_num_offdiag(n)


def _diag_and_offdiag_lse(transform: Callable[[Array], Array] = lambda s: s):
    def rows(block, row_ids):
        return _checks.diagonal(block, row_ids), _checks.offdiag_logsumexp(
            transform(block), row_ids
        )

    return rows


def _infonce_form() -> _RowForm:
    def rows(block, row_ids):
        return (_checks.diagonal(block, row_ids) - jax.nn.logsumexp(block, axis=1),)

    return _RowForm(rows, lambda stats, n: jnp.mean(stats[0]) + math.log(n))


def _dv_form() -> _RowForm:
    def total(stats, n):
        joint, marginal = stats
        return jnp.mean(joint) - _logmeanexp_offdiag(marginal, n)

    return _RowForm(_diag_and_offdiag_lse(), total)


def _nwj_form() -> _RowForm:
    def total(stats, n):
        joint, marginal = stats
        return jnp.mean(joint) - jnp.exp(_logmeanexp_offdiag(marginal, n) - 1.0)

    return _RowForm(_diag_and_offdiag_lse(), total)


def _tuba_form(log_baseline: Array) -> _RowForm:
    def rows(block, row_ids):
        shifted = block - log_baseline[None, :]
        return (
            _checks.diagonal(shifted, row_ids),
            _checks.offdiag_logsumexp(shifted, row_ids),
        )

    def total(stats, n):
        joint, marginal = stats
        return 1.0 + jnp.mean(joint) - jnp.exp(_logmeanexp_offdiag(marginal, n))

    return _RowForm(rows, total)


def _smile_form(clip) -> _RowForm:
    return _RowForm(_diag_and_offdiag_lse(lambda s: jnp.clip(s, -clip, clip)), _dv_form().total)


def _js_form() -> _RowForm:
    def rows(block, row_ids):
        joint = -jax.nn.softplus(-_checks.diagonal(block, row_ids))
        off = _checks.off_diagonal(block, row_ids)
        marginal = jnp.sum(jnp.where(off, jax.nn.softplus(block), 0.0), axis=1)
        return joint, marginal

    def total(stats, n):
        joint, marginal = stats
        return jnp.mean(joint) - jnp.sum(marginal) / (n * (n - 1))

    return _RowForm(rows, total)


def _js_mi_form() -> _RowForm:
    js, nwj = _js_form(), _nwj_form()

    def rows(block, row_ids):
        return js.rows(block, row_ids) + nwj.rows(block + 1.0, row_ids)

    def total(stats, n):
        trained = js.total(stats[:2], n)
        return trained + jax.lax.stop_gradient(nwj.total(stats[2:], n) - trained)

    return _RowForm(rows, total)


def _conditional_infonce_form(conditions: Array | None, log_weights: Array | None) -> _RowForm:
    def rows(block, row_ids):
        log_w = jnp.zeros_like(block) if log_weights is None else log_weights[row_ids]
        if conditions is not None:
            same = conditions[row_ids][:, None] == conditions[None, :]
            log_w = jnp.where(same, log_w, -jnp.inf)
        log_w = log_w - jax.nn.logsumexp(log_w, axis=1, keepdims=True)
        return (_checks.diagonal(block, row_ids) - jax.nn.logsumexp(block + log_w, axis=1),)

    return _RowForm(rows, lambda stats, n: jnp.mean(stats[0]))


def infonce(scores: ArrayLike) -> Array:
    """InfoNCE / contrastive predictive coding lower bound on ``I(x; y)``.

    .. math::
        I_{NCE} = \\frac{1}{N} \\sum_i \\Big[ s_{ii} - \\log \\sum_j e^{s_{ij}} \\Big] + \\log N

    Each row normalises over the candidates ``y_j`` for ``x_i`` (the positive included), so
    the value never exceeds ``log N``; it is invariant to adding a constant to a row.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``, joint pairs on the
        diagonal.

    Returns:
      The bound (scalar, nats).

    References:
      van den Oord, Li & Vinyals, Representation Learning with Contrastive Predictive
      Coding, 2018. Poole et al., On Variational Bounds of Mutual Information, ICML 2019.

    Examples:
      >>> perfect = jnp.log(jnp.eye(4))  # a critic that tells every pair apart (-inf elsewhere)
      >>> round(float(vb.mi.infonce(perfect)), 4)  # reaches the cap log N = log 4
      1.3863
      >>> round(float(vb.mi.infonce(jnp.zeros((4, 4)))), 4)  # an uninformative critic
      0.0
    """
    return _dense(_infonce_form(), _checks.square_scores(scores))


def nwj(scores: ArrayLike) -> Array:
    """Nguyen-Wainwright-Jordan (f-GAN KL, MINE-f) lower bound on ``I(x; y)``.

    .. math::
        I_{NWJ} = \\operatorname{mean}_i s_{ii}
            - e^{-1} \\operatorname{mean}_{i \\ne j} e^{s_{ij}}

    Unbiased in its expectation for any critic; tight for ``f = 1 + log p(y|x)/p(y)``. The
    marginal mean is computed as ``exp(logmeanexp(s) - 1)``.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.

    Returns:
      The bound (scalar, nats).

    References:
      Nguyen, Wainwright & Jordan, Estimating Divergence Functionals and the Likelihood
      Ratio by Convex Risk Minimization, IEEE Trans. Inf. Theory 2010.

    Examples:
      >>> # Independent x and y with the optimal critic 1 + log r = 1: tight at I = 0.
      >>> round(float(vb.mi.nwj(jnp.ones((3, 3)))), 4)
      0.0
      >>> s = jnp.array([[2.0, 0.0], [0.5, 1.0]])
      >>> round(float(vb.mi.nwj(s)), 4)  # 1.5 - exp(log((1 + e^0.5) / 2) - 1)
      1.0128
    """
    return _dense(_nwj_form(), _checks.square_scores(scores))


def tuba(scores: ArrayLike, log_baseline: ArrayLike) -> Array:
    """Tractable unnormalised Barber-Agakov (TUBA) lower bound with a baseline ``a(y)``.

    .. math::
        I_{TUBA} = 1 + \\operatorname{mean}_i t_{ii} - \\operatorname{mean}_{i \\ne j}
            e^{t_{ij}}, \\qquad t_{ij} = s_{ij} - \\log a(y_j)

    ``log_baseline = 1`` everywhere gives `nwj`; the optimal baseline is the partition
    function ``a(y) = E_{p(x)} e^{f(x, y)}``.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.
      log_baseline: ``log a(y_j)``, shape ``[N]`` (indexed by the column) or a scalar.

    Returns:
      The bound (scalar, nats).

    References:
      Poole et al., On Variational Bounds of Mutual Information, ICML 2019.

    Examples:
      >>> s = jnp.array([[2.0, 0.0], [0.5, 1.0]])
      >>> round(float(vb.mi.tuba(s, log_baseline=1.0)), 4)  # a(y) = e: NWJ
      1.0128
      >>> # a(y_j) = e^0.5, e^0: 1 + mean(2 - 0.5, 1 - 0) - mean(e^(0 - 0), e^(0.5 - 0.5))
      >>> round(float(vb.mi.tuba(s, log_baseline=jnp.array([0.5, 0.0]))), 4)
      1.25
    """
    s = _checks.square_scores(scores)
    b = _checks.vector(log_baseline, "log_baseline", s.shape[0])
    return _dense(_tuba_form(b), s)


def dv(scores: ArrayLike) -> Array:
    """Donsker-Varadhan estimate of ``I(x; y)`` (the MINE objective's value).

    .. math::
        I_{DV} = \\operatorname{mean}_i s_{ii}
            - \\log \\operatorname{mean}_{i \\ne j} e^{s_{ij}}

    A lower bound with exact expectations; on a batch the log of the sample mean is biased
    upwards, so with the exact log density ratio it sits at or above the MI.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.

    Returns:
      The estimate (scalar, nats).

    References:
      Donsker & Varadhan, Asymptotic evaluation of certain Markov process expectations for
      large time IV, 1983. Belghazi et al., MINE: Mutual Information Neural Estimation,
      ICML 2018.

    Examples:
      >>> s = jnp.array([[2.0, 0.0], [0.5, 1.0]])
      >>> round(float(vb.mi.dv(s)), 4)  # 1.5 - log((1 + e^0.5) / 2)
      1.2191
    """
    return _dense(_dv_form(), _checks.square_scores(scores))


def smile(scores: ArrayLike, clip: float) -> Array:
    """SMILE: Donsker-Varadhan with the marginal term's scores clipped to ``[-clip, clip]``.

    .. math::
        I_{SMILE} = \\operatorname{mean}_i s_{ii}
            - \\log \\operatorname{mean}_{i \\ne j} e^{\\operatorname{clip}(s_{ij}, -\\tau, \\tau)}

    Clipping bounds the variance of the partition estimate at the price of a bias. As a
    training objective the clipped value is unbounded above (the marginal term is capped
    at ``tau``); Song & Ermon train the critic with the JS gradient and report this value,
    which `smile_surrogate` does in one call.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.
      clip: ``tau >= 0``.

    Returns:
      The estimate (scalar, nats).

    References:
      Song & Ermon, Understanding the Limitations of Variational Mutual Information
      Estimators, ICLR 2020.

    Examples:
      >>> s = jnp.array([[2.0, 0.0], [0.5, 1.0]])
      >>> round(float(vb.mi.smile(s, clip=0.25)), 4)  # 1.5 - log((1 + e^0.25) / 2)
      1.3672
      >>> round(float(vb.mi.smile(s, clip=10.0)), 4) == round(float(vb.mi.dv(s)), 4)
      True
    """
    s = _checks.square_scores(scores)
    _checks.scalar_in(clip, "clip", low=0.0, high=math.inf, low_open=False, high_open=True)
    return _dense(_smile_form(clip), s)


def smile_surrogate(scores: ArrayLike, *, clip: float) -> Array:
    """SMILE's training objective: the value of `smile`, the gradient of `js`.

    .. math::
        J(s) + \\operatorname{sg}\\big(I_{SMILE}(s; \\tau) - J(s)\\big)

    with ``J`` the JS f-GAN objective (`js`) and ``sg`` the stop-gradient. Maximising the
    clipped DV value itself is unstable (its marginal term is capped at ``tau`` while the
    joint term is not), so Song & Ermon train the critic on the JS objective, whose
    maximiser is the log density ratio, and read the MI off that critic with SMILE. One
    call gives both: differentiate it to train, read its value to report.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.
      clip: ``tau >= 0``, as in `smile`.

    Returns:
      ``smile(scores, clip)`` in value (scalar, nats), differentiating as ``js(scores)``.

    References:
      Song & Ermon, Understanding the Limitations of Variational Mutual Information
      Estimators, ICLR 2020.

    Examples:
      >>> s = jnp.array([[2.0, 0.0], [0.5, 1.0]])
      >>> value = vb.mi.smile_surrogate(s, clip=0.25)
      >>> round(float(value), 4) == round(float(vb.mi.smile(s, clip=0.25)), 4)
      True
      >>> g = jax.grad(lambda t: vb.mi.smile_surrogate(t, clip=0.25))(s)
      >>> bool(jnp.allclose(g, jax.grad(vb.mi.js)(s)))
      True
    """
    s = _checks.square_scores(scores)
    _checks.scalar_in(clip, "clip", low=0.0, high=math.inf, low_open=False, high_open=True)
    trained = _dense(_js_form(), s)
    return trained + jax.lax.stop_gradient(_dense(_smile_form(clip), s) - trained)


def js(scores: ArrayLike) -> Array:
    """Jensen-Shannon f-GAN critic objective (a bound on a divergence, not on the MI).

    .. math::
        J = \\operatorname{mean}_i \\big[-\\operatorname{softplus}(-s_{ii})\\big]
            - \\operatorname{mean}_{i \\ne j} \\operatorname{softplus}(s_{ij})
            \\;\\le\\; 2\\, JS\\big(p(x, y) \\,\\|\\, p(x) p(y)\\big) - \\log 4

    Its maximiser is ``f = log p(y|x)/p(y)``, the log density ratio, which makes it a stable
    objective for training a critic. To read the MI off such a critic, shift it by one and
    use NWJ, ``nwj(scores + 1)`` (or `js_mi`): plugged in unshifted, NWJ reads ``1/e``
    below the MI.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.

    Returns:
      The objective (scalar, nats).

    References:
      Nowozin, Cseke & Tomioka, f-GAN, NeurIPS 2016. Hjelm et al., Deep InfoMax, ICLR 2019.
      Poole et al., On Variational Bounds of Mutual Information, ICML 2019.

    Examples:
      >>> round(float(vb.mi.js(jnp.zeros((3, 3)))), 4)  # an uninformative critic: -log 4
      -1.3863
    """
    return _dense(_js_form(), _checks.square_scores(scores))


def js_mi(scores: ArrayLike) -> Array:
    """MI estimate of a JS-trained critic: value ``nwj(scores + 1)``, gradient of `js`.

    The JS objective's optimal critic is ``log r`` while NWJ's is ``1 + log r``, so the
    shifted NWJ is the lower bound matching the critic. Returning it with the JS gradient
    (``js + stop_gradient(nwj(scores + 1) - js)``) lets one loss both train (stably) and
    report the MI.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.

    Returns:
      The NWJ lower bound of the shifted critic (scalar, nats), differentiating as `js`.

    References:
      Poole et al., On Variational Bounds of Mutual Information, ICML 2019.

    Examples:
      >>> s = jnp.array([[2.0, 0.0], [0.5, 1.0]])
      >>> round(float(vb.mi.js_mi(s)), 4) == round(float(vb.mi.nwj(s + 1.0)), 4)
      True
      >>> round(float(vb.mi.js_mi(jnp.zeros((3, 3)))), 4)  # log r = 0: independent, I = 0
      0.0
    """
    return _dense(_js_mi_form(), _checks.square_scores(scores))


def interpolated(scores: ArrayLike, log_baseline: ArrayLike, *, alpha: float) -> Array:
    """Interpolated bound ``I_alpha`` between NWJ/TUBA (alpha -> 0) and InfoNCE (alpha = 1).

    With the partition estimate for ``y_j`` interpolated between the multi-sample mean and
    the baseline,

    .. math::
        I_\\alpha = 1 + E\\Big[\\log \\frac{e^{f(x_1, y)}}{\\alpha m(y; x_{1:K})
            + (1 - \\alpha) a(y)}\\Big]_{p(y|x_1)}
            - E\\Big[\\frac{e^{f(x_1, y)}}{\\alpha m(y; x_{1:K})
            + (1 - \\alpha) a(y)}\\Big]_{p(y)},
        \\quad m(y; x_{1:K}) = \\frac{1}{K} \\sum_k e^{f(x_k, y)}.

    On the batch, ``K = N - 1`` in leave-one-out form: for column ``y_j`` the joint term
    uses ``x_j`` with every set of ``N - 1`` rows containing it, the marginal term every
    ``x_i, i != j`` with the rows other than ``x_j``, so each term is an unbiased sample of
    ``I_alpha(K = N - 1)``. The partition runs over ``x`` for each ``y_j`` (the direction of
    the baseline ``a(y_j)``), so at ``alpha = 1`` this is InfoNCE normalised down the
    columns, with ``N - 1`` candidates. ``I_alpha <= 1 + log(N - 1) - log(alpha)``.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.
      log_baseline: ``log a(y_j)``, shape ``[N]`` or a scalar.
      alpha: interpolation weight in ``(0, 1]``.

    Returns:
      The bound (scalar, nats).

    References:
      Poole et al., On Variational Bounds of Mutual Information, ICML 2019 (section 2.4).

    Examples:
      >>> round(float(vb.mi.interpolated(jnp.zeros((4, 4)), 0.0, alpha=0.5)), 4)
      0.0
      >>> s = 3.0 * jnp.eye(4)
      >>> value = vb.mi.interpolated(s, 0.0, alpha=0.5)
      >>> round(float(value), 4), bool(value <= 1 + jnp.log(3.0) - jnp.log(0.5))
      (1.5695, True)
    """
    s = _checks.square_scores(scores)
    n = s.shape[0]
    b = _checks.vector(log_baseline, "log_baseline", n)
    _checks.scalar_in(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=False)
    return _dense(_interpolated_form(_dense_columns(s), b, alpha), s)


class _Columns(NamedTuple):
    """Per-column statistics of the score matrix that `interpolated` needs (each ``[N]``).

    Attributes:
      total: ``logsumexp_i s_ij``.
      top: the row index of the column's largest entry (the first one on ties).
      without_top: ``logsumexp`` of the column with that entry left out.
      diag: ``s_jj``.
    """

    total: Array
    top: Array
    without_top: Array
    diag: Array


def _dense_columns(s: Array) -> _Columns:
    top = jnp.argmax(s, axis=0)
    is_top = jnp.arange(s.shape[0])[:, None] == top[None, :]
    without_top = jax.nn.logsumexp(jnp.where(is_top, -jnp.inf, s), axis=0)
    return _Columns(jax.nn.logsumexp(s, axis=0), top, without_top, jnp.diagonal(s))


def _log_loo_partition(values, row_ids, columns: _Columns, log_baseline, alpha, n: int):
    """``log(alpha m + (1 - alpha) a(y_j))`` for entries ``values = s_lj`` at rows ``l``.

    ``m`` is the mean of ``e^{s_kj}`` over the ``N - 1`` rows ``k != l``. The leave-one-out
    sum is ``L + log1p(-exp(s_lj - L))``, well conditioned except at the column's largest
    entry, where the logsumexp of the other entries is used instead.
    """
    is_top = row_ids == columns.top
    rest = jnp.where(is_top, -1.0, values - columns.total)  # finite dummy where unused
    loo = jnp.where(is_top, columns.without_top, columns.total + jnp.log1p(-jnp.exp(rest)))
    return jnp.logaddexp(jnp.log(alpha) + loo - math.log(n - 1), jnp.log1p(-alpha) + log_baseline)


def _interpolated_form(columns: _Columns, log_baseline: Array, alpha) -> _RowForm:
    """`interpolated` as per-row statistics, given the column statistics of all rows."""

    def rows(block, row_ids):
        n = block.shape[1]
        log_partition = _log_loo_partition(
            block, row_ids[:, None], columns, log_baseline[None, :], alpha, n
        )
        # Joint term: y_j's positive pair against the partition without row l, l != j.
        off = _checks.off_diagonal(block, row_ids)
        joint = jnp.sum(jnp.where(off, columns.diag[None, :] - log_partition, 0.0), axis=1)
        # Marginal term: x_i against y_j with the partition of y_j's own leave-one-out set.
        own = _log_loo_partition(columns.diag, jnp.arange(n), columns, log_baseline, alpha, n)
        return joint, _checks.offdiag_logsumexp(block - own[None, :], row_ids)

    def total(stats, n):
        joint, marginal = stats
        return 1.0 + jnp.sum(joint) / (n * (n - 1)) - jnp.exp(_logmeanexp_offdiag(marginal, n))

    return _RowForm(rows, total)


class MineState(NamedTuple):
    """Explicit state of `mine`: the moving average of the marginal partition estimate.

    Attributes:
      log_ema: log of the zero-initialised exponential moving average of
        ``mean_{i != j} exp(scores_ij)``.
      count: number of updates, for the ``1 - decay**count`` bias correction.
    """

    log_ema: Array
    count: Array


def mine_init() -> MineState:
    """The initial `MineState` (an empty moving average).

    Returns:
      ``MineState(log_ema=-inf, count=0)``.

    Examples:
      >>> state = vb.mi.mine_init()
      >>> float(state.log_ema), int(state.count)
      (-inf, 0)
    """
    return MineState(jnp.array(-jnp.inf, jnp.float32), jnp.array(0, jnp.int32))


def mine(scores: ArrayLike, state: MineState, *, decay: float = 0.99) -> tuple[Array, MineState]:
    """MINE: the Donsker-Varadhan value with the moving-average corrected gradient.

    The DV gradient ``E_p[grad f] - E_q[e^f grad f] / E_q[e^f]`` is biased on a minibatch
    because the denominator is a sample mean. MINE replaces that denominator with an
    exponential moving average ``z`` over batches (zero-initialised, bias-corrected as
    ``z / (1 - decay**t)``). The surrogate returned has the DV value and that gradient:

    .. math::
        \\operatorname{mean}_i s_{ii} - \\Big[\\log \\bar e + \\frac{\\bar e
            - \\operatorname{sg}(\\bar e)}{\\operatorname{sg}(z)}\\Big],
        \\quad \\bar e = \\operatorname{mean}_{i \\ne j} e^{s_{ij}}

    (in log space). The state carries no gradient; thread it through training steps.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)``.
      state: the previous `MineState` (`mine_init()` at the start).
      decay: moving-average decay in ``[0, 1)``; ``0`` gives the plain DV gradient.

    Returns:
      ``(bound, new_state)``: ``bound`` equals ``dv(scores)`` in value.

    References:
      Belghazi et al., MINE: Mutual Information Neural Estimation, ICML 2018.

    Examples:
      >>> s = jnp.array([[2.0, 0.0], [0.5, 1.0]])
      >>> value, state = vb.mi.mine(s, vb.mi.mine_init())
      >>> round(float(value), 4), round(float(vb.mi.dv(s)), 4)  # the DV value
      (1.2191, 1.2191)
      >>> int(state.count)
      1
    """
    s = _checks.square_scores(scores)
    _checks.scalar_in(decay, "decay", low=0.0, high=1.0, low_open=False, high_open=True)
    if not isinstance(state, MineState):
        raise TypeError(f"`state` must be a MineState (see mine_init), got {type(state).__name__}.")
    n = s.shape[0]
    return _mine_total(_dv_form().rows(s, jnp.arange(n)), n, state, decay)


def _mine_total(stats, n: int, state: MineState, decay) -> tuple[Array, MineState]:
    """`mine` from the per-row statistics of `_dv_form`."""
    joint, marginal = stats
    log_mean = _logmeanexp_offdiag(marginal, n)
    log_mean_sg = jax.lax.stop_gradient(log_mean)
    count = state.count + 1
    log_ema = jnp.logaddexp(
        jnp.log(decay) + jax.lax.stop_gradient(state.log_ema), jnp.log1p(-decay) + log_mean_sg
    )
    log_corrected = log_ema - jnp.log1p(-(decay ** count.astype(log_ema.dtype)))
    ratio = jnp.exp(log_mean - log_corrected)
    surrogate = log_mean_sg + ratio - jax.lax.stop_gradient(ratio)
    return jnp.mean(joint) - surrogate, MineState(log_ema, count)


def conditional_infonce(
    scores: ArrayLike,
    conditions: ArrayLike | None = None,
    *,
    log_weights: ArrayLike | None = None,
) -> Array:
    """InfoNCE lower bound on the conditional MI ``I(x; y | c)``.

    Negatives for ``x_i`` must come from ``p(y | c_i)``. With ``conditions`` (e.g. the batch
    or plate id of each pair), only the ``n_c`` pairs sharing ``c_i`` are candidates:

    .. math::
        \\frac{1}{N} \\sum_i \\Big[ s_{ii} - \\log \\sum_{j: c_j = c_i} e^{s_{ij}}
            + \\log n_{c_i} \\Big] \\le I(x; y | c),

    an exact lower bound (each condition's pairs are i.i.d. from ``p(x, y | c)``), capped at
    ``log n_c``. When negatives from other conditions should count, InfoCORE-style
    reweighting gives them self-normalised importance weights
    ``w_ij = p(c_i | y_j) / p(c_i)``: pass ``log_weights[i, j] = log q(c_i | y_j)`` from a
    condition classifier; each row is normalised so that the candidates' weights sum to
    one, and the value is ``mean_i [s_ii - log sum_j w~_ij e^{s_ij}]``. With uniform weights
    this is `infonce`; both arguments together restrict to the condition and reweight
    within it. Weights carry gradient: stop it if the classifier is trained separately.

    Args:
      scores: ``[N, N]`` critic values, ``scores[i, j] = f(x_i, y_j)`` (the critic may use
        ``c_i``).
      conditions: ``[N]`` integer condition of each pair, or ``None``.
      log_weights: ``[N, N]`` unnormalised log importance weights of ``y_j`` as a negative
        for ``x_i``, or ``None``. The diagonal must be finite.

    Returns:
      The bound (scalar, nats).

    References:
      Wang et al., Removing Biases from Molecular Representations via Information
      Maximization (InfoCORE), ICLR 2024. van den Oord et al., CPC, 2018.

    Examples:
      >>> perfect = jnp.log(jnp.eye(4))
      >>> conditions = jnp.array([0, 0, 1, 1])  # two pairs per condition
      >>> round(float(vb.mi.conditional_infonce(perfect, conditions)), 4)  # capped at log 2
      0.6931
      >>> same = jnp.zeros(4, dtype=int)  # one condition for all: InfoNCE
      >>> round(float(vb.mi.conditional_infonce(perfect, same)), 4)
      1.3863
    """
    s = _checks.square_scores(scores)
    n = s.shape[0]
    c = None
    if conditions is not None:
        c = jnp.asarray(conditions)
        if c.shape != (n,) or not jnp.issubdtype(c.dtype, jnp.integer):
            raise ValueError(
                f"`conditions` must be an integer array of shape ({n},), "
                f"got {c.dtype} of shape {c.shape}."
            )
    w = None
    if log_weights is not None:
        w = _checks.square_scores(log_weights, "log_weights")
        if w.shape != s.shape:
            raise ValueError(
                f"`log_weights` must have the shape of `scores` {s.shape}, got {w.shape}."
            )
    if c is None and w is None:
        raise ValueError("`conditions` and `log_weights` are both None; use `infonce`.")
    return _dense(_conditional_infonce_form(c, w), s)
