"""AIC: the accuracy information curve's area (PAIR saliency's PIC metric on correctness).

Kapishnikov et al., "XRAI: Better Attributions Through Regions", ICCV 2019. The PIC of
`_pic` with the output 1 when the model predicts the target class and 0 otherwise; probes the
model gets wrong are skipped (NaN), as are those PAIR would skip. Over many probes the mean is
PAIR's aggregate AIC up to how the curves are combined (PAIR averages curves, then takes one
area). Higher is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.method import example_keys
from attribution.metric import Metric, MetricFn
from attribution.metrics import _pic


def make(classifier: Classifier, *, thresholds: Sequence[float] = _pic.THRESHOLDS) -> MetricFn:
    thresholds = _pic.check_thresholds(thresholds)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        def correct(x: jax.Array) -> jax.Array:
            return (jnp.argmax(classifier.logits(variables, x), axis=1) == targets).astype(
                jnp.float32)

        return _pic.pic(correct, images, maps, example_keys(key, images.shape[0]), thresholds,
                        0.5)

    return score


METRIC = Metric(name="aic", make=make, family="faithfulness", higher_is_better=True,
                summary="area under correctness against the information of bokeh images "
                        "(PAIR's AIC)")
