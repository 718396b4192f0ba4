"""A mixture of IGSO(3) densities on SO(3) with learned centres, scales and weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.data.rotations import mixture_log_prob
from vbounds.lab.registry import register_model


class IGSO3Mixture(nnx.Module):
    """``p(R) = sum_k softmax(logits)_k IGSO(3)(R; mu_k, exp(log_sigma_k))``.

    Centres are rotation vectors, initialised as small random rotations about random axes;
    its log-density is exact (the IGSO(3) series), so maximum likelihood needs no bound.
    """

    def __init__(self, num_components: int, init_sigma: float, *, rngs: nnx.Rngs):
        centres = jax.random.normal(rngs.params(), (num_components, 3))
        self.centres = nnx.Param(centres)
        self.log_sigma = nnx.Param(jnp.full(num_components, jnp.log(init_sigma)))
        self.logits = nnx.Param(jnp.zeros(num_components))

    def log_prob(self, x: jax.Array) -> jax.Array:
        """``[N, 3]`` rotation vectors -> ``[N]`` log-densities (Haar reference)."""
        return mixture_log_prob(
            x,
            self.centres[...],
            jnp.exp(self.log_sigma[...]),
            jax.nn.log_softmax(self.logits[...]),
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.log_prob(x)


def make_igso3_mixture(config, *, rngs: nnx.Rngs, example_batch: dict) -> IGSO3Mixture:
    """The mixture of a ``model`` section: ``num_components`` and ``init_sigma``."""
    x = example_batch["x"]
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"model 'igso3_mixture' takes rotation vectors [batch, 3], got {x.shape}")
    k = config.num_components
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"model.num_components must be a positive int, got {k!r}")
    if not config.init_sigma > 0:
        raise ValueError(f"model.init_sigma must be positive, got {config.init_sigma!r}")
    return IGSO3Mixture(k, float(config.init_sigma), rngs=rngs)


register_model(
    "igso3_mixture",
    make_igso3_mixture,
    defaults={"num_components": 3, "init_sigma": 0.7},
    doc="mixture of IGSO(3) densities on SO(3) (exact log-density)",
)
