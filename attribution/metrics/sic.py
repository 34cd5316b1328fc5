"""SIC: the softmax information curve's area (PAIR saliency's PIC metric on the probability).

Kapishnikov et al., "XRAI: Better Attributions Through Regions", ICCV 2019. The PIC of
`_pic` with the target class's softmax probability as the output; probes whose probability on
the original image is below `min_pred` (PAIR's 0.8) are skipped (NaN; callers average the
others). PAIR aggregates the curves of all images by their median before taking one area; the
score here is each probe's own area. Higher is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from attribution.classifier import Classifier
from attribution.method import example_keys
from attribution.metric import Metric, MetricFn
from attribution.metrics import _pic
from attribution.metrics._common import check_number, target_output


def make(classifier: Classifier, *, thresholds: Sequence[float] = _pic.THRESHOLDS,
         min_pred: float = 0.8) -> MetricFn:
    thresholds = _pic.check_thresholds(thresholds)
    min_pred = check_number(min_pred, "min_pred", low=0.0, high=1.0)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        return _pic.pic(
            lambda x: target_output(classifier, variables, x, targets, "probability"),
            images, maps, example_keys(key, images.shape[0]), thresholds, min_pred)

    return score


METRIC = Metric(name="sic", make=make, family="faithfulness", higher_is_better=True,
                summary="area under the probability against the information of bokeh images "
                        "(PAIR's SIC)")
