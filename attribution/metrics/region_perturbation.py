"""Region perturbation: the output drop as regions are removed, most and least relevant first.

Samek, Binder, Montavon, Lapuschkin & Müller, "Evaluating the Visualization of What a Deep
Neural Network Has Learned", IEEE TNNLS 2017 (as Quantus' `RegionPerturbation`). The image is
cut into square `patch_size` regions (from the top left; edge regions cut short, where Quantus
pads the image to a multiple of the patch size first: the same regions when the size divides
the image, as the default 7 does for 28); regions are ordered by their summed relevance and set
to `baseline` one more at a time. Each curve records the drop of the target probability,
`f(x) - f(x with the first k regions removed)` for k = 1 .. K (Quantus' curve). The area over
the perturbation curve (AOPC, the mean of a curve) is large for MoRF (most relevant first) and
small for LeRF (least relevant first) when the map is faithful; the score is their difference,
AOPC(MoRF) - AOPC(LeRF), the area between the two curves. Higher is better; random maps score
about 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.methods._patches import num_patches, patch_index, patch_pair
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import (
    check_number,
    check_output,
    outputs_over_steps,
    pixel_relevance,
    target_output,
)

ORDERS = ("morf", "lerf")


def make_curves(classifier: Classifier, *, patch_size: int = 7, baseline: float = 0.0,
                output: str = "probability"):
    """`curves(variables, images, targets, maps) -> {"morf": [N, K], "lerf": [N, K]}`."""
    shape = classifier.input_shape
    index = patch_index(shape, patch_pair(patch_size, shape, "patch_size"))
    regions = num_patches(index)
    baseline = check_number(baseline, "baseline")
    output = check_output(output)
    flat_index = jnp.asarray(index.ravel())

    def curves(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array
               ) -> dict[str, jax.Array]:
        n = images.shape[0]
        relevance = pixel_relevance(maps)  # [N, pixels]
        per_region = jax.ops.segment_sum(relevance.T, flat_index, regions).T  # [N, K]
        before = target_output(classifier, variables, images, targets, output)
        out = {}
        for order in ORDERS:
            ranking = jnp.argsort(-per_region if order == "morf" else per_region, axis=1,
                                  stable=True)
            rank_of = jnp.argsort(ranking, axis=1, stable=True)  # [N, K]
            rank_of_pixel = rank_of[:, flat_index]  # [N, pixels]

            def removed_after(step, rank_of_pixel=rank_of_pixel):
                gone = (rank_of_pixel <= step).reshape(*images.shape[:3], 1)
                return jnp.where(gone, baseline, images)

            after = outputs_over_steps(
                removed_after, regions,
                lambda x: target_output(classifier, variables, x, targets, output), n)
            out[order] = before[:, None] - after.T
        return out

    return curves


def make(classifier: Classifier, *, patch_size: int = 7, baseline: float = 0.0,
         output: str = "probability") -> MetricFn:
    curves = make_curves(classifier, patch_size=patch_size, baseline=baseline, output=output)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        both = curves(variables, images, targets, maps)
        return jnp.mean(both["morf"], axis=1) - jnp.mean(both["lerf"], axis=1)

    return score


METRIC = Metric(name="region_perturbation", make=make, family="faithfulness",
                higher_is_better=True,
                summary="AOPC of most-relevant-first minus least-relevant-first region removal")
