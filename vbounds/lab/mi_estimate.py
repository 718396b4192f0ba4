"""Mutual information from samples in one call: `estimate_mi`.

``estimate_mi(x, y)`` splits the pairs into training, validation and test pairs, trains
a critic on minibatches of the training pairs with one of the contrastive bounds of
``vb.mi`` (the same model, ``mi_critic``, objective, ``mi_bound``, and optimiser step,
``vbounds.lab.train_step``, as the training loop), and reports the bound evaluated on
all the test pairs through ``vb.mi.from_critic``. The test pairs take no part in
training or in choosing the checkpoint, so the reported value carries none of the
overstatement that a critic fitted to a fixed sample shows on that sample; the estimate
on as many training pairs is returned beside it (``train_mi``) to show that gap.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vbounds.lab.models.critics import CRITICS, hidden_widths
from vbounds.lab.models.layers import ACTIVATIONS
from vbounds.lab.objectives.mi import ESTIMATORS, EVAL_BOUNDS, held_out_estimate
from vbounds.lab.registry import resolve
from vbounds.lab.train import create_state, train_step

#: Scored pairs per block of the held-out evaluation of a concat critic (memory bound).
_PAIRS_PER_BLOCK = 1 << 16


@dataclasses.dataclass(frozen=True)
class MIEstimate:
    """The result of `estimate_mi`.

    Attributes:
      mi: the estimate in nats: ``eval_bound`` of the reported critic on all the test
        pairs (a lower bound for ``infonce``, ``nwj``, ``tuba``, ``interpolated`` and
        ``js``; DV-type estimates for ``dv``, ``mine`` and ``smile``).
      train_mi: the same bound and critic on ``num_test`` of the training pairs: above
        ``mi`` when the critic has fitted the particular training sample.
      bound: the estimator that trained the critic.
      eval_bound: the ``vb.mi.from_critic`` bound that gives ``mi``.
      cap: the largest value ``eval_bound`` can take on ``num_test`` pairs
        (``log num_test`` for InfoNCE; infinite for the bounds without a cap).
      readout: ``"best"`` (the checkpoint with the highest validation estimate, with
        early stopping) or ``"last"`` (the critic after the last step).
      step: optimiser steps taken by the reported critic.
      steps_run: optimiser steps taken in all.
      curve: ``step`` and ``train_batch_mi`` (the estimate on each training minibatch),
        ``eval_step`` and ``eval_mi`` (on the validation pairs with early stopping, on
        the test pairs without).
      model: the fitted :class:`~vbounds.lab.models.mi.MICritic` (its ``critic`` takes
        standardised inputs; use `scores`).
      num_train, num_validation, num_test: the split sizes.
      test_indices: the rows of ``x`` and ``y`` that were held out as test pairs.
      x_mean, x_scale, y_mean, y_scale: the standardisation (zeros and ones without).
    """

    mi: float
    train_mi: float
    bound: str
    eval_bound: str
    cap: float
    readout: str
    step: int
    steps_run: int
    curve: dict
    model: nnx.Module
    num_train: int
    num_validation: int
    num_test: int
    test_indices: np.ndarray
    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray

    def scores(self, x, y) -> jax.Array:
        """The fitted critic's score matrix ``[N, M]`` on raw (unstandardised) ``x, y``."""
        x = (_as_matrix(x, "x") - self.x_mean) / self.x_scale
        y = (_as_matrix(y, "y") - self.y_mean) / self.y_scale
        return self.model.critic(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))


def estimate_mi(
    x,
    y,
    *,
    bound: str = "infonce",
    critic: str = "concat",
    hidden: int | Sequence[int] = (256, 256),
    activation: str = "relu",
    embed_dim: int = 32,
    batch_size: int = 128,
    learning_rate: float = 5e-4,
    max_steps: int = 2000,
    test_fraction: float = 0.25,
    early_stopping: bool = True,
    validation_fraction: float = 0.2,
    eval_every: int = 100,
    patience: int = 5,
    seed: int = 0,
    standardize: bool = True,
    smile_clip: float = 5.0,
    interpolated_alpha: float = 0.01,
    mine_decay: float = 0.99,
    eval_chunk_size: int | None = None,
) -> MIEstimate:
    """Estimates ``I(x; y)`` from paired samples with a trained critic, read out on
    held-out pairs.

    A random ``test_fraction`` of the pairs is held out. With ``early_stopping``, a
    ``validation_fraction`` of the rest is held out as well: every ``eval_every`` steps
    the bound is evaluated on all validation pairs, the critic with the highest value is
    kept, and training stops after ``patience`` evaluations without improvement (or at
    ``max_steps``). The critic is trained with Adam on minibatches of ``batch_size``
    training pairs (drawn without replacement within a step) and the reported estimate
    is the bound on all test pairs, evaluated in blocks of rows through
    ``vb.mi.from_critic``.

    Estimators (``bound``): ``infonce``, ``nwj``, ``tuba`` and ``interpolated`` (with a
    learned baseline ``a(y)``), ``js`` (trains on the JS objective, reads NWJ of the
    critic plus one), ``dv``, ``mine`` (DV with MINE's bias-corrected moving average,
    ``mine_decay``) and ``smile`` (trains on the JS objective, reads DV with the marginal
    scores clipped at ``smile_clip``, as Song & Ermon).

    Args:
      x: ``[N, dx]`` (or ``[N]``) samples of ``x``.
      y: ``[N, dy]`` (or ``[N]``) samples of ``y``, paired with ``x`` by row.
      bound: the estimator, one of ``ESTIMATORS``.
      critic: ``"concat"`` (an MLP on ``[x, y]``), ``"separable"`` (``g(x)^T h(y)``) or
        ``"bilinear"`` (``x^T W y``).
      hidden: widths of the hidden layers (an int: one layer).
      activation: one of ``tanh``, ``relu``, ``gelu``, ``elu``.
      embed_dim: the embedding size of the separable critic.
      batch_size: training pairs per step.
      learning_rate: Adam's step size.
      max_steps: the most optimiser steps.
      test_fraction: the share of pairs held out for the reported estimate, in (0, 1).
      early_stopping: choose the checkpoint on validation pairs (``readout="best"``);
        without it the critic after ``max_steps`` is reported (``readout="last"``).
      validation_fraction: the share of the non-test pairs used for validation.
      eval_every: steps between evaluations (and early-stopping checks).
      patience: evaluations without a new best before training stops.
      seed: seeds the split, the initialisation and the minibatches.
      standardize: scale each feature of ``x`` and ``y`` to zero mean and unit variance
        (fitted on the non-test pairs; the MI is unchanged by such maps).
      smile_clip: ``tau`` of ``smile``.
      interpolated_alpha: ``alpha`` of ``interpolated``.
      mine_decay: the moving-average decay of ``mine``.
      eval_chunk_size: rows scored at once in the evaluation (``None``: all rows for
        separable and bilinear critics, blocks of about 65k pairs for concat).

    Returns:
      An `MIEstimate`.

    Raises:
      ValueError: mismatched numbers of pairs, non-finite values, too few pairs for the
        split and batch size, an unknown ``bound``, ``critic`` or ``activation``, or a
        setting out of range (each names the argument).

    References:
      Poole et al., On Variational Bounds of Mutual Information, ICML 2019. Song & Ermon,
      Understanding the Limitations of Variational Mutual Information Estimators, ICLR
      2020. Belghazi et al., MINE, ICML 2018.
    """
    x, y = _as_matrix(x, "x"), _as_matrix(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of pairs (rows), got {x.shape[0]} and {y.shape[0]}"
        )
    if bound not in ESTIMATORS:
        raise ValueError(f"bound must be one of {', '.join(ESTIMATORS)}, got {bound!r}")
    if critic not in CRITICS:
        raise ValueError(f"critic must be one of {', '.join(CRITICS)}, got {critic!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    for name, value in (
        ("batch_size", batch_size),
        ("max_steps", max_steps),
        ("eval_every", eval_every),
        ("patience", patience),
        ("embed_dim", embed_dim),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if batch_size < 2:
        raise ValueError(
            f"batch_size must be at least 2 (a bound needs negatives), got {batch_size}"
        )
    for name, value in (
        ("test_fraction", test_fraction),
        ("validation_fraction", validation_fraction),
    ):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    if not (isinstance(learning_rate, int | float) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    if eval_chunk_size is not None and (
        isinstance(eval_chunk_size, bool)
        or not isinstance(eval_chunk_size, int)
        or eval_chunk_size < 1
    ):
        raise ValueError(f"eval_chunk_size must be a positive int or None, got {eval_chunk_size!r}")

    try:
        widths = hidden_widths(hidden, 1)
    except ValueError as error:
        raise ValueError(
            f"hidden must be a positive int or a non-empty sequence of them, got {hidden!r}"
        ) from error
    n = x.shape[0]
    num_test = int(round(test_fraction * n))
    num_validation = int(round(validation_fraction * (n - num_test))) if early_stopping else 0
    num_train = n - num_test - num_validation
    if num_test < 2 or (early_stopping and num_validation < 2) or num_train < batch_size:
        raise ValueError(
            f"too few pairs: {n} pairs give {num_test} test, {num_validation} validation and "
            f"{num_train} training pairs; need at least 2 test"
            + (" and 2 validation" if early_stopping else "")
            + f" pairs and batch_size={batch_size} training pairs (pass more pairs, a smaller "
            "batch_size or other fractions)"
        )

    order = np.random.default_rng(seed).permutation(n)
    test_idx, fit_idx = np.sort(order[:num_test]), order[num_test:]
    val_idx, train_idx = fit_idx[:num_validation], fit_idx[num_validation:]
    if standardize:
        x_mean, x_scale = _moments(x[fit_idx])
        y_mean, y_scale = _moments(y[fit_idx])
    else:
        x_mean, x_scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
        y_mean, y_scale = np.zeros(y.shape[1]), np.ones(y.shape[1])

    def split(indices):
        return {
            "x": jnp.asarray((x[indices] - x_mean) / x_scale, jnp.float32),
            "y": jnp.asarray((y[indices] - y_mean) / y_scale, jnp.float32),
        }

    train, validation, test = split(train_idx), split(val_idx), split(test_idx)

    model_factory, model_config = resolve(
        "model",
        {
            "name": "mi_critic",
            "critic": critic,
            "hidden_sizes": widths,
            "embed_dim": embed_dim,
            # The baseline of tuba / interpolated: as many layers, of the widest width.
            "baseline_hidden": max(widths),
            "activation": activation,
        },
    )
    objective_factory, objective_config = resolve(
        "objective",
        {
            "name": "mi_bound",
            "estimator": bound,
            "smile_clip": smile_clip,
            "interpolated_alpha": interpolated_alpha,
            "mine_decay": mine_decay,
        },
    )
    objective = objective_factory(objective_config)
    model = model_factory(
        model_config,
        rngs=nnx.Rngs(seed),
        example_batch={k: v[:batch_size] for k, v in train.items()},
    )
    tx = optax.adam(learning_rate)
    graphdef, state = create_state(model, tx, seed=seed)

    @functools.partial(jax.jit, static_argnums=3)
    def run(state, data, key, length):
        def body(state, step_key):
            rows = jax.random.choice(step_key, num_train, (batch_size,), replace=False)
            batch = jax.tree.map(lambda a: a[rows], data)
            state, metrics = train_step(graphdef, tx, objective.loss, None, state, batch)
            return state, metrics["mi"]

        return jax.lax.scan(body, state, jax.random.split(key, length))

    def readout(params, rest, pairs):
        chunk = eval_chunk_size
        num = pairs["x"].shape[0]
        if chunk is None and critic == "concat":
            chunk = max(1, _PAIRS_PER_BLOCK // num)
        reported = nnx.merge(graphdef, params, rest)
        return held_out_estimate(
            reported, pairs["x"], pairs["y"], objective_config, chunk_size=chunk
        )

    evaluate = jax.jit(readout)
    monitor = validation if early_stopping else test
    data_key = jax.random.key(seed)
    train_curve, eval_steps, eval_values = [], [], []
    best = (-math.inf, 0, state)
    since_best = 0
    steps = 0
    while steps < max_steps:
        length = min(eval_every, max_steps - steps)
        state, batch_mi = run(state, train, jax.random.fold_in(data_key, steps), length)
        train_curve.append(np.asarray(batch_mi))
        steps += length
        value = float(evaluate(state["params"], state["rest"], monitor))
        eval_steps.append(steps)
        eval_values.append(value)
        if not early_stopping:
            continue
        if value > best[0]:
            best, since_best = (value, steps, state), 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    final = best[2] if early_stopping else state
    reported_step = best[1] if early_stopping else steps
    mi = float(evaluate(final["params"], final["rest"], test))
    train_sample = {k: v[:num_test] for k, v in train.items()} if num_train >= num_test else train
    train_mi = float(evaluate(final["params"], final["rest"], train_sample))
    fitted = nnx.merge(graphdef, final["params"], final["rest"])
    eval_bound = EVAL_BOUNDS[bound]
    return MIEstimate(
        mi=mi,
        train_mi=train_mi,
        bound=bound,
        eval_bound=eval_bound,
        cap=_cap(eval_bound, num_test, interpolated_alpha),
        readout="best" if early_stopping else "last",
        step=int(reported_step),
        steps_run=steps,
        curve={
            "step": np.arange(1, sum(len(c) for c in train_curve) + 1),
            "train_batch_mi": np.concatenate(train_curve),
            "eval_step": np.asarray(eval_steps),
            "eval_mi": np.asarray(eval_values),
        },
        model=fitted,
        num_train=num_train,
        num_validation=num_validation,
        num_test=num_test,
        test_indices=test_idx,
        x_mean=x_mean,
        x_scale=x_scale,
        y_mean=y_mean,
        y_scale=y_scale,
    )


def _as_matrix(a, name: str) -> np.ndarray:
    """Pairs' samples as a finite float64 ``[N, d]`` array (a vector is ``[N, 1]``)."""
    a = np.asarray(a)
    if a.dtype == object or not (
        np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{name} must have a leading axis of pairs, got a scalar")
    a = a.astype(np.float64).reshape(a.shape[0], -1) if a.ndim != 1 else a[:, None].astype(float)
    if a.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = a.std(axis=0)
    # A constant feature carries no information; leave it unscaled rather than divide by 0.
    return a.mean(axis=0), np.where(scale > 0, scale, 1.0)


def _cap(eval_bound: str, n: int, alpha: float) -> float:
    if eval_bound == "infonce":
        return math.log(n)
    if eval_bound == "interpolated":
        return 1.0 + math.log(n - 1) - math.log(alpha)
    return math.inf
