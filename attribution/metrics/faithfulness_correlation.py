"""Faithfulness correlation: does the relevance of a random pixel subset predict the output drop?

Bhatt, Weller & Moura, "Evaluating and Aggregating Feature-based Model Explanations", IJCAI
2020 (as Quantus' `FaithfulnessCorrelation`). For `num_runs` random subsets of `subset_size`
pixels, each set to `baseline`, the score is the Pearson correlation, over the runs, between
the relevance summed over the subset (channels summed) and the drop of the target logit
`f(x) - f(x with the subset removed)`. Quantus' defaults: 100 runs, 224 pixels, logits, the
image's minimum as baseline (0 for digits). Higher is better; random maps score about 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.method import example_keys
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import (
    check_int,
    check_number,
    check_output,
    over_steps,
    pearson,
    pixel_mask_to_images,
    pixel_relevance,
    target_output,
)


def random_subsets(keys: jax.Array, run: jax.Array, pixels: int, size: int) -> jax.Array:
    """bool `[N, pixels]`: `size` pixels without replacement, from key n folded with `run`."""
    def one(key):
        draw = jax.random.uniform(jax.random.fold_in(key, run), (pixels,))
        return jnp.argsort(jnp.argsort(draw)) < size

    return jax.vmap(one)(keys)


def make(classifier: Classifier, *, num_runs: int = 100, subset_size: int = 224,
         baseline: float = 0.0, output: str = "logit") -> MetricFn:
    height, width, _ = classifier.input_shape
    pixels = height * width
    num_runs = check_int(num_runs, "num_runs", low=2)
    subset_size = check_int(subset_size, "subset_size")
    if subset_size >= pixels:
        raise ValueError(f"subset_size must be below the number of pixels ({pixels}); got "
                         f"{subset_size}.")
    baseline = check_number(baseline, "baseline")
    output = check_output(output)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        n = images.shape[0]
        keys = example_keys(key, n)
        relevance = pixel_relevance(maps)
        before = target_output(classifier, variables, images, targets, output)

        def run(r: jax.Array) -> tuple[jax.Array, jax.Array]:
            subset = random_subsets(keys, r, pixels, subset_size)
            removed = jnp.where(pixel_mask_to_images(subset, images), baseline, images)
            after = target_output(classifier, variables, removed, targets, output)
            return jnp.sum(jnp.where(subset, relevance, 0.0), axis=1), before - after

        sums, drops = over_steps(run, num_runs, n)  # [R, N] each
        return pearson(sums.T, drops.T)

    return score


METRIC = Metric(name="faithfulness_correlation", make=make, family="faithfulness",
                higher_is_better=True,
                summary="Pearson r of subset relevance and logit drop over random subsets")
