"""Hierarchical Gaussian latents: a two-variable chain sampled and scored jointly."""

from collections.abc import Callable

import distrax
import jax
import jax.numpy as jnp


class GaussianChain:
    """The distribution of ``(a, b)`` with ``a ~ N(loc, scale)`` and ``b | a ~ N(f(a))``.

    Samples and log-densities are dicts ``{first: a, second: b}`` with a leading sample
    axis, the pytree latents :func:`vbounds.estimate` accepts. Used for the two-layer
    IWAE posterior ``q(z1|x) q(z2|z1)`` and prior ``p(z2) p(z1|z2)``.
    """

    def __init__(
        self,
        loc: jax.Array,
        scale: jax.Array,
        conditional: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
        *,
        names: tuple[str, str],
    ):
        """Builds the chain.

        Args:
          loc: location of the first variable.
          scale: scale of the first variable.
          conditional: maps the first variable to the location and scale of the second.
          names: keys of the first and second variables in samples.
        """
        self.first = distrax.MultivariateNormalDiag(loc, scale)
        self.conditional = conditional
        self.names = names

    def sample(self, *, seed: jax.Array, sample_shape=()) -> dict:
        """Draws reparameterised samples of both variables."""
        key_first, key_second = jax.random.split(seed)
        a = self.first.sample(seed=key_first, sample_shape=sample_shape)
        loc, scale = self.conditional(a)
        b = loc + scale * jax.random.normal(key_second, loc.shape, loc.dtype)
        return {self.names[0]: a, self.names[1]: b}

    def log_prob(self, value: dict) -> jax.Array:
        """Joint log-density of ``{first: a, second: b}``, summed over the event."""
        a, b = value[self.names[0]], value[self.names[1]]
        loc, scale = self.conditional(a)
        return self.first.log_prob(a) + distrax.MultivariateNormalDiag(loc, scale).log_prob(b)

    def sample_and_log_prob(self, *, seed: jax.Array, sample_shape=()) -> tuple[dict, jax.Array]:
        """Draws samples and returns them with their joint log-density."""
        value = self.sample(seed=seed, sample_shape=sample_shape)
        return value, self.log_prob(value)

    def mean(self, *, seed: jax.Array, num_samples: int = 1000) -> dict:
        """The first variable's exact mean and a Monte Carlo mean of the second."""
        a = self.first.sample(seed=seed, sample_shape=(num_samples,))
        loc, _ = self.conditional(a)
        return {self.names[0]: self.first.mean(), self.names[1]: jnp.mean(loc, axis=0)}
