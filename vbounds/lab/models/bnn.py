"""A Bayesian MLP classifier: a factorised Gaussian ``q(w)`` over every weight (``bnn``).

Each dense layer holds ``loc`` and a softplus-parameterised ``scale`` for its weight matrix
and its bias. :meth:`BNN.logits` draws the network's outputs for ``w ~ q`` in one of three
ways: ``"weights"`` (one weight draw for the whole batch, Bayes by backprop),
``"local_reparam"`` (``vb.weight_space.local_reparameterization``) or ``"flipout"``
(``vb.weight_space.flipout``); :meth:`BNN.mean_logits` is the network at ``w = loc`` (the
point estimate). The ``bnn`` objective supplies the prior and the bound.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import vbounds as vb
from vbounds.lab.registry import register_model

#: How :meth:`BNN.logits` draws the outputs for ``w ~ q``.
SAMPLERS = ("weights", "local_reparam", "flipout")


class BNN(nnx.Module):
    """ReLU MLP with a mean-field Gaussian over its weights and biases."""

    def __init__(self, sizes, *, init_scale: float, rngs: nnx.Rngs):
        """``sizes = (in, hidden..., out)``; locations He-initialised, scales ``init_scale``."""
        raw = float(np.log(np.expm1(init_scale)))
        self.w_loc, self.w_raw, self.b_loc, self.b_raw = (nnx.List() for _ in range(4))
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            he = np.sqrt(2.0 / fan_in)
            self.w_loc.append(nnx.Param(he * jax.random.normal(rngs.params(), (fan_in, fan_out))))
            self.w_raw.append(nnx.Param(jnp.full((fan_in, fan_out), raw)))
            self.b_loc.append(nnx.Param(jnp.zeros(fan_out)))
            self.b_raw.append(nnx.Param(jnp.full(fan_out, raw)))

    def posterior(self) -> tuple[dict, dict]:
        """``(loc, scale)`` pytrees of ``q``: ``{"w": [...], "b": [...]}`` per layer."""
        loc = {"w": [p[...] for p in self.w_loc], "b": [p[...] for p in self.b_loc]}
        scale = {
            "w": [jax.nn.softplus(p[...]) + 1e-6 for p in self.w_raw],
            "b": [jax.nn.softplus(p[...]) + 1e-6 for p in self.b_raw],
        }
        return loc, scale

    @staticmethod
    def forward(params: dict, x: jax.Array) -> jax.Array:
        """The logits of the network with the given weights (one set for the batch)."""
        h = x
        last = len(params["w"]) - 1
        for i, (w, b) in enumerate(zip(params["w"], params["b"])):
            h = h @ w + b
            if i < last:
                h = jax.nn.relu(h)
        return h

    def mean_logits(self, x: jax.Array) -> jax.Array:
        """Logits at ``w = loc``."""
        return self.forward(self.posterior()[0], x)

    def logits(self, x: jax.Array, key: jax.Array, sampler: str) -> jax.Array:
        """Logits for ``w ~ q``, drawn by ``sampler`` (one of :data:`SAMPLERS`)."""
        loc, scale = self.posterior()
        if sampler == "weights":
            return self.forward(_draw(key, loc, scale), x)
        layer = {
            "local_reparam": vb.weight_space.local_reparameterization,
            "flipout": vb.weight_space.flipout,
        }[sampler]
        key, k_b = jax.random.split(key)
        biases = _draw(k_b, loc["b"], scale["b"])
        h = x
        last = len(loc["w"]) - 1
        for i, k_w in enumerate(jax.random.split(key, last + 1)):
            h = layer(k_w, h, loc["w"][i], scale["w"][i]) + biases[i]
            if i < last:
                h = jax.nn.relu(h)
        return h


def _draw(key, loc, scale):
    """``loc + scale * eps`` over a pytree, from one random-number op (quicker to compile)."""
    leaves, treedef = jax.tree.flatten(loc)
    flat = jax.random.normal(key, (sum(v.size for v in leaves),))
    eps, start = [], 0
    for v in leaves:
        eps.append(flat[start : start + v.size].reshape(v.shape))
        start += v.size
    return jax.tree.map(lambda m, s, e: m + s * e, loc, scale, jax.tree.unflatten(treedef, eps))


def make_bnn(config, *, rngs: nnx.Rngs, example_batch: dict) -> BNN:
    """The ``bnn`` of a ``model`` section: ``hidden`` units in each of ``layers`` layers."""
    if "y" not in example_batch:
        raise ValueError("model 'bnn' needs labelled data (batches with 'y'); this data has none")
    x = example_batch["x"]
    if x.ndim != 2:
        raise ValueError(f"model 'bnn' takes flat inputs [batch, dim], got x of shape {x.shape}")
    for key in ("hidden", "layers", "num_classes"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    if not config.init_scale > 0:
        raise ValueError(f"model.init_scale must be positive, got {config.init_scale!r}")
    sizes = (int(x.shape[1]), *(config.hidden,) * config.layers, config.num_classes)
    return BNN(sizes, init_scale=float(config.init_scale), rngs=rngs)


register_model(
    "bnn",
    make_bnn,
    defaults={"hidden": 100, "layers": 1, "num_classes": 10, "init_scale": 0.01},
    doc="Bayesian ReLU MLP classifier: mean-field Gaussian q over weights and biases",
)
