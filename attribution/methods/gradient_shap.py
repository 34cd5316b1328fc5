"""GradientSHAP (expected gradients).

Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017; Erion,
Janizek, Sturmfels, Lundberg & Lee, "Improving performance of deep learning models with
axiomatic attribution priors and expected gradients", Nature Machine Intelligence 3, 2021.

Integrated gradients in expectation over a distribution of baselines: each of `num_samples`
samples draws a baseline b from the set, a point t ~ U(0, 1) on the path and (if `stdevs` > 0)
Gaussian noise e on the input, and contributes `grad f(b + t (x + e - b)) * (x + e - b)`; the
map is their mean (Captum's `GradientShap`). Its expectation is IG averaged over the
baselines, so on a linear model it is `(x - mean_b b) * w`. Sample `s` of example `n` draws
from example `n`'s key alone (see `attribution.example_keys`).

Options:
    baselines: Images `[B, H, W, C]`, one image or a scalar; None: 16 images of uniform noise
        in [0, 1], drawn with seed 0 at construction.
    num_samples: Samples per example.
    stdevs: Standard deviation of the noise added to the input (0: none, Erion et al.).
    chunk_size: (sample, example) pairs per pass; None: 64 per CPU core (up to 8 cores),
        4,096 on accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution._checks import positive_int
from attribution._chunked import chunk_size_option, evaluation_sum, target_logit_grad
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method, example_keys
from attribution.methods._baselines import baseline_set


def make(classifier: Classifier, *, baselines: ArrayLike | None = None, num_samples: int = 32,
         stdevs: float = 0.0, chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For baselines of the wrong shape, a non-positive `num_samples` or
            `chunk_size`, or a negative `stdevs`.
    """
    references = baseline_set(baselines, classifier.input_shape)
    num_samples = positive_int(num_samples, "num_samples")
    chunk_size = chunk_size_option(chunk_size)
    if isinstance(stdevs, bool) or not isinstance(stdevs, (int, float)) or stdevs < 0:
        raise ValueError(f"stdevs must be a number >= 0; got {stdevs!r}.")

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        table = jnp.asarray(references, images.dtype)
        keys = example_keys(key, images.shape[0])
        size = images[0].size

        def draw(sample: jax.Array, example: jax.Array):
            pick, point, noise = jax.random.split(jax.random.fold_in(keys[example], sample), 3)
            index = jax.random.randint(pick, (), 0, len(references))
            t = jax.random.uniform(point, (), images.dtype)
            # Drawn flat: XLA on CPU takes seconds to compile threefry for a 4-D shape.
            e = stdevs * jax.random.normal(noise, (size,), images.dtype)
            return index, t, e.reshape(images.shape[1:])

        def maps(samples: jax.Array, examples: jax.Array) -> jax.Array:
            index, t, noise = jax.vmap(draw)(samples, examples)
            delta = images[examples] + noise - table[index]
            path = table[index] + t[:, None, None, None] * delta
            return delta * target_logit_grad(classifier, variables, path, targets[examples])

        total = evaluation_sum(maps, num_samples, images.shape[0], chunk_size)
        return (total / num_samples).astype(jnp.float32)

    return attribute


METHOD = Method(name="gradient_shap", make=make, signed=True, stochastic=True, completeness=False,
                family="gradient")
