"""IROF: how fast the class probability falls as superpixels are removed, most relevant first.

Rieger & Hansen, "IROF: a low resource evaluation metric for explanation methods", 2020 (as
Quantus' `IROF`). The image is cut into SLIC superpixels (`attribution.segmentation`, grid step
`segment_size`; Quantus uses scikit-image's SLIC with 100 segments, which on 28 x 28 digits is
about the default step 3); they are ordered by their mean relevance (channels summed) and set,
cumulatively, to the image's mean value (Quantus' "mean" baseline takes the mean of the whole,
progressively perturbed batch); after each removal the target probability relative to the
unperturbed one is recorded. The score is the area over that curve divided by the number of
(non-empty) segments, in [0, 1] when removals only lower the probability; Quantus reports the
area without the division. Higher is better.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution import segmentation
from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import (
    check_number,
    check_output,
    outputs_over_steps,
    pixel_relevance,
    target_output,
)


def make(classifier: Classifier, *, segment_size: int = 3, compactness: float = 0.3,
         output: str = "probability") -> MetricFn:
    (size,) = segmentation.check_sizes(segment_size, classifier.input_shape, "segment_size")
    compactness = check_number(compactness, "compactness", low=0.0, low_open=True)
    output = check_output(output)
    count = segmentation.grid_size(classifier.input_shape, size)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        n = images.shape[0]
        labels = segmentation.slic(images, size=size, compactness=compactness).reshape(n, -1)
        relevance = pixel_relevance(maps)
        sizes = jax.vmap(lambda lab: jax.ops.segment_sum(jnp.ones_like(lab, jnp.float32), lab,
                                                         count))(labels)
        sums = jax.vmap(lambda r, lab: jax.ops.segment_sum(r, lab, count))(relevance, labels)
        means = jnp.where(sizes > 0, sums / jnp.maximum(sizes, 1.0), -jnp.inf)  # Empty: last.
        order = jnp.argsort(-means, axis=1, stable=True)
        rank_of_pixel = jnp.take_along_axis(jnp.argsort(order, axis=1, stable=True), labels,
                                            axis=1).reshape(images.shape[:3])
        fill = jnp.mean(images, axis=(1, 2, 3), keepdims=True)

        def removed_after(step: jax.Array) -> jax.Array:
            return jnp.where((rank_of_pixel <= step)[..., None], fill, images)

        def output_of(x: jax.Array) -> jax.Array:
            return target_output(classifier, variables, x, targets, output)

        before = output_of(images)
        ratios = (outputs_over_steps(removed_after, count, output_of, n)
                  / jnp.where(before == 0, 1.0, before)).T  # [N, K]
        used = jnp.sum(sizes > 0, axis=1)  # Non-empty segments, ranked first.
        inside = jnp.arange(count)[None, :] < used[:, None]
        last = jnp.take_along_axis(ratios, (used - 1)[:, None], axis=1)[:, 0]
        area = jnp.sum(jnp.where(inside, ratios, 0.0), axis=1) - (ratios[:, 0] + last) / 2
        return (used - area) / used

    return score


METRIC = Metric(name="irof", make=make, family="faithfulness", higher_is_better=True,
                summary="area over the relative probability as superpixels are removed, most "
                        "relevant first, per segment")
