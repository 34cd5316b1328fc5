"""Evaluation metrics, one file each: adding a metric file is all it takes to enrol it.

Each public module `attribution/metrics/<name>.py` defines `METRIC`, an `attribution.metric.Metric`
named `<name>`; modules starting with an underscore are shared helpers. `evaluate` runs a set of
metrics on one method's maps; `attribution.verdict` turns the scores into pass / fail.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from attribution._discovery import discover
from attribution.classifier import Classifier
from attribution.method import AttributionFn
from attribution.metric import FAMILIES, Metric, MetricFn


@functools.cache
def _discover() -> dict[str, Metric]:
    return discover(sys.modules[__name__], "METRIC", Metric, FAMILIES)


def names(family: str | None = None) -> list[str]:
    """The registered metrics' names, sorted; only those of `family` if given."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"Unknown family {family!r}; valid families: {', '.join(FAMILIES)}.")
    return [n for n, m in _discover().items() if family is None or m.family == family]


def get(name: str) -> Metric:
    """The metric registered as `name`."""
    found = _discover()
    if name not in found:
        raise ValueError(f"Unknown metric {name!r}; valid metrics: {', '.join(found)}.")
    return found[name]


def expand(selection: Sequence[str]) -> list[str]:
    """Metric names from names and family names (a family stands for all its metrics)."""
    out: list[str] = []
    for item in selection:
        for name in names(item) if item in FAMILIES else [get(item).name]:
            if name not in out:
                out.append(name)
    return out


def build(name: str, classifier: Classifier, **options: Any) -> MetricFn:
    """The metric's jittable function for a classifier; options checked first."""
    metric = get(name)
    metric.check_options(options)
    return metric.make(classifier, **options)


def evaluate(metrics: Mapping[str, MetricFn], variables: Any, images: jax.Array,
             targets: jax.Array, maps: jax.Array, explain: AttributionFn, key: jax.Array,
             method_key: jax.Array | None = None) -> dict[str, jax.Array]:
    """Every metric's per-example scores `[N]` for one method's maps (jittable).

    Args:
        key: The metrics' randomness (metric i draws from `fold_in(key, i)`).
        method_key: The key that made `maps`: a metric that explains again gets the method's
            same noise (SmoothGrad's samples stay fixed, only the input moves). None: `key`.
    """
    method_key = key if method_key is None else method_key

    def bound(variables: Any, images: jax.Array, targets: jax.Array, _: jax.Array
              ) -> jax.Array:
        return explain(variables, images, targets, method_key)

    return {name: fn(variables, images, targets, maps, bound, _fold(key, i))
            for i, (name, fn) in enumerate(metrics.items())}


def _fold(key: jax.Array, data: int) -> jax.Array:
    """`fold_in` for one key or for one key per example."""
    if key.ndim == 0:
        return jax.random.fold_in(key, data)
    return jax.vmap(lambda k: jax.random.fold_in(k, data))(key)


__all__ = ["FAMILIES", "Metric", "MetricFn", "build", "evaluate", "expand", "get", "names"]
