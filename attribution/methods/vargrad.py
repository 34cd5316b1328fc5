"""VarGrad: the variance of another method's maps over noisy copies of the input.

Adebayo, Gilmer, Goodfellow & Kim, "Local Explanation Methods for Deep Neural Networks Lack
Sensitivity to Parameter Values", ICLR Workshop 2018; analysed by Seo, Choe & Lee, "Noise-adding
Methods of Saliency Map as Series of Higher Order Partial Derivative", ICML Workshop 2018.

Beside SmoothGrad's mean: with the same noisy copies (see `smoothgrad`: sample `s` of example
`n` draws from example `n`'s key alone), the map is the variance `mean(m^2) - mean(m)^2` of the
maps m over the samples, as Captum's `NoiseTunnel(nt_type="vargrad")` defines it, clipped at 0
against rounding; it is computed on the maps' differences to the noise-free map (one more
base evaluation per image), which keeps float32 from cancelling a small variance. It is
unsigned. On a linear model the gradient does not vary, so VarGrad of the gradient is zero.

Options:
    base: Name of the registered method run on the noisy copies (any but smoothgrad and
        vargrad).
    base_options: Options for the base method; None for its defaults.
    num_samples: Number of noisy copies per image (at least 2).
    noise_scale: Noise standard deviation relative to each image's value range.
    chunk_size: Noisy images (sample x example pairs) per pass; None: 64 per CPU core (up to 8
        cores), 4,096 on accelerators.
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
         noise_scale: float = 0.15, chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: As SmoothGrad's options, and for `num_samples` below 2.
    """
    if isinstance(num_samples, int) and not isinstance(num_samples, bool) and num_samples == 1:
        raise ValueError("num_samples must be an int >= 2 for a variance; got 1.")
    total, base_fn = noisy_sum(classifier, "vargrad", base, base_options, num_samples,
                               noise_scale, chunk_size)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        # Moments of the difference to the noise-free map: the same variance, without the
        # cancellation of mean(m^2) - mean(m)^2 in float32 when m varies little.
        clean = base_fn(variables, images, targets, key)

        def moments(maps: jax.Array, examples: jax.Array) -> jax.Array:
            shifted = maps - clean[examples]
            return jnp.stack([shifted, jnp.square(shifted)], axis=1)

        sums = total(variables, images, targets, key, moments) / num_samples
        return jax.nn.relu(sums[:, 1] - jnp.square(sums[:, 0]))

    return attribute


METHOD = Method(name="vargrad", make=make, signed=False, stochastic=True, completeness=False,
                family="gradient")
