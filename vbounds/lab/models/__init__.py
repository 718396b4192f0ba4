"""Flax (nnx) models and their factories.

Registered names (``config.model.name``): ``vae``, ``cvae``, ``two_layer_vae``; any other
model by :func:`vbounds.lab.register_model` or an import path ``"package.module:make"``.
A factory is ``make(model_config, *, rngs, example_batch) -> nnx.Module``: the example
batch (host arrays, batch on axis 0) gives the input sizes.
"""

from flax import nnx

from vbounds.lab.models import diffusion, mi, vib  # register their models
from vbounds.lab.models.distributions import GaussianChain
from vbounds.lab.models.layers import MLP, GaussianHead
from vbounds.lab.models.vae import CVAE, VAE, TwoLayerVAE
from vbounds.lab.registry import import_submodules, register_model, resolve


def build_model(config, *, example_batch: dict, seed: int = 0) -> nnx.Module:
    """Builds the model a config's ``model`` section names.

    Args:
      config: the ``model`` section (a registered name or an import path, and the
        model's declared keys).
      example_batch: a batch of the data (``"x"``, ``"y"`` where labelled).
      seed: initialisation seed.

    Returns:
      The initialised ``nnx.Module``.
    """
    factory, section = resolve("model", config)
    return factory(section, rngs=nnx.Rngs(seed), example_batch=example_batch)


def _data_dim(example_batch: dict) -> int:
    x = example_batch["x"]
    if x.ndim != 2:
        raise ValueError(f"the VAE models take flat inputs [batch, dim], got x of shape {x.shape}")
    return int(x.shape[1])


def _tuple(value):
    if isinstance(value, list | tuple):
        return tuple(_tuple(v) for v in value)
    return value


_VAE_DEFAULTS = {
    "latent_dim": 16,
    "hidden_sizes": (100, 100),
    "activation": "tanh",
    "likelihood": "bernoulli",
}


def make_vae(config, *, rngs, example_batch):
    """The one-stochastic-layer VAE of the IWAE paper (Gaussian latent, MLPs)."""
    return VAE(
        data_dim=_data_dim(example_batch),
        latent_dim=config.latent_dim,
        hidden_sizes=_tuple(config.hidden_sizes),
        activation=config.activation,
        likelihood=config.likelihood,
        rngs=rngs,
    )


def make_cvae(config, *, rngs, example_batch):
    """A conditional VAE: encoder, decoder and a learned prior conditioned on the label."""
    if "y" not in example_batch:
        raise ValueError("model 'cvae' needs labelled data (batches with 'y'); this data has none")
    return CVAE(
        data_dim=_data_dim(example_batch),
        latent_dim=config.latent_dim,
        hidden_sizes=_tuple(config.hidden_sizes),
        activation=config.activation,
        likelihood=config.likelihood,
        num_classes=config.num_classes,
        rngs=rngs,
    )


def make_two_layer_vae(config, *, rngs, example_batch):
    """The IWAE paper's two-stochastic-layer model."""
    return TwoLayerVAE(
        data_dim=_data_dim(example_batch),
        latent_dims=_tuple(config.latent_dims),
        hidden_sizes=_tuple(config.hidden_sizes),
        activation=config.activation,
        likelihood=config.likelihood,
        rngs=rngs,
    )


register_model("vae", make_vae, defaults=_VAE_DEFAULTS)
register_model("cvae", make_cvae, defaults={**_VAE_DEFAULTS, "num_classes": 10})
register_model(
    "two_layer_vae",
    make_two_layer_vae,
    defaults={
        "latent_dims": (100, 50),
        "hidden_sizes": ((100, 100), (50, 50)),
        "activation": "tanh",
        "likelihood": "bernoulli",
    },
)

__all__ = [
    "CVAE",
    "MLP",
    "VAE",
    "GaussianChain",
    "GaussianHead",
    "TwoLayerVAE",
    "build_model",
    "make_cvae",
    "make_two_layer_vae",
    "make_vae",
]

# Every module of this package registers its own components.
import_submodules("vbounds.lab.models")
