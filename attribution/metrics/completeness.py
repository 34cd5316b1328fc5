"""Completeness: does the map sum to the change of the target logit from the baseline?

Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017 (the axiom;
Quantus' `Completeness`). The relative gap

    |sum(a) - (f(x) - f(baseline))| / |f(x) - f(baseline)|

on the target logit. Quantus tests exact equality of the sum and the difference (after scaling
the maps by the batch's largest value), which floating point practically never meets; the gap
is what a reader can judge (the verdict passes below 5%). Defined only for methods that
promise completeness (integrated gradients, DeepLIFT); `baseline` must be the method's.
Lower is better.
"""

from __future__ import annotations

from typing import Any

import jax

from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import check_number
from attribution.sanity.completeness import make_completeness_gap


def make(classifier: Classifier, *, baseline: float = 0.0) -> MetricFn:
    baseline = check_number(baseline, "baseline")
    gap = make_completeness_gap(classifier, None, classifier.input_shape, baseline=baseline)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        return gap(variables, images, targets, maps)

    return score


METRIC = Metric(name="completeness", make=make, family="axiomatic", higher_is_better=False,
                summary="|sum(map) - (f(x) - f(baseline))| / |f(x) - f(baseline)|",
                applies_to=lambda method: method.completeness)
