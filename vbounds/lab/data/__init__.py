"""Datasets: embedded digits, synthetic sets with known likelihood, local-file loaders.

Registered names (``config.data.name``): ``digits``, ``linear_gaussian``, ``mnist``,
``fashion_mnist``, ``npz``; any other dataset by :func:`vbounds.lab.register_dataset` or
an import path ``"package.module:make"``. See :mod:`vbounds.lab.data.dataset` for the
protocol a dataset follows.
"""

from vbounds.lab.data import classification, levels, staircase  # register their datasets
from vbounds.lab.data.dataset import Dataset, batch_indices, binarize, binarize_fixed
from vbounds.lab.data.digits import load_digits
from vbounds.lab.data.files import load_mnist, load_npz, read_idx
from vbounds.lab.data.synthetic import linear_gaussian_parameters, load_linear_gaussian
from vbounds.lab.registry import import_submodules, register_dataset, resolve


def load_dataset(config):
    """Loads and validates the dataset a config's ``data`` section names.

    Args:
      config: the ``data`` section: ``name`` (registered or ``"package.module:attr"``)
        and the dataset's declared keys.

    Returns:
      The dataset (validated when it has a ``validate`` method).
    """
    factory, section = resolve("dataset", config)
    dataset = factory(section)
    if hasattr(dataset, "validate"):
        dataset = dataset.validate(f"data[{section.name!r}]")
    return dataset


def _file_loader(loader):
    def make(config):
        if not config.path:
            raise ValueError(f"data.path must name the local file or directory of {config.name!r}")
        return loader(config.path, binarize=config.binarize, seed=config.seed)

    return make


register_dataset(
    "digits",
    lambda c: load_digits(seed=c.seed, binarize=c.binarize, num_test=c.num_test),
    defaults={"seed": 0, "binarize": True, "num_test": 297},
    doc="scikit-learn's 1,797 8x8 digits (embedded), dynamically binarised",
)
register_dataset(
    "linear_gaussian",
    lambda c: load_linear_gaussian(**{k: v for k, v in c.items() if k != "name"}),
    defaults={
        "seed": 0,
        "data_dim": 8,
        "latent_dim": 2,
        "noise_scale": 0.5,
        "num_train": 2000,
        "num_test": 500,
    },
    doc="x = W z + b + noise, with the exact test log-likelihood",
)
for _name in ("mnist", "fashion_mnist"):
    register_dataset(
        _name,
        _file_loader(load_mnist),
        defaults={"path": "", "binarize": True, "seed": 0},
        doc="the four IDX files in data.path (nothing downloads)",
    )
register_dataset(
    "npz",
    _file_loader(load_npz),
    defaults={"path": "", "binarize": False, "seed": 0},
    doc="an .npz archive with x_train, x_test (and y_train, y_test)",
)

__all__ = [
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

# Every module of this package registers its own components.
import_submodules("vbounds.lab.data")
