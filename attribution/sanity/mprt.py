"""Efficient and smooth model parameter randomization (eMPRT, sMPRT).

Hedström, Weber, Lapuschkin & Höhne, "A Fresh Look at Sanity Checks for Saliency Maps", 2024
(Quantus' `EfficientMPRT` and `SmoothMPRT`), two repairs of Adebayo et al.'s test.

eMPRT compares no maps: it asks whether the map of the fully randomized model is more complex
than the trained model's, by the discrete entropy of each map's values in `bins` equal bins
between its minimum and maximum (numpy's `histogram`; Quantus' default 100 bins):

    eMPRT = (H(a_random) - H(a_trained)) / H(a_trained),

higher is better (a map that keeps its structure under randomization scores about 0). Here
a_random is the map after the cascading randomization re-initialized every layer
(`randomization`), where Quantus resets every layer with PyTorch's default initializers; a
trained map with a single value (entropy 0) scores 0 rather than Quantus' division by zero.

sMPRT is the cascading test on denoised maps: each method wrapped in SmoothGrad's average over
`num_samples` noisy copies (noise `noise_scale` times each image's value range; Quantus: 50
and 0.1), so that the similarity measures the maps' structure rather than gradient noise.
`smoothed` gives that wrapper as a method name and options for any method; the score is the
cascading randomization's similarity after every layer is re-initialized (Quantus randomizes
bottom-up; the cascade here goes top-down as Adebayo et al.'s, ending at the same fully random
model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from attribution.metrics.complexity import entropy

DEFAULT_BINS = 100
SMOOTH_SAMPLES = 50
SMOOTH_NOISE = 0.1


def discrete_entropy(maps: jax.Array, bins: int = DEFAULT_BINS) -> jax.Array:
    """Entropy (nats) of each map's value histogram: `[N, ...] -> [N]`."""
    values = maps.reshape(maps.shape[0], -1)
    low = jnp.min(values, axis=1, keepdims=True)
    high = jnp.max(values, axis=1, keepdims=True)
    width = jnp.where(high > low, high - low, 1.0)
    # numpy's rule: equal bins over [low, high], the maximum in the last bin.
    index = jnp.clip(jnp.floor((values - low) / width * bins), 0, bins - 1).astype(jnp.int32)
    return entropy(jnp.sum(jax.nn.one_hot(index, bins, dtype=jnp.float32), axis=1))


def efficient_mprt(trained: jax.Array, randomized: jax.Array, bins: int = DEFAULT_BINS
                   ) -> jax.Array:
    """eMPRT per example `[N]`: the relative rise of the maps' discrete entropy."""
    before = discrete_entropy(trained, bins)
    after = discrete_entropy(randomized, bins)
    return jnp.where(before > 0, (after - before) / jnp.where(before > 0, before, 1.0), 0.0)


def smoothed(method: str, options: Mapping[str, Any] | None = None, *,
             num_samples: int = SMOOTH_SAMPLES, noise_scale: float = SMOOTH_NOISE
             ) -> tuple[str, dict[str, Any]]:
    """(name, options) of `method` averaged over noisy copies, for the sMPRT cascade."""
    return "smoothgrad", {"base": method, "base_options": dict(options or {}),
                          "num_samples": num_samples, "noise_scale": noise_scale}
