"""Pixel flipping: the target probability as the most relevant pixels are removed first.

Bach, Binder, Montavon, Klauschen, Müller & Samek, "On Pixel-Wise Explanations for Non-Linear
Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 2015 (as Quantus'
`PixelFlipping`). Pixels are ordered by relevance (channels summed, most positive first, ties
in pixel order) and set to `baseline`, `features_in_step` at a time, cumulatively; after each
step the target class's softmax probability is recorded (the curve has ceil(H W /
features_in_step) points and no unperturbed point, as Quantus'). The score is the curve's
area over the removed fraction in [0, 1] (trapezoid rule). Lower is better: a faithful map
destroys the evidence first. Quantus removes one pixel per step (784 forward passes per digit);
the default here, 8, keeps the curve's shape at an eighth of the cost.
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
from attribution.metrics._ordering import ordered, steps_of


def make_curve(classifier: Classifier, *, features_in_step: int = 8, baseline: float = 0.0,
               output: str = "probability"):
    """`curve(variables, images, targets, maps) -> [N, steps]`: the output after each step."""
    height, width, _ = classifier.input_shape
    pixels = height * width
    features_in_step = check_int(features_in_step, "features_in_step")
    if features_in_step > pixels:
        raise ValueError(f"features_in_step must be at most the number of pixels ({pixels}); "
                         f"got {features_in_step}.")
    baseline = check_number(baseline, "baseline")
    output = check_output(output)
    steps = -(-pixels // features_in_step)

    def curve(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array
              ) -> jax.Array:
        step_of = steps_of(ordered(pixel_relevance(maps), descending=True), features_in_step)

        def removed_after(step: jax.Array) -> jax.Array:
            return jnp.where(pixel_mask_to_images(step_of <= step, images), baseline, images)

        return outputs_over_steps(
            removed_after, steps,
            lambda x: target_output(classifier, variables, x, targets, output),
            images.shape[0]).T

    return curve


def area(curve: jax.Array) -> jax.Array:
    """Trapezoid area of curves `[N, K]` over K points evenly spread on [0, 1] (mean if K = 1)."""
    k = curve.shape[-1]
    if k == 1:
        return curve[..., 0]
    return (jnp.sum(curve, -1) - (curve[..., 0] + curve[..., -1]) / 2) / (k - 1)


def make(classifier: Classifier, *, features_in_step: int = 8, baseline: float = 0.0,
         output: str = "probability") -> MetricFn:
    curve = make_curve(classifier, features_in_step=features_in_step, baseline=baseline,
                       output=output)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        return area(curve(variables, images, targets, maps))

    return score


METRIC = Metric(name="pixel_flipping", make=make, family="faithfulness", higher_is_better=False,
                summary="area under the probability as the most relevant pixels are removed")
