"""DeepLIFT-SHAP: DeepLIFT averaged over a set of baselines.

Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017 (Deep
SHAP); as Captum's `DeepLiftShap`: the mean over the baselines b of DeepLIFT's rescale-rule
map `(x - b) * m_b` (see `deeplift`). It sums to `f(x) - mean_b f(b)` for networks DeepLIFT
handles exactly.

Options:
    baselines: Images `[B, H, W, C]`, one image or a scalar; None: 16 images of uniform noise
        in [0, 1], drawn with seed 0 at construction (the same at every call).
    chunk_size: (baseline, example) pairs per pass; None: 64 per CPU core (up to 8 cores),
        4,096 on accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution._chunked import chunk_size_option, evaluation_sum
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._baselines import baseline_set
from attribution.methods.deeplift import multipliers


def make(classifier: Classifier, *, baselines: ArrayLike | None = None,
         chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For baselines of the wrong shape, a bad `chunk_size`, or a model the
            rescale rule cannot handle.
    """
    references = baseline_set(baselines, classifier.input_shape)
    chunk_size = chunk_size_option(chunk_size)
    multiplier = multipliers(classifier)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        table = jnp.asarray(references, images.dtype)

        def maps(points: jax.Array, examples: jax.Array) -> jax.Array:
            x, b = images[examples], table[points]
            return (x - b) * multiplier(variables, x, b, targets[examples])

        total = evaluation_sum(maps, len(references), images.shape[0], chunk_size)
        return (total / len(references)).astype(jnp.float32)

    return attribute


METHOD = Method(name="deeplift_shap", make=make, signed=True, stochastic=False, completeness=False,
                family="propagation")
