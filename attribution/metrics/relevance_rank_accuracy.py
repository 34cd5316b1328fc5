"""Relevance rank accuracy: how many of the K most relevant pixels lie on the object.

Arras, Osman & Samek, "CLEVR-XAI", Information Fusion 2022 (as Quantus'
`RelevanceRankAccuracy`). K is the size of the object mask (the digit's strokes,
`_localisation`); the score is the fraction of the K highest-relevance pixels (channels summed;
ties broken by position) that are in the mask. Higher is better; a random map scores about the
strokes' share of the image.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import pixel_relevance, stroke_masks
from attribution.metrics._localisation import DEFAULT_THRESHOLD, check_threshold


def make(classifier: Classifier, *, threshold: float = DEFAULT_THRESHOLD) -> MetricFn:
    del classifier
    threshold = check_threshold(threshold)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        relevance = pixel_relevance(maps)
        mask = stroke_masks(images, threshold)
        k = jnp.sum(mask, axis=1)
        # Rank 0 = most relevant; a stable sort keeps ties in pixel order.
        order = jnp.argsort(-relevance, axis=1, stable=True)
        ranks = jnp.argsort(order, axis=1, stable=True)
        hits = jnp.sum(mask & (ranks < k[:, None]), axis=1)
        return hits / jnp.maximum(k, 1)

    return score


METRIC = Metric(name="relevance_rank_accuracy", make=make, family="localisation",
                higher_is_better=True,
                summary="fraction of the K most relevant pixels on the strokes (K = stroke area)")
