"""Every firing's attribution maps, kept in the workdir: append-only, resumable, loadable.

Layout of a history folder (the trainer's is WORKDIR/history):

  index.json       {"format": 1, "methods": [...], "signed": {method: bool},
                   "map_shape": [P, H, W, C], "settings": {how the callback showed the maps:
                   "scale", "percentile", "drift_similarity", "settle_threshold"}}
  probes.npz       images float32 [P, H, W, C], labels int32 [P]
  <method>.maps    one fixed-size record per firing: float32 scales [P] (each map's largest
                   |value|), then float16 [P, H, W, C] maps divided by their scale (so every
                   map keeps 11 bits of relative precision, however small its values)
  firings.jsonl    one JSON object per firing, written last (a firing exists once its line
                   does): step, epoch (float, or null while unknown), targets, predicted,
                   confidence (lists over probes), drift ({method: {"to_previous": x,
                   "to_first": x}}, empty at the first firing)

A resumed run keeps the firings up to the step it resumes from and drops later ones (their
steps are trained again), so the history holds every firing once, in step order.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FORMAT = 1
FOLDER = "history"  # Under the trainer's workdir.


@dataclasses.dataclass
class History:
    """The firings of a run, in step order; F firings of P probes.

    Attributes:
      steps: int64 [F] global optimizer steps.
      epochs: float64 [F] epochs done at each firing (NaN where unknown).
      maps: method -> float32 [F, P, H, W, C].
      probes: float32 [P, H, W, C] probe images; labels: int32 [P].
      targets, predicted: int32 [F, P] the explained and the predicted classes.
      confidence: float32 [F, P] the predicted class's probability.
      drift: method -> {"to_previous": float64 [F], "to_first": [F]} (NaN at the first firing).
      signed: method -> whether its maps are signed.
      settings: the writing callback's display settings (scale, percentile, drift
        similarity, settle threshold).
    """

    steps: np.ndarray
    epochs: np.ndarray
    maps: dict[str, np.ndarray]
    probes: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    drift: dict[str, dict[str, np.ndarray]]
    signed: dict[str, bool]
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return list(self.maps)


def history_dir(path: str | os.PathLike) -> str:
    """The history folder: `path` itself if it holds one, else `path/history`."""
    path = os.fspath(path)
    return path if os.path.exists(os.path.join(path, "index.json")) else os.path.join(
        path, FOLDER)


def load_history(path: str | os.PathLike) -> History:
    """Reads the history in a workdir (or a history folder itself).

    Raises:
      FileNotFoundError: naming the folder, when it holds no history.
    """
    folder = history_dir(path)
    index = _read_index(folder)
    if index is None:
        raise FileNotFoundError(
            f"No attribution history in {os.fspath(path)!r} (looked for "
            f"{os.path.join(folder, 'index.json')!r}): was the run made with an "
            "AttributionCallback given a history_dir?")
    records = _read_firings(folder)
    with np.load(os.path.join(folder, "probes.npz")) as probes:
        images, labels = probes["images"], probes["labels"]
    shape = tuple(index["map_shape"])
    maps = {name: _read_maps(folder, name, shape, len(records)) for name in index["methods"]}
    nan = float("nan")
    drift = {name: {key: np.array([r["drift"].get(name, {}).get(key, nan) for r in records],
                                  np.float64) for key in ("to_previous", "to_first")}
             for name in index["methods"]}
    p = shape[0]
    return History(
        steps=np.array([r["step"] for r in records], np.int64),
        epochs=np.array([nan if r["epoch"] is None else r["epoch"] for r in records], np.float64),
        maps=maps, probes=images, labels=labels,
        targets=np.array([r["targets"] for r in records], np.int32).reshape(-1, p),
        predicted=np.array([r["predicted"] for r in records], np.int32).reshape(-1, p),
        confidence=np.array([r["confidence"] for r in records], np.float32).reshape(-1, p),
        drift=drift, signed={k: bool(v) for k, v in index["signed"].items()},
        settings=dict(index.get("settings", {})),
    )


class HistoryWriter:
    """Appends firings to a history folder; opening one that exists continues it.

    Not thread-safe: one writer (the callback's background thread) appends.
    """

    def __init__(self, folder: str | os.PathLike, probe_images: np.ndarray,
                 probe_labels: np.ndarray, methods: Sequence[str], signed: Mapping[str, bool],
                 settings: Mapping[str, Any] | None = None):
        """Opens `folder`, creating it, or checks that its history is of these probes and methods.

        Raises:
          ValueError: the folder holds another run's history (other probes or methods).
        """
        self.folder = os.fspath(folder)
        self.methods = list(methods)
        self._shape = tuple(int(d) for d in np.shape(probe_images))
        index = {"format": FORMAT, "methods": self.methods,
                 "signed": {m: bool(signed[m]) for m in self.methods},
                 "map_shape": list(self._shape), "settings": dict(settings or {})}
        existing = _read_index(self.folder)
        if existing is None:
            os.makedirs(self.folder, exist_ok=True)
            _atomic_write(os.path.join(self.folder, "probes.npz"), lambda f: np.savez(
                f, images=np.asarray(probe_images, np.float32),
                labels=np.asarray(probe_labels, np.int32)))
            _atomic_write(os.path.join(self.folder, "index.json"),
                          lambda f: f.write(json.dumps(index, indent=1).encode()))
            return
        if existing["methods"] != self.methods or list(existing["map_shape"]) != list(
                self._shape):
            raise ValueError(
                f"{self.folder!r} holds the history of methods {existing['methods']} on "
                f"probes of shape {existing['map_shape']}; this callback explains "
                f"{self.methods} on {list(self._shape)}. Use a new workdir (or history_dir) "
                "for a run with other methods or probes.")
        with np.load(os.path.join(self.folder, "probes.npz")) as stored:
            if not (np.array_equal(stored["images"], np.asarray(probe_images, np.float32))
                    and np.array_equal(stored["labels"], probe_labels)):
                raise ValueError(f"{self.folder!r} holds the history of other probe digits; "
                                 "use a new workdir (or history_dir) for other probes.")

    def truncate(self, through_step: int | None) -> History:
        """Drops the firings after `through_step` (None: keeps all) and any partly written
        record; returns what is kept."""
        records = _read_firings(self.folder)
        kept = [r for r in records if through_step is None or r["step"] <= through_step]
        if os.path.exists(os.path.join(self.folder, "firings.jsonl")):  # Also drops a cut line.
            _atomic_write(os.path.join(self.folder, "firings.jsonl"),
                          lambda f: f.write("".join(json.dumps(r) + "\n" for r in kept).encode()))
        size = _record_size(self._shape)
        for name in self.methods:
            path = _maps_path(self.folder, name)
            if os.path.exists(path) and os.path.getsize(path) != len(kept) * size:
                os.truncate(path, len(kept) * size)
        return load_history(self.folder)

    def append(self, step: int, epoch: float | None, maps: Mapping[str, np.ndarray],
               targets: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
               drift: Mapping[str, Mapping[str, float]] | None = None) -> None:
        """Appends one firing: the maps first, then its line in firings.jsonl."""
        for name in self.methods:
            m = np.asarray(maps[name], np.float32).reshape(self._shape)
            scale = np.abs(m).reshape(len(m), -1).max(axis=1)
            safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
            values = (m / safe[:, None, None, None]).astype(np.float16)
            with open(_maps_path(self.folder, name), "ab") as f:
                f.write(scale.astype(np.float32).tobytes() + values.tobytes())
                f.flush()
                os.fsync(f.fileno())
        record = {"step": int(step), "epoch": None if epoch is None else float(epoch),
                  "targets": np.asarray(targets).astype(int).tolist(),
                  "predicted": np.asarray(predicted).astype(int).tolist(),
                  "confidence": [round(float(c), 6) for c in np.asarray(confidence)],
                  "drift": {m: {k: float(v) for k, v in d.items()} for m, d in
                            (drift or {}).items()}}
        with open(os.path.join(self.folder, "firings.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _read_index(folder: str) -> dict[str, Any] | None:
    path = os.path.join(folder, "index.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        index = json.load(f)
    if index.get("format") != FORMAT:
        raise ValueError(f"{path!r} has history format {index.get('format')!r}; this version "
                         f"reads format {FORMAT}.")
    return index


def _read_firings(folder: str) -> list[dict[str, Any]]:
    path = os.path.join(folder, "firings.jsonl")
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # A line cut short by a kill: that firing was never completed.
    return records


def _maps_path(folder: str, method: str) -> str:
    return os.path.join(folder, f"{method}.maps")


def _record_size(shape: tuple[int, ...]) -> int:
    return 4 * shape[0] + 2 * int(np.prod(shape))


def _read_maps(folder: str, method: str, shape: tuple[int, ...], count: int) -> np.ndarray:
    size, p = _record_size(shape), shape[0]
    path = _maps_path(folder, method)
    raw = np.fromfile(path, np.uint8, count=count * size) if os.path.exists(path) else (
        np.zeros(0, np.uint8))
    if raw.size != count * size:
        raise ValueError(f"{_maps_path(folder, method)!r} holds fewer firings than "
                         "firings.jsonl lists: the history is damaged.")
    raw = raw.reshape(count, size)
    scales = raw[:, :4 * p].copy().view(np.float32)  # [F, P]
    values = raw[:, 4 * p:].copy().view(np.float16).reshape(count, *shape)
    return values.astype(np.float32) * scales[:, :, None, None, None]


def _atomic_write(path: str, write) -> None:
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
