"""Random-logit test: is the map for the predicted class different from the map for another?

Sixt, Granz & Landgraf, "When Explanations Lie: Why Many Modified BP Attributions Fail", ICML
2020 (as Quantus' `RandomLogit`). For each probe another class is drawn uniformly from the
classes other than the target (from the probe's key), the map is explained again for it, and
the score is the similarity of the two maps (`attribution.sanity` similarities; SSIM by
default, on the 2-D maps, where Quantus applies skimage's SSIM to the flattened maps). A
class-sensitive method scores low. Lower is better.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.method import example_keys
from attribution.metric import Metric, MetricFn
from attribution.sanity.similarity import get_similarity


def other_classes(keys: jax.Array, targets: jax.Array, num_classes: int) -> jax.Array:
    """A class != target per example, uniform over the other `num_classes - 1`."""
    draw = jax.vmap(lambda k: jax.random.randint(k, (), 0, num_classes - 1))(keys)
    return (draw + (draw >= targets)).astype(jnp.int32)


def make(classifier: Classifier, *, similarity: str = "ssim") -> MetricFn:
    compare = get_similarity(similarity)
    num_classes = classifier.num_classes
    if num_classes < 2:
        raise ValueError(f"The random-logit test needs at least 2 classes; the model has "
                         f"{num_classes}.")

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        others = other_classes(example_keys(key, images.shape[0]), targets, num_classes)
        return compare(maps, explain(variables, images, others, key))

    return score


METRIC = Metric(name="random_logit", make=make, family="randomisation",
                higher_is_better=False, explains=True,
                summary="similarity of the maps for the target and for a random other class")
