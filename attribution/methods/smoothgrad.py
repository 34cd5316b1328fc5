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
    base: Name of the registered method to smooth (any but smoothgrad itself).
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

from attribution import registry
from attribution._checks import positive_int
from attribution._chunked import chunk_size_option, evaluation_sum
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method, example_keys

_NOISE, _BASE = 0, 1  # Streams folded into a (example, sample) key.


def make(classifier: Classifier, *, base: str = "gradient",
         base_options: Mapping[str, Any] | None = None, num_samples: int = 32,
         noise_scale: float = 0.15, squared: bool = False, chunk_size: int | None = None
         ) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For an unknown or recursive `base`, invalid `base_options`, a non-positive
            `num_samples` or `chunk_size` (which may be None), or a negative `noise_scale`.
    """
    if base == "smoothgrad":
        raise ValueError(f"base must be another method than smoothgrad; valid bases: "
                         f"{', '.join(n for n in registry.names() if n != 'smoothgrad')}.")
    base_fn = registry.create(base, classifier, base_options)
    num_samples = positive_int(num_samples, "num_samples")
    chunk_size = chunk_size_option(chunk_size)
    if not isinstance(noise_scale, (int, float)) or noise_scale < 0:
        raise ValueError(f"noise_scale must be a number >= 0; got {noise_scale!r}.")

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        axes = tuple(range(1, images.ndim))
        value_range = images.max(axis=axes, keepdims=True) - images.min(axis=axes, keepdims=True)
        sigma = noise_scale * value_range  # [N, 1, 1, 1]
        n = images.shape[0]
        keys = example_keys(key, n)
        size = images[0].size

        def maps(samples: jax.Array, examples: jax.Array) -> jax.Array:
            def noise(s: jax.Array, e: jax.Array) -> jax.Array:
                # Drawn flat: XLA on CPU takes seconds to compile threefry for a 4-D shape.
                key = jax.random.fold_in(jax.random.fold_in(keys[e], s), _NOISE)
                return jax.random.normal(key, (size,), images.dtype).reshape(images.shape[1:])

            noisy = images[examples] + sigma[examples] * jax.vmap(noise)(samples, examples)
            # Any chunk's key differs from every other chunk's (only a stochastic base uses it).
            base_key = jax.random.fold_in(jax.random.fold_in(keys[examples[0]], samples[0]),
                                          _BASE)
            out = base_fn(variables, noisy, targets[examples], base_key)
            return jnp.square(out) if squared else out

        return evaluation_sum(maps, num_samples, n, chunk_size) / num_samples

    return attribute


METHOD = Method(name="smoothgrad", make=make, signed=True, stochastic=True, completeness=False)
