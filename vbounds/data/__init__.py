"""Data sets: embedded digits, synthetic sets with known likelihood, local-file loaders."""

from vbounds.data.dataset import Dataset, batch_indices, binarize, binarize_fixed
from vbounds.data.digits import load_digits
from vbounds.data.files import load_mnist, load_npz, read_idx
from vbounds.data.synthetic import linear_gaussian_parameters, load_linear_gaussian

_NEEDS_PATH = ("mnist", "fashion_mnist", "npz")
DATASETS = ("digits", "linear_gaussian", *_NEEDS_PATH)


def load_dataset(config) -> Dataset:
    """Loads the data set a config's ``data`` section names.

    Args:
      config: a mapping (e.g. ``ml_collections.ConfigDict``) with ``name`` in
        :data:`DATASETS`, ``path`` for the file-backed sets, and optional ``seed``,
        ``binarize`` and, for ``linear_gaussian``, its sizes.

    Returns:
      The :class:`Dataset`.
    """
    name = config.get("name")
    seed = config.get("seed", 0)
    if name == "digits":
        return load_digits(seed=seed, binarize=config.get("binarize", True))
    if name == "linear_gaussian":
        sizes = ("data_dim", "latent_dim", "noise_scale", "num_train", "num_test")
        return load_linear_gaussian(seed=seed, **{k: config[k] for k in sizes if k in config})
    if name in _NEEDS_PATH:
        if not config.get("path"):
            raise ValueError(f"data.path must name the local file or directory of {name!r}")
        if name == "npz":
            return load_npz(config.path, binarize=config.get("binarize", False), seed=seed)
        return load_mnist(config.path, binarize=config.get("binarize", True), seed=seed)
    raise ValueError(f"unknown data.name {name!r}; valid names: {', '.join(DATASETS)}")


__all__ = [
    "DATASETS",
    "Dataset",
    "batch_indices",
    "binarize",
    "binarize_fixed",
    "load_dataset",
    "linear_gaussian_parameters",
    "load_digits",
    "load_linear_gaussian",
    "load_mnist",
    "load_npz",
    "read_idx",
]
