"""SmoothGrad: the average of another method's maps over noisy copies of the input.

Smilkov, Thorat, Kim, Viégas & Wattenberg, "SmoothGrad: removing noise by adding noise",
ICML Workshop on Visualization for Deep Learning, 2017. The squared variant (SmoothGrad-Squared,
the mean of squared maps) is from Hooker, Erhan, Kindermans & Kim, "A Benchmark for
Interpretability Methods in Deep Neural Networks", NeurIPS 2019.

Sample `s` adds Gaussian noise with standard deviation `noise_scale * (max(x) - min(x))` (per
example) to every image. The noise of sample `s` for example `n` depends only on example `n`'s
key (`attribution.example_keys`: a single key stands for `fold_in(key, n)` per example) and
`s`, so the result depends neither on `chunk_size` nor on the other examples in the batch,
and a slice of the batch with the same slice of keys gives the same maps.

Options:
    base: Name of the registered method to smooth (any but smoothgrad and vargrad).
    base_options: Options for the base method; None for its defaults.
    num_samples: Number of noisy copies per image.
    noise_scale: Noise standard deviation relative to each image's value range.
    squared: Average the squared maps (SmoothGrad-Squared); the maps are then unsigned.
    chunk_size: Noisy images (sample x example pairs) per pass; bounds memory by `chunk_size`
        images whatever N. None: 64 per CPU core (up to 8 cores), 4,096 on accelerators. A
        base that chunks by itself (integrated gradients, occlusion) splits its share of a
        pass again by its own `chunk_size`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._noise_tunnel import noisy_sum


def make(classifier: Classifier, *, base: str = "gradient",
         base_options: Mapping[str, Any] | None = None, num_samples: int = 32,
         noise_scale: float = 0.15, squared: bool = False, chunk_size: int | None = None
         ) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For an unknown or recursive `base`, invalid `base_options`, a non-positive
            `num_samples` or `chunk_size` (which may be None), or a negative `noise_scale`.
    """
    total, _ = noisy_sum(classifier, "smoothgrad", base, base_options, num_samples,
                         noise_scale, chunk_size)

    def statistic(maps: jax.Array, examples: jax.Array) -> jax.Array:
        return jnp.square(maps) if squared else maps

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        return total(variables, images, targets, key, statistic) / num_samples

    return attribute


METHOD = Method(name="smoothgrad", make=make, signed=True, stochastic=True, completeness=False,
                family="gradient")
