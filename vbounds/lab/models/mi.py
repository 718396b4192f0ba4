"""The model of the contrastive MI objectives: a critic, a baseline and the estimators' state.

:class:`MICritic` holds a critic ``f(x, y)`` (scores ``[N, M]``, see
:mod:`vbounds.lab.models.critics`), a baseline ``log a(y)`` for TUBA and the interpolated
bound, and the state an estimator carries between steps outside the trained parameters
(:class:`EstimatorState` variables, so the training loop keeps them in ``state["rest"]``
and checkpoints them): MINE's moving average of the partition estimate and the true MI of
the latest training batch (which the held-out evaluation reads to score the level being
trained). The factory ``mi_critic`` builds one from a ``model`` section.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

import vbounds as vb
from vbounds.lab.models.critics import CRITICS, BaselineMLP, hidden_widths
from vbounds.lab.models.layers import ACTIVATIONS
from vbounds.lab.registry import register_model


class EstimatorState(nnx.Variable):
    """State an objective updates in the loss (not a parameter: it gets no gradient)."""


class MICritic(nnx.Module):
    """A critic, a baseline, MINE's moving average and the latest training level's MI."""

    def __init__(self, critic: nnx.Module, baseline: nnx.Module):
        """Wraps the networks.

        Args:
          critic: ``critic(x [N, dx], y [M, dy]) -> [N, M]`` scores ``f(x_i, y_j)``.
          baseline: ``baseline(y [M, dy]) -> [M]``, ``log a(y_j)``.
        """
        self.critic = critic
        self.baseline = baseline
        initial = vb.mi.mine_init()
        self.mine_log_ema = EstimatorState(initial.log_ema)
        self.mine_count = EstimatorState(initial.count)
        self.trained_mi = EstimatorState(jnp.zeros((), jnp.float32))

    @property
    def mine_state(self) -> vb.mi.MineState:
        """MINE's moving average before the next batch."""
        return vb.mi.MineState(self.mine_log_ema[...], self.mine_count[...])

    def set_mine_state(self, state: vb.mi.MineState) -> None:
        """Stores MINE's moving average after a batch (without gradient)."""
        self.mine_log_ema[...] = jax.lax.stop_gradient(state.log_ema)
        self.mine_count[...] = state.count

    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """The score matrix ``[N, M]``."""
        return self.critic(x, y)


def _positive_int(config, key: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    return value


def _feature_dim(example_batch: dict, key: str) -> int:
    if key not in example_batch:
        raise ValueError(
            f"model 'mi_critic' needs pairs (batches with 'x' and 'y'); this data has no {key!r}"
        )
    shape = example_batch[key].shape
    if len(shape) != 2:
        raise ValueError(f"model 'mi_critic' takes flat {key} [batch, dim], got shape {shape}")
    return int(shape[1])


def make_mi_critic(config, *, rngs: nnx.Rngs, example_batch: dict) -> MICritic:
    """The critic named by ``config.critic`` (``separable``, ``concat`` or ``bilinear``)
    and an MLP baseline, sized from the example batch's ``x`` and ``y``.

    The critic's hidden layers are ``hidden_sizes`` when it is set (a sequence of widths,
    one layer each), else ``layers`` layers of ``hidden`` units; ``embed_dim`` is the
    output size of each separable embedding; a bilinear critic has no hidden layers. The
    baseline has as many layers as the critic, of ``baseline_hidden`` units. The critic
    is initialised before the baseline from the same keys.
    """
    if config.critic not in CRITICS:
        raise ValueError(f"model.critic must be one of {sorted(CRITICS)}, got {config.critic!r}")
    if config.activation not in ACTIVATIONS:
        raise ValueError(
            f"model.activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}"
        )
    if config.hidden_sizes is None:
        widths = (_positive_int(config, "hidden"),) * _positive_int(config, "layers")
    else:
        try:
            widths = hidden_widths(config.hidden_sizes, 0)
        except ValueError as error:
            raise ValueError(
                "model.hidden_sizes must be None or a non-empty sequence of positive ints, "
                f"got {config.hidden_sizes!r}"
            ) from error
    embed_dim = _positive_int(config, "embed_dim")
    baseline_widths = (_positive_int(config, "baseline_hidden"),) * len(widths)
    x_dim, y_dim = _feature_dim(example_batch, "x"), _feature_dim(example_batch, "y")
    net = dict(hidden=widths, activation=config.activation, rngs=rngs)
    if config.critic == "separable":
        critic = CRITICS["separable"](x_dim, y_dim, embed_dim=embed_dim, **net)
    elif config.critic == "concat":
        critic = CRITICS["concat"](x_dim, y_dim, **net)
    else:
        critic = CRITICS["bilinear"](x_dim, y_dim, rngs=rngs)
    baseline = BaselineMLP(y_dim, hidden=baseline_widths, activation=config.activation, rngs=rngs)
    return MICritic(critic, baseline)


#: Declared hyperparameters of ``mi_critic``: the critics of Poole et al. (2019).
DEFAULTS = {
    "critic": "separable",
    "hidden": 256,
    "layers": 2,
    # A sequence of hidden widths replaces `hidden` x `layers`, e.g. (512, 128).
    "hidden_sizes": None,
    "embed_dim": 32,
    "baseline_hidden": 512,
    "activation": "relu",
}

register_model(
    "mi_critic",
    make_mi_critic,
    defaults=DEFAULTS,
    doc="a critic f(x, y) (separable, concat or bilinear) and a baseline a(y) for vb.mi",
)
