"""Pointing game: does the map's most relevant pixel lie on the object?

Zhang, Bargal, Lin, Brandt, Shen & Sclaroff, "Top-down Neural Attention by Excitation
Backprop", IJCV 2018 (as Quantus' `PointingGame`). 1 if the pixel of highest relevance
(channels summed; the first in row-major order among ties) is on the digit's strokes
(`_localisation`), else 0; `tolerance` (pixels) counts a hit within that distance of a stroke,
as the paper's 15-pixel tolerance does for large images. Higher is better; a random map hits
with the strokes' share of the image.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution import segmentation
from attribution._checks import positive_int
from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import pixel_relevance, stroke_masks
from attribution.metrics._localisation import DEFAULT_THRESHOLD, check_threshold


def make(classifier: Classifier, *, threshold: float = DEFAULT_THRESHOLD,
         tolerance: int = 0) -> MetricFn:
    height, width, _ = classifier.input_shape
    threshold = check_threshold(threshold)
    if tolerance != 0:
        tolerance = positive_int(tolerance, "tolerance")

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        mask = stroke_masks(images, threshold).reshape(-1, height, width)
        mask = segmentation.dilate(mask, tolerance).reshape(mask.shape[0], -1)
        best = jnp.argmax(pixel_relevance(maps), axis=1)
        return jnp.take_along_axis(mask, best[:, None], axis=1)[:, 0].astype(jnp.float32)

    return score


METRIC = Metric(name="pointing_game", make=make, family="localisation", higher_is_better=True,
                summary="1 if the most relevant pixel is on the strokes")
