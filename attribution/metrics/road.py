"""ROAD: does the class survive when the most relevant pixels are removed without a trace?

Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML 2022 (as Quantus' `ROAD`). For each percentage p (1, 3, ..., 99 by
default), the p% most relevant pixels (channels summed; ties in pixel order) are removed and
filled by noisy linear imputation (`_imputation`: the neighbours' weighted mean plus noise of
standard deviation 0.01), which, unlike a black fill, leaves no shape of the removed region for
the model to read. The curve is whether the model still predicts the target class; the score
is its mean over the percentages, the area under the MoRF accuracy curve. Lower is better.
Quantus returns the accuracy per percentage averaged over the first batch only, and compares
with the label; the targets here are whatever the caller explains (the SanityCallback's: the
model's predictions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution.classifier import Classifier
from attribution.method import example_keys
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import check_number, over_steps, pixel_relevance
from attribution.metrics._imputation import ITERATIONS, impute_with_noise
from attribution.metrics._ordering import ordered

DEFAULT_PERCENTAGES = tuple(range(1, 100, 2))


def make(classifier: Classifier, *, percentages: Sequence[float] = DEFAULT_PERCENTAGES,
         noise: float = 0.01, iterations: int = ITERATIONS) -> MetricFn:
    height, width, _ = classifier.input_shape
    pixels = height * width
    try:
        values = [check_number(p, "percentages", low=0.0, high=100.0) for p in percentages]
    except TypeError:
        raise ValueError(f"percentages must be numbers in [0, 100]; got {percentages!r}.") \
            from None
    if not values:
        raise ValueError("percentages must name at least one percentage.")
    counts = jnp.asarray(np.array([int(pixels * p / 100) for p in values], np.int32))
    noise = check_number(noise, "noise", low=0.0)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        n = images.shape[0]
        keys = example_keys(key, n)
        rank = jnp.argsort(ordered(pixel_relevance(maps), descending=True), axis=1,
                           stable=True).reshape(n, height, width)  # 0 = most relevant

        def kept(i: jax.Array) -> jax.Array:
            removed = rank < counts[i]
            filled = impute_with_noise(images, removed,
                                       jax.vmap(lambda k: jax.random.fold_in(k, i))(keys),
                                       noise, iterations)
            predicted = jnp.argmax(classifier.logits(variables, filled), axis=1)
            return (predicted == targets).astype(jnp.float32)

        hits = over_steps(kept, len(values), n)  # [P, N]
        return jnp.mean(hits, axis=0)

    return score


METRIC = Metric(name="road", make=make, family="faithfulness", higher_is_better=False,
                summary="target still predicted, mean over 1..99% most relevant pixels "
                        "removed and imputed")
