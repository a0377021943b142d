"""Small image-classification data sets as numpy arrays (no torch, no downloads).

- Fashion-MNIST from the idx ``.gz`` files Debian's ``dataset-fashion-mnist`` installs (or the same
  files anywhere: ``data_dir=`` or the ``LRKIT_DATA_DIR`` environment variable).
- The 8×8 digits bundled with lrkit (1,797 images), split 1,438 train / 359 test with a fixed seed.

Images come back as float32 in [0, 1] with shape (N, 1, H, W); labels as int64.
:func:`split_validation` carves a seeded validation split from the training arrays: what a
search selects on, so that the test set is only ever reported.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrkit.errors import LRKitError

FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
_FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}


class DatasetMissing(LRKitError):
    """The data set's files are not where lrkit looked."""


class DataError(LRKitError):
    """A task's arrays break a rule training relies on; the message names the array, the rule and the value."""


@dataclass(frozen=True)
class ArrayDataset:
    """Train, test and (after :func:`split_validation`) validation arrays of one data set."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return int(max(self.train_y.max(), self.test_y.max())) + 1


def check_arrays(data: object) -> None:
    """Check the arrays of a task's data before anything trains on them (:meth:`Task.split_data` calls it).

    The rules, each error naming the array (``train x``, ``test y``, ...), the rule and the value:
    every array a numpy array; ``x`` and ``y`` of a split the same number (> 0) of examples; ``y``
    one int64 class index >= 0 per example (torch's cross-entropy refuses int32, and float or one-hot
    labels are not indices); ``x`` numeric, finite where floating, of one dtype and one example
    shape in every split. Whether ``x`` has the model's dtype and ``y`` stays below its number of
    outputs needs the model: :func:`lrkit.lrbench.tasks.catalogue.check_task`.

    Raises:
        DataError: as above.
    """
    if not isinstance(data, ArrayDataset):
        raise DataError(f"the task's load_data must return an lrkit.lrbench.tasks.ArrayDataset, but returned "
                        f"{type(data).__name__}")
    splits = [(s, getattr(data, f"{s}_x"), getattr(data, f"{s}_y")) for s in ("train", "val", "test")]
    first_x = data.train_x
    for split, x, y in splits:
        if split == "val" and x is None and y is None:
            continue
        for part, a in (("x", x), ("y", y)):
            if not isinstance(a, np.ndarray):
                how = f"{part}.numpy()" if hasattr(a, "numpy") else f"numpy.asarray({part})"
                raise DataError(f"{split} {part} must be a numpy array, but got {type(a).__name__}: convert with {how}")
        if len(x) != len(y) or len(y) == 0:
            raise DataError(f"{split} x and {split} y must hold the same number (> 0) of examples, but got "
                            f"{len(x)} and {len(y)}")
        _check_labels(split, y)
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise DataError(f"{split} x must be numeric (float32 for most models), but got {x.dtype}: convert with "
                            "x.astype(numpy.float32)")
        if x.dtype != first_x.dtype:
            raise DataError(f"{split} x must be {first_x.dtype} like train x, but got {x.dtype}: convert with "
                            f"x.astype(numpy.{first_x.dtype})")
        if x.shape[1:] != first_x.shape[1:]:
            raise DataError(f"{split} x must hold examples of train x's shape {first_x.shape[1:]}, but got "
                            f"{x.shape[1:]}")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise DataError(f"{split} x must be finite, but holds {int((~np.isfinite(x)).sum())} NaN or inf "
                            f"values (the first at index {tuple(int(i) for i in bad)}: {x[tuple(bad)]})")


def _check_labels(split: str, y: np.ndarray) -> None:
    if y.ndim != 1:
        hint = ": for one-hot labels, y.argmax(axis=1)" if y.ndim == 2 else ""
        raise DataError(f"{split} y must be 1-d (one class index per example), but got shape {y.shape}{hint}")
    if y.dtype != np.int64:
        example = f" (e.g. {y[0].item()!r})" if not np.issubdtype(y.dtype, np.integer) else ""
        raise DataError(f"{split} y must be int64 class indices, but got {y.dtype}{example}: convert with "
                        "y.astype(numpy.int64)")
    if int(y.min()) < 0:
        raise DataError(f"{split} y must be class indices >= 0, but got {int(y.min())}")


def validation_count(n_train: int, val_size: int | float) -> int:
    """How many of ``n_train`` training examples ``val_size`` holds out (a count, or a fraction < 1)."""
    count = int(round(n_train * val_size)) if 0 < val_size < 1 else int(val_size)
    if not 0 <= count < n_train:
        raise LRKitError(f"`0 <= validation examples < training examples` must hold, but got "
                         f"(val_size={val_size!r}, n_train={n_train}).")
    return count


def split_validation(data: ArrayDataset, val_size: int | float, seed: int = 0) -> ArrayDataset:
    """Hold ``val_size`` training examples out as the validation split (a count, or a fraction < 1).

    The split is a fixed permutation drawn from ``numpy.random.default_rng([seed, 7919])``: the
    same task and seed always give the same split, whatever the training seed. ``val_size=0``
    returns the data unchanged (no validation split).

    Example:
        >>> d = split_validation(load_digits(), 0.1)
        >>> len(d.train_y), len(d.val_y), len(d.test_y)
        (1294, 144, 359)
    """
    count = validation_count(len(data.train_y), val_size)
    if count == 0:
        return data
    order = np.random.default_rng([seed, 7919]).permutation(len(data.train_y))
    val, train = np.sort(order[:count]), np.sort(order[count:])
    return ArrayDataset(data.name, data.train_x[train], data.train_y[train], data.test_x, data.test_y,
                        data.train_x[val], data.train_y[val])


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise LRKitError(f"{path} is not an idx file of unsigned bytes (magic {raw[:4]!r})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise LRKitError(f"{path}: header says {shape} but holds {data.size} values")
    return data.reshape(shape)


def fashion_mnist_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the Fashion-MNIST files are: ``data_dir``, else ``$LRKIT_DATA_DIR``, else Debian's folder."""
    candidates = [Path(data_dir)] if data_dir else []
    if not candidates and os.environ.get("LRKIT_DATA_DIR"):
        candidates = [Path(os.environ["LRKIT_DATA_DIR"])]
    if not candidates:
        candidates = [Path(d) for d in FASHION_MNIST_DIRS]
    for folder in candidates:
        if all((folder / name).is_file() for name in _FASHION_FILES.values()):
            return folder
    looked = ", ".join(str(c) for c in candidates)
    raise DatasetMissing(
        f"Fashion-MNIST not found (looked in {looked} for {', '.join(_FASHION_FILES.values())}). "
        "Install it with `sudo apt-get install -y dataset-fashion-mnist`, or point --data-dir / "
        "LRKIT_DATA_DIR at a folder holding those four idx .gz files."
    )


def load_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> ArrayDataset:
    """Fashion-MNIST: 60,000 train and 10,000 test 28×28 images, 10 classes."""
    folder = fashion_mnist_dir(data_dir)
    arrays = {key: _read_idx(folder / name) for key, name in _FASHION_FILES.items()}
    return ArrayDataset(
        name="fashion-mnist",
        train_x=(arrays["train_x"].astype(np.float32) / 255.0)[:, None],
        train_y=arrays["train_y"].astype(np.int64),
        test_x=(arrays["test_x"].astype(np.float32) / 255.0)[:, None],
        test_y=arrays["test_y"].astype(np.int64),
    )


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> ArrayDataset:
    """The bundled 8×8 digits, split into train and test by a fixed permutation."""
    path = Path(__file__).parent / "data" / "digits.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    x = (table[:, :64] / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    y = table[:, 64].astype(np.int64)
    order = np.random.default_rng(split_seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return ArrayDataset("digits", x[train], y[train], x[test], y[test])
