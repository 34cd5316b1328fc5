"""Non-sensitivity: pixels the model ignores should get no relevance, and the others some.

Nguyen & Martínez, "On Quantitative Aspects of Model Interpretability", 2020 (as Quantus'
`NonSensitivity`). Each group of `features_in_step` pixels (in row-major order) is set to
`baseline` alone, from the original image; the model is insensitive to it when the target
probability moves by less than `eps`. A pixel carries no relevance when its magnitude,
divided by the map's largest, is below `eps`. A violation is a pixel where the two disagree:
relevance on a pixel the model ignores, or none on one it uses. The score is the fraction of
pixels in violation (Quantus returns their count, with one pixel per group, and divides maps by
the batch's largest value instead of each map's own). Lower is better.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import (
    check_int,
    check_number,
    check_output,
    outputs_over_steps,
    pixel_mask_to_images,
    pixel_relevance,
    target_output,
)


def make(classifier: Classifier, *, features_in_step: int = 4, eps: float = 1e-5,
         baseline: float = 0.0, output: str = "probability") -> MetricFn:
    height, width, _ = classifier.input_shape
    pixels = height * width
    features_in_step = check_int(features_in_step, "features_in_step")
    eps = check_number(eps, "eps", low=0.0, low_open=True)
    baseline = check_number(baseline, "baseline")
    output = check_output(output)
    groups = -(-pixels // features_in_step)
    group_of = jnp.arange(pixels) // features_in_step

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        n = images.shape[0]
        magnitude = jnp.abs(pixel_relevance(maps))
        top = jnp.max(magnitude, axis=1, keepdims=True)
        no_relevance = magnitude / jnp.where(top > 0, top, 1.0) < eps

        def without(group: jax.Array) -> jax.Array:
            off = jnp.broadcast_to(group_of == group, (n, pixels))
            return jnp.where(pixel_mask_to_images(off, images), baseline, images)

        def output_of(x: jax.Array) -> jax.Array:
            return target_output(classifier, variables, x, targets, output)

        before = output_of(images)
        after = outputs_over_steps(without, groups, output_of, n)  # [groups, N]
        insensitive = (jnp.abs(after - before) < eps).T[:, group_of]  # [N, pixels]
        return jnp.mean(insensitive != no_relevance, axis=1)

    return score


METRIC = Metric(name="non_sensitivity", make=make, family="axiomatic", higher_is_better=False,
                summary="fraction of pixels where relevance and the model's sensitivity "
                        "disagree")
