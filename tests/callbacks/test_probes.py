"""The probe set: k per class, deterministic, and stored for a resumed run."""

import json

import numpy as np
import pytest

from callbacks.probes import PROBES_FILE, load_or_select_probes, select_probes


def test_k_per_class_in_class_order():
    labels = np.array([3, 1, 1, 0, 3, 0, 2, 2, 1])
    idx = select_probes(labels, per_class=2)
    assert idx.tolist() == [3, 5, 1, 2, 6, 7, 0, 4]
    assert labels[idx].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_real_eval_split_gives_twenty_balanced_digits(mnist):
    idx = select_probes(mnist.eval_labels)
    assert len(idx) == 20
    assert np.bincount(mnist.eval_labels[idx]).tolist() == [2] * 10


def test_stored_and_reused_on_resume(tmp_path):
    labels = np.array([0, 1, 0, 1, 2, 2])
    first = load_or_select_probes(str(tmp_path), labels, per_class=1)
    stored = json.loads((tmp_path / PROBES_FILE).read_text())
    assert stored["indices"] == first.tolist()
    # A resumed run asks for something else but gets the same digits.
    again = load_or_select_probes(str(tmp_path), labels, per_class=2)
    assert again.tolist() == first.tolist()


def test_explicit_indices_checked(tmp_path):
    labels = np.arange(10)
    assert load_or_select_probes(str(tmp_path), labels, indices=[4, 2]).tolist() == [4, 2]
    with pytest.raises(ValueError, match=r"\[12\] are outside"):
        load_or_select_probes(str(tmp_path / "other"), labels, indices=[1, 12])
