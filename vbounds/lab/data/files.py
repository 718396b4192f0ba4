"""Loaders for data sets kept as local files: MNIST-style IDX files and ``.npz`` archives.

Nothing is downloaded: a missing file raises ``FileNotFoundError`` naming the file
that was expected and where.
"""

import gzip
import os

import numpy as np

from vbounds.lab.data.dataset import Dataset, binarize_fixed

# IDX type codes (the third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (raw or gzip-compressed, by content) into a numpy array.

    Args:
      path: path of the file.

    Returns:
      The array with the shape and dtype recorded in the file's header.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: expected {os.path.abspath(path)}")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r})")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    data = np.frombuffer(raw[header:], dtype=dtype)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(directory: str, stem: str) -> str:
    candidates = [os.path.join(directory, stem + suffix) for suffix in (".gz", "")]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f"expected the IDX file {stem}(.gz) in {os.path.abspath(directory)}; "
        f"none of {candidates} exists. Put the MNIST / Fashion-MNIST files there "
        "(nothing is downloaded) or set config.data.path."
    )


def load_mnist(path: str, *, binarize: bool = True, seed: int = 0) -> Dataset:
    """Loads MNIST or Fashion-MNIST from the four standard IDX files in a directory.

    Expects ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``).

    Args:
      path: the directory holding the files.
      binarize: binarise training batches dynamically and the test set once (fixed draw).
      seed: seed of the test set's fixed binarisation.

    Returns:
      A :class:`Dataset` of flat images scaled to [0, 1].
    """
    arrays = {name: read_idx(_find_idx(path, stem)) for name, stem in _MNIST_FILES.items()}
    return _from_arrays(arrays, binarize=binarize, seed=seed, scale=255.0)


def load_npz(path: str, *, binarize: bool = False, seed: int = 0) -> Dataset:
    """Loads a data set from an ``.npz`` archive with ``x_train`` and ``x_test``.

    Optional ``y_train`` / ``y_test`` hold integer labels. Inputs are flattened; integer
    inputs are scaled by their maximum (255 for uint8) into [0, 1].

    Args:
      path: the archive's path.
      binarize: binarise training batches dynamically and the test set once (fixed draw);
        the inputs must then lie in [0, 1].
      seed: seed of the test set's fixed binarisation.

    Returns:
      A :class:`Dataset`.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"expected an .npz archive with arrays x_train and x_test at {os.path.abspath(path)}"
        )
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    missing = {"x_train", "x_test"} - set(arrays)
    if missing:
        raise ValueError(f"{path} lacks the arrays {sorted(missing)} (has {sorted(arrays)})")
    scale = 1.0
    if np.issubdtype(arrays["x_train"].dtype, np.integer):
        scale = float(np.iinfo(arrays["x_train"].dtype).max)
    return _from_arrays(arrays, binarize=binarize, seed=seed, scale=scale)


def _from_arrays(arrays: dict, *, binarize: bool, seed: int, scale: float) -> Dataset:
    def flat(x):
        return (x.reshape(len(x), -1) / scale).astype(np.float32)

    x_train, x_test = flat(arrays["x_train"]), flat(arrays["x_test"])
    if binarize and (x_train.min() < 0 or x_train.max() > 1):
        raise ValueError("binarize=True needs inputs in [0, 1]")
    labels = {k: arrays[k].astype(np.int32) if k in arrays else None for k in ("y_train", "y_test")}
    num_classes = int(labels["y_train"].max()) + 1 if labels["y_train"] is not None else 0
    return Dataset(
        x_train=x_train,
        y_train=labels["y_train"],
        x_test=binarize_fixed(x_test, seed=seed) if binarize else x_test,
        y_test=labels["y_test"],
        likelihood="bernoulli" if binarize else "gaussian",
        binarize=binarize,
        num_classes=num_classes,
    )
