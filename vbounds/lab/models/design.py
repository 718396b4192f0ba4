"""A design policy for adaptive experimental design (Foster et al. 2021, Deep Adaptive Design).

:class:`DesignPolicy` maps the history of experiments ``h_t = ((xi_1, y_1), ..., (xi_t,
y_t))`` to the next design ``xi_{t+1}``: every pair is encoded by an MLP, the codes are
summed (the order of past experiments does not matter), and an MLP emits the design. The
first design is emitted from the empty sum, so it is learned too. With ``adaptive=False``
the history is ignored: the policy is a learned fixed sequence of designs (the static
design baseline).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.registry import register_model


class DesignPolicy(nnx.Module):
    """History encoder (summed pair codes) and design emitter."""

    def __init__(
        self,
        design_dim: int,
        *,
        hidden: int,
        num_experiments: int,
        adaptive: bool,
        rngs: nnx.Rngs,
    ):
        """Builds the networks from ``rngs``.

        Args:
          design_dim: dimension of a design ``xi``.
          hidden: units of the hidden layers and of the history code.
          num_experiments: the number of designs of a static (non-adaptive) policy.
          adaptive: whether the design depends on the history.
          rngs: the initialisation keys.
        """
        self.adaptive = adaptive
        self.encoder_in = nnx.Linear(design_dim + 1, hidden, rngs=rngs)
        self.encoder_out = nnx.Linear(hidden, hidden, rngs=rngs)
        self.emitter_in = nnx.Linear(hidden, hidden, rngs=rngs)
        self.emitter_out = nnx.Linear(hidden, design_dim, rngs=rngs)
        self.static = nnx.Param(
            0.1 * jax.random.normal(rngs.params(), (num_experiments, design_dim))
        )

    def encode(self, design: jax.Array, outcome: jax.Array) -> jax.Array:
        """The code of one experiment per row: ``[N, dim], [N] -> [N, hidden]``."""
        pair = jnp.concatenate([design, outcome[:, None]], axis=-1)
        return self.encoder_out(jax.nn.relu(self.encoder_in(pair)))

    def __call__(self, history_code: jax.Array, step: int) -> jax.Array:
        """The design of experiment ``step`` (0-based) from the summed history code."""
        if not self.adaptive:
            return jnp.broadcast_to(
                self.static[step], (history_code.shape[0], self.static.shape[1])
            )
        return self.emitter_out(jax.nn.relu(self.emitter_in(history_code)))


def make_design_policy(config, *, rngs: nnx.Rngs, example_batch: dict) -> DesignPolicy:
    """The policy of a ``model`` section: ``hidden`` units, ``adaptive`` or static over
    ``num_experiments``; designs live in the space of ``x`` (the parameters)."""
    x = example_batch["x"]
    if x.ndim != 2:
        raise ValueError(f"model 'design_policy' takes parameters [batch, dim], got {x.shape}")
    for key in ("hidden", "num_experiments"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    if not isinstance(config.adaptive, bool):
        raise ValueError(f"model.adaptive must be True or False, got {config.adaptive!r}")
    return DesignPolicy(
        x.shape[1],
        hidden=config.hidden,
        num_experiments=config.num_experiments,
        adaptive=config.adaptive,
        rngs=rngs,
    )


#: Declared hyperparameters of ``design_policy``.
DEFAULTS = {"hidden": 64, "num_experiments": 10, "adaptive": True}

register_model(
    "design_policy",
    make_design_policy,
    defaults=DEFAULTS,
    doc="adaptive design policy (DAD): summed MLP codes of past experiments -> next design",
)
