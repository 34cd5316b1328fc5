"""Relevance mass accuracy: the share of the map's relevance that falls on the object.

Arras, Osman & Samek, "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural
network explanations", Information Fusion 2022 (as Quantus' `RelevanceMassAccuracy`). With the
digit's strokes as the object mask (`_localisation`), `sum_{i in mask} a_i / sum_i a_i` over
the map's pixels (channels summed), counting only positive relevance, as the paper does (then
in [0, 1]); `positive=False` scores the signed map as Quantus does, which is unbounded when
positive and negative relevance nearly cancel (the gradient's mass accuracy was 11 on the
trained CNN).
Higher is better; a random map scores about the strokes' share of the image.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import pixel_relevance, stroke_masks
from attribution.metrics._localisation import DEFAULT_THRESHOLD, check_threshold


def make(classifier: Classifier, *, threshold: float = DEFAULT_THRESHOLD,
         positive: bool = True) -> MetricFn:
    del classifier
    threshold = check_threshold(threshold)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        relevance = pixel_relevance(maps)
        if positive:
            relevance = jnp.maximum(relevance, 0.0)
        inside = jnp.sum(jnp.where(stroke_masks(images, threshold), relevance, 0.0), axis=1)
        total = jnp.sum(relevance, axis=1)
        return inside / jnp.where(total == 0, 1.0, total)

    return score


METRIC = Metric(name="relevance_mass_accuracy", make=make, family="localisation",
                higher_is_better=True, summary="share of relevance on the digit's strokes")
