"""A two-modality VAE for labelled images: ``multimodal_vae``.

Modality 1 is the image (pixels thresholded at 1/2, a Bernoulli decoder), modality 2 the
label (a categorical decoder). Each modality has its own Gaussian encoder (an expert
``q_e(z | x_e)``) and decoder ``p(x_e | z)``; the prior is ``N(0, I)``. How the experts are
combined (product, mixture, mixture of products) is the objective's choice
(:mod:`vbounds.lab.objectives.multimodal`, ``vb.multimodal``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from vbounds.lab.models.layers import ACTIVATIONS, MLP, GaussianHead
from vbounds.lab.registry import register_model


def binarize_pixels(x: jax.Array) -> jax.Array:
    """The image modality: grey levels in [0, 1] thresholded at 1/2."""
    return (x > 0.5).astype(jnp.float32)


class MultimodalVAE(nnx.Module):
    """Image and label experts and decoders sharing one Gaussian latent."""

    def __init__(self, *, data_dim, num_classes, latent_dim, hidden, activation, rngs):
        self.image_encoder = GaussianHead(
            data_dim, (hidden, hidden), latent_dim, activation=activation, rngs=rngs
        )
        self.label_encoder = GaussianHead(
            num_classes, (hidden,), latent_dim, activation=activation, rngs=rngs
        )
        self.image_decoder = MLP(
            latent_dim, (hidden, hidden), data_dim, activation=activation, rngs=rngs
        )
        self.label_decoder = MLP(
            latent_dim, (hidden,), num_classes, activation=activation, rngs=rngs
        )
        self.num_classes = num_classes
        self.latent_dim = latent_dim

    def experts(self, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(means, log_vars)``, each ``[2, latent_dim]``, for one example (image, label)."""
        loc_x, scale_x = self.image_encoder(binarize_pixels(x))
        loc_y, scale_y = self.label_encoder(jax.nn.one_hot(y, self.num_classes))
        means = jnp.stack([loc_x, loc_y])
        return means, 2.0 * jnp.log(jnp.stack([scale_x, scale_y]))

    def log_likelihood(self, x: jax.Array, y: jax.Array, z: jax.Array) -> jax.Array:
        """``[K, 2]``: ``log p(image | z_k)`` and ``log p(label | z_k)`` for ``z [K, latent]``."""
        logits = self.image_decoder(z)
        image = jnp.sum(
            binarize_pixels(x) * jax.nn.log_sigmoid(logits)
            + (1.0 - binarize_pixels(x)) * jax.nn.log_sigmoid(-logits),
            axis=-1,
        )
        label = jax.nn.log_softmax(self.label_decoder(z), axis=-1)[..., y]
        return jnp.stack([image, label], axis=-1)

    def image_probs(self, z: jax.Array) -> jax.Array:
        """Pixel probabilities of the image decoder at ``z``."""
        return jax.nn.sigmoid(self.image_decoder(z))

    def label_log_probs(self, z: jax.Array) -> jax.Array:
        """Class log-probabilities of the label decoder at ``z``."""
        return jax.nn.log_softmax(self.label_decoder(z), axis=-1)


def make_multimodal_vae(config, *, rngs: nnx.Rngs, example_batch: dict) -> MultimodalVAE:
    """The model of a ``model`` section, sized from the example batch (needs labels)."""
    if "y" not in example_batch:
        raise ValueError("model 'multimodal_vae' needs labelled data (batches with 'y')")
    if config.activation not in ACTIVATIONS:
        raise ValueError(
            f"model.activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}"
        )
    for key in ("latent_dim", "hidden", "num_classes"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{key} must be a positive int, got {value!r}")
    return MultimodalVAE(
        data_dim=int(example_batch["x"].shape[1]),
        num_classes=config.num_classes,
        latent_dim=config.latent_dim,
        hidden=config.hidden,
        activation=config.activation,
        rngs=rngs,
    )


register_model(
    "multimodal_vae",
    make_multimodal_vae,
    defaults={"latent_dim": 8, "hidden": 128, "activation": "relu", "num_classes": 10},
    doc="two-modality VAE (image, label): one Gaussian expert and decoder per modality",
)
