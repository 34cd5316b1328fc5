"""SmoothGrad: the average of another method's maps over noisy copies of the input.

Smilkov, Thorat, Kim, Viégas & Wattenberg, "SmoothGrad: removing noise by adding noise",
ICML Workshop on Visualization for Deep Learning, 2017. The squared variant (SmoothGrad-Squared,
the mean of squared maps) is from Hooker, Erhan, Kindermans & Kim, "A Benchmark for
Interpretability Methods in Deep Neural Networks", NeurIPS 2019.

Sample `s` adds Gaussian noise with standard deviation `noise_scale * (max(x) - min(x))` (per
example) to every image. Sample `s`'s noise depends only on the key and `s`, so the result does
not depend on `chunk_size`.

Options:
    base: Name of the registered method to smooth (any but smoothgrad itself).
    base_options: Options for the base method; None for its defaults.
    num_samples: Number of noisy copies per image.
    noise_scale: Noise standard deviation relative to each image's value range.
    squared: Average the squared maps (SmoothGrad-Squared); the maps are then unsigned.
    chunk_size: Noisy copies evaluated per batched pass; bounds memory at `chunk_size * N`
        images.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from attribution import registry
from attribution._checks import positive_int
from attribution._chunked import chunked_sum, fold, unfold
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method


def make(classifier: Classifier, *, base: str = "gradient",
         base_options: Mapping[str, Any] | None = None, num_samples: int = 32,
         noise_scale: float = 0.15, squared: bool = False, chunk_size: int = 16
         ) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For an unknown or recursive `base`, invalid `base_options`, a non-positive
            `num_samples` or `chunk_size`, or a negative `noise_scale`.
    """
    if base == "smoothgrad":
        raise ValueError(f"base must be another method than smoothgrad; valid bases: "
                         f"{', '.join(n for n in registry.names() if n != 'smoothgrad')}.")
    base_fn = registry.create(base, classifier, base_options)
    num_samples = positive_int(num_samples, "num_samples")
    chunk_size = positive_int(chunk_size, "chunk_size")
    if not isinstance(noise_scale, (int, float)) or noise_scale < 0:
        raise ValueError(f"noise_scale must be a number >= 0; got {noise_scale!r}.")

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        axes = tuple(range(1, images.ndim))
        value_range = images.max(axis=axes, keepdims=True) - images.min(axis=axes, keepdims=True)
        sigma = noise_scale * value_range  # [N, 1, 1, 1]
        noise_key, base_key = jax.random.split(key)

        def chunk_maps(s: jax.Array) -> jax.Array:
            def noise(i: jax.Array) -> jax.Array:
                # Drawn flat: XLA on CPU takes seconds to compile threefry for a 4-D shape.
                flat = jax.random.normal(jax.random.fold_in(noise_key, i), (images.size,),
                                         images.dtype)
                return flat.reshape(images.shape)

            noisy = images + sigma * jax.vmap(noise)(s)  # [c, N, H, W, C]
            maps = base_fn(variables, fold(noisy), jnp.tile(targets, s.shape[0]),
                           jax.random.fold_in(base_key, s[0]))
            maps = unfold(maps, s.shape[0])
            return jnp.sum(jnp.square(maps) if squared else maps, axis=0)

        return chunked_sum(chunk_maps, num_samples, chunk_size) / num_samples

    return attribute


METHOD = Method(name="smoothgrad", make=make, signed=True, stochastic=True, completeness=False)
