"""The fixed probe set: the same digits explained at every firing, and kept across resumes."""

import json
import os
from collections.abc import Sequence

import numpy as np

PROBES_FILE = "probes.json"


def select_probes(labels: np.ndarray, per_class: int = 2) -> np.ndarray:
    """Indices of the first `per_class` examples of each class, ordered by class.

    Deterministic: depends only on the labels' order, which is fixed for an
    eval split.

    Args:
      labels: int class labels [N].
      per_class: examples to take per class.

    Returns:
      int64 indices [num_classes * per_class] (fewer where a class is short).
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}.")
    labels = np.asarray(labels)
    chosen = [np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]
    return np.concatenate(chosen).astype(np.int64)


def read_probes(workdir: str, num_examples: int) -> np.ndarray | None:
    """The probe indices stored in `workdir/probes.json`, or None; writes nothing.

    Raises:
      ValueError: the file is damaged, or names an index outside the eval split.
    """
    path = os.path.join(workdir, PROBES_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            chosen = np.asarray(json.load(f)["indices"], np.int64).reshape(-1)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path} is damaged ({type(e).__name__}: {e}); delete it to pick probes again "
            "(the attribution history then starts over: delete WORKDIR/history too)."
        ) from e
    if chosen.size and chosen.max() >= num_examples:
        raise ValueError(
            f"{path} names probe index {chosen.max()} but the eval split has {num_examples} "
            "examples; was the data source changed? Delete the file to pick new probes."
        )
    return chosen


def load_or_select_probes(workdir: str, labels: np.ndarray, per_class: int = 2,
                          indices: Sequence[int] | None = None) -> np.ndarray:
    """The probe indices stored in `workdir`, else new ones, stored there for a resume.

    Args:
      workdir: where `probes.json` lives.
      labels: eval-split labels [N], to select from and to check stored indices against.
      per_class: examples per class when selecting.
      indices: explicit indices to use instead of selecting per class.

    Returns:
      int64 indices into the eval split.
    """
    chosen = read_probes(workdir, len(labels))
    if chosen is not None:
        return chosen
    path = os.path.join(workdir, PROBES_FILE)
    if indices:
        chosen = np.asarray(list(indices), np.int64)
        bad = chosen[(chosen < 0) | (chosen >= len(labels))]
        if bad.size:
            raise ValueError(
                f"Probe indices {bad.tolist()} are outside the eval split [0, {len(labels)})."
            )
    else:
        chosen = select_probes(labels, per_class)
    with open(path + ".tmp", "w") as f:  # Whole or not at all: a kill leaves no half file.
        json.dump({"indices": chosen.tolist(), "labels": np.asarray(labels)[chosen].tolist()}, f)
    os.replace(path + ".tmp", path)
    return chosen
