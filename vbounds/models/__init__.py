"""Flax (nnx) models: VAE / IWAE architectures, a two-stochastic-layer model, a CVAE."""

from flax import nnx

from vbounds.models.distributions import GaussianChain
from vbounds.models.layers import MLP, GaussianHead
from vbounds.models.vae import CVAE, VAE, TwoLayerVAE

MODELS = ("vae", "two_layer_vae", "cvae")


def build_model(config, *, data_dim: int, likelihood: str, num_classes: int = 0, seed: int = 0):
    """Builds the model a config's ``model`` section names.

    Args:
      config: mapping with ``name`` in :data:`MODELS` and the model's keyword sizes
        (``latent_dim``, ``hidden_sizes``, ``activation`` for ``vae`` / ``cvae``;
        ``latent_dims``, ``hidden_sizes`` for ``two_layer_vae``).
      data_dim: size of a flat input.
      likelihood: ``"bernoulli"`` or ``"gaussian"`` (from the data set).
      num_classes: label classes, needed by ``cvae``.
      seed: initialisation seed.

    Returns:
      The initialised ``nnx.Module``.
    """
    kwargs = {k: v for k, v in dict(config).items() if k != "name"}
    for key in ("hidden_sizes", "latent_dims"):
        if key in kwargs:
            kwargs[key] = _to_tuple(kwargs[key])
    kwargs.update(data_dim=data_dim, likelihood=likelihood, rngs=nnx.Rngs(seed))
    name = config.get("name")
    if name == "vae":
        return VAE(**kwargs)
    if name == "cvae":
        return CVAE(num_classes=num_classes, **kwargs)
    if name == "two_layer_vae":
        return TwoLayerVAE(**kwargs)
    raise ValueError(f"unknown model.name {name!r}; valid names: {', '.join(MODELS)}")


def _to_tuple(value):
    if isinstance(value, list | tuple):
        return tuple(_to_tuple(v) for v in value)
    return value


__all__ = [
    "CVAE",
    "MLP",
    "MODELS",
    "VAE",
    "GaussianChain",
    "GaussianHead",
    "TwoLayerVAE",
    "build_model",
]
