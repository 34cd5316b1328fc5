"""What SmoothGrad and VarGrad share: another method's maps over noisy copies of the input.

Sample `s` adds Gaussian noise with standard deviation `noise_scale * (max(x) - min(x))` (per
example) to every image. The noise of sample `s` for example `n` depends only on example `n`'s
key (`attribution.example_keys`: a single key stands for `fold_in(key, n)` per example) and
`s`, so the result depends neither on `chunk_size` nor on the other examples in the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax

from attribution import registry
from attribution._checks import positive_int
from attribution._chunked import chunk_size_option, evaluation_sum
from attribution.classifier import Classifier
from attribution.method import AttributionFn, example_keys

_NOISE, _BASE = 0, 1  # Streams folded into a (example, sample) key.


def noisy_sum(classifier: Classifier, method: str, base: str,
              base_options: Mapping[str, Any] | None, num_samples: int, noise_scale: float,
              chunk_size: int | None) -> tuple[Callable[..., jax.Array], AttributionFn]:
    """The sum over noisy samples of a statistic of the base method's maps, and the base.

    Returns:
        `(total, base_fn)`: `total(variables, images [N, ...], targets [N], key, statistic)`
        sums `statistic(maps [c, H, W, C], examples [c]) -> [c, ...]` over the samples of each
        example; `base_fn` is the base method.

    Args:
        classifier: The model.
        method: The wrapping method's name (it may not be its own base).
        base: Name of the registered method run on the noisy copies.
        base_options: Options for the base method; None for its defaults.
        num_samples: Noisy copies per image.
        noise_scale: Noise standard deviation relative to each image's value range.
        chunk_size: Noisy images per pass (see `evaluation_sum`); None for the default.

    Raises:
        ValueError: For an unknown or recursive `base`, invalid `base_options`, a non-positive
            `num_samples` or `chunk_size` (which may be None), or a negative `noise_scale`.
    """
    if base in ("smoothgrad", "vargrad"):
        raise ValueError(f"base must be another method than smoothgrad or vargrad; valid bases: "
                         f"{', '.join(n for n in registry.names() if n not in (method, base))}.")
    base_fn = registry.create(base, classifier, base_options)
    num_samples = positive_int(num_samples, "num_samples")
    chunk_size = chunk_size_option(chunk_size)
    if isinstance(noise_scale, bool) or not isinstance(noise_scale, (int, float)) or (
            noise_scale < 0):
        raise ValueError(f"noise_scale must be a number >= 0; got {noise_scale!r}.")

    def total(variables: Any, images: jax.Array, targets: jax.Array, key: jax.Array,
              statistic: Callable[[jax.Array, jax.Array], jax.Array]) -> jax.Array:
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
            return statistic(base_fn(variables, noisy, targets[examples], base_key), examples)

        return evaluation_sum(maps, num_samples, n, chunk_size)

    return total, base_fn
