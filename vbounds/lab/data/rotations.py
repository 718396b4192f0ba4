"""A mixture of isotropic Gaussians on SO(3) (IGSO(3)) with its exact density, ``so3_mixture``.

Rotation ``R = mu_k exp(noise)`` with component ``k ~ Categorical(weights)`` and
``noise ~ IGSO(3)(sigma_k)``; the centres ``mu_k`` are uniform random rotations drawn from
``seed``. Points are rotation vectors ``[3]``. Every example carries ``log_p_true``, its
exact log-density under the mixture (with respect to the uniform probability measure on
SO(3)), so a fitted density's test NLL can be set beside the data's own entropy.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

import vbounds as vb
from vbounds.lab.data.dataset import batch_indices
from vbounds.lab.registry import register_dataset


def mixture_log_prob(x, centres, sigmas, log_weights):
    """``log sum_k w_k f_{sigma_k}(mu_k^T R)`` for rotation vectors ``x`` ``[N, 3]``."""
    per_component = jax.vmap(
        lambda mu, sigma: vb.diffusion.igso3_log_prob(x, sigma, mean=mu), out_axes=-1
    )(centres, sigmas)
    return jax.nn.logsumexp(per_component + log_weights, axis=-1)


@functools.partial(jax.jit, static_argnums=2)
def _draw(key, sigmas, n):
    k = sigmas.shape[0]
    key_c, key_k, key_n = jax.random.split(key, 3)
    # Uniform rotations: IGSO(3) at a large scale is uniform to float precision.
    centres = vb.diffusion.igso3_sample(key_c, 20.0, (k,))
    log_weights = jnp.full(k, -np.log(k))
    comp = jax.random.categorical(key_k, log_weights, shape=(n,))
    # n draws from every component, then each example keeps its own component's draw.
    noise = jax.vmap(lambda key, s: vb.diffusion.igso3_sample(key, s, (n,)))(
        jax.random.split(key_n, k), sigmas
    )
    noise = jnp.take_along_axis(noise, comp[None, :, None], axis=0)[0]
    x = vb.diffusion.so3_log(vb.diffusion.so3_exp(centres[comp]) @ vb.diffusion.so3_exp(noise))
    return x, mixture_log_prob(x, centres, sigmas, log_weights), centres


@dataclasses.dataclass(frozen=True)
class RotationMixture:
    """Draws of an IGSO(3) mixture, a fixed train/test split.

    Attributes:
      sigmas: the scale of each component (one component per entry).
      num_train: training rotations.
      num_test: test rotations.
      seed: seed of the centres and of the draws.
    """

    sigmas: tuple[float, ...] = (0.2, 0.35, 0.5)
    num_train: int = 4000
    num_test: int = 1000
    seed: int = 0

    @functools.cached_property
    def _arrays(self):
        x, log_p, centres = _draw(
            jax.random.key(self.seed),
            jnp.asarray(self.sigmas, jnp.float32),
            self.num_train + self.num_test,
        )
        return np.asarray(x, np.float32), np.asarray(log_p, np.float32), np.asarray(centres)

    def _rows(self, rows):
        x, log_p, _ = self._arrays
        return {"x": x[rows], "log_p_true": log_p[rows]}

    def train_batch(self, *, seed: int, step: int, batch_size: int) -> dict:
        """The training batch of ``step`` (rotation vectors and their exact log-density)."""
        rows = batch_indices(
            seed=seed, step=step, num_examples=self.num_train, batch_size=batch_size
        )
        return self._rows(rows)

    def test_split(self) -> dict:
        """The ``num_test`` held-out rotations."""
        return self._rows(slice(self.num_train, None))

    def validate(self, name: str = "data") -> RotationMixture:
        """Checks the scales and sizes; returns ``self``."""
        if not self.sigmas or any(not (s > 0) for s in self.sigmas):
            raise ValueError(f"{name}.sigmas must be positive scales, got {self.sigmas!r}")
        for field in ("num_train", "num_test"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{field} must be a positive int, got {value!r}")
        return self


register_dataset(
    "so3_mixture",
    lambda c: RotationMixture(
        sigmas=tuple(float(s) for s in c.sigmas),
        num_train=c.num_train,
        num_test=c.num_test,
        seed=c.seed,
    ),
    defaults={"sigmas": (0.2, 0.35, 0.5), "num_train": 4000, "num_test": 1000, "seed": 0},
    doc="rotation vectors from a mixture of IGSO(3) components, with their exact log-density",
)
