"""Monotonicity: does the probability rise at every step as pixels are added back, least
relevant first?

Arya et al., "One Explanation Does Not Fit All: A Toolkit and Taxonomy of AI Explainability
Techniques", 2019 (Quantus' `Monotonicity`). From an image of `baseline` values, the original
pixels are put back `features_in_step` at a time in order of increasing relevance magnitude
(channels summed, then the absolute value; ties in pixel order), and the target class's softmax
probability is recorded after each step. A faithful map adds the evidence last, so the
probability should never fall. Quantus returns whether it never falls (all steps); the score
here is the fraction of steps at which it does not fall, whose mean over probes is more
informative (1.0 is Quantus' True). Quantus 0.6 writes the baseline into the baseline image,
so its curve is flat and its answer always True; this follows the paper. Higher is better.
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


def make(classifier: Classifier, *, features_in_step: int = 28, baseline: float = 0.0,
         output: str = "probability") -> MetricFn:
    height, width, _ = classifier.input_shape
    pixels = height * width
    features_in_step = check_int(features_in_step, "features_in_step")
    steps = -(-pixels // features_in_step)
    if steps < 2:
        raise ValueError(f"features_in_step must leave at least 2 steps over {pixels} pixels; "
                         f"got {features_in_step}.")
    baseline = check_number(baseline, "baseline")
    output = check_output(output)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        magnitude = jnp.abs(pixel_relevance(maps))
        step_of = steps_of(ordered(magnitude, descending=False), features_in_step)

        def restored_after(step: jax.Array) -> jax.Array:
            return jnp.where(pixel_mask_to_images(step_of <= step, images), images, baseline)

        curve = outputs_over_steps(
            restored_after, steps,
            lambda x: target_output(classifier, variables, x, targets, output),
            images.shape[0])  # [steps, N]
        return jnp.mean(jnp.diff(curve, axis=0) >= 0, axis=0)

    return score


METRIC = Metric(name="monotonicity", make=make, family="faithfulness", higher_is_better=True,
                summary="fraction of steps at which the probability does not fall as pixels "
                        "are restored, least relevant first")
