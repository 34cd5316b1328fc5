"""RISE: randomized input sampling.

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models",
BMVC 2018.

The map is the mean of random masks weighted by the target logit of the masked image,
S = sum_i f(x * M_i + fill * (1 - M_i)) M_i / (num_samples * p). A mask is a `grid` x `grid`
field of Bernoulli(p) cells. `mask="smooth"` (the paper's): upsampled bilinearly to
(grid + 1) cells of ceil(H / grid) pixels and cropped at a random offset within one cell, so
its edges fall anywhere. `mask="cells"`: the cells themselves, binary, unshifted (then a
model that is linear in the cells, f = b + sum_c a_c z_c, has the closed-form expectation
S(pixel in cell c) = (1 - p) a_c + p sum_c' a_c' + b, to which the estimate converges).
The logit, not the paper's probability, weighs the masks, as every method here explains the
logit. Sample `s` of example `n` draws from example `n`'s key alone.

Options:
    num_samples: Masks per example (forward passes).
    grid: Cells per side of a mask.
    p: Probability that a cell is kept.
    mask: "smooth" or "cells".
    fill: What masked-out pixels become: a scalar or an array broadcastable to one image.
    chunk_size: Masked images per forward pass; None: 64 per CPU core (up to 8), 4,096 on
        accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from attribution._checks import image_like, positive_int
from attribution._chunked import chunk_size_option, evaluation_sum
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method, example_keys

MASKS = ("smooth", "cells")


def make(classifier: Classifier, *, num_samples: int = 256, grid: int = 7, p: float = 0.5,
         mask: str = "smooth", fill: ArrayLike = 0.0, chunk_size: int | None = None
         ) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For a non-positive `num_samples` or `grid`, a grid finer than the image,
            `p` outside (0, 1], an unknown `mask`, a bad `chunk_size`, or a `fill` that does
            not broadcast to one image.
    """
    num_samples = positive_int(num_samples, "num_samples")
    grid = positive_int(grid, "grid")
    height, width, _ = classifier.input_shape
    if grid > min(height, width):
        raise ValueError(f"grid must be at most the image's side ({min(height, width)}); "
                         f"got {grid}.")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ValueError(f"p must be a number in (0, 1]; got {p!r}.")
    if mask not in MASKS:
        raise ValueError(f"Unknown mask {mask!r}; valid masks: {', '.join(MASKS)}.")
    fill_image = image_like(fill, classifier.input_shape, "fill")
    chunk_size = chunk_size_option(chunk_size)
    cell_h, cell_w = -(-height // grid), -(-width // grid)
    cells = (np.arange(height)[:, None] // cell_h) * grid + np.arange(width)[None, :] // cell_w

    def draw(key: jax.Array, sample: jax.Array) -> jax.Array:
        """One mask `[H, W]` in [0, 1]."""
        keep_key, shift_key = jax.random.split(jax.random.fold_in(key, sample))
        kept = jax.random.bernoulli(keep_key, p, (grid, grid)).astype(jnp.float32)
        if mask == "cells":
            return kept.reshape(-1)[jnp.asarray(cells)]
        up = jax.image.resize(kept, ((grid + 1) * cell_h, (grid + 1) * cell_w), "bilinear")
        dy, dx = (jax.random.randint(k, (), 0, c)
                  for k, c in zip(jax.random.split(shift_key), (cell_h, cell_w), strict=True))
        return jax.lax.dynamic_slice(up, (dy, dx), (height, width))

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        keys = example_keys(key, images.shape[0])
        filled = jnp.asarray(fill_image, images.dtype)

        def weighted(samples: jax.Array, examples: jax.Array) -> jax.Array:
            masks = jax.vmap(draw)(keys[examples], samples)[..., None]  # [c, H, W, 1]
            kept = images[examples] * masks + filled * (1 - masks)
            score = classifier.target_logit(variables, kept, targets[examples])
            return score[:, None, None, None] * masks

        total = evaluation_sum(weighted, num_samples, images.shape[0], chunk_size,
                               max_lanes=1)
        maps = total / (num_samples * p)
        return jnp.broadcast_to(maps, images.shape).astype(jnp.float32)

    return attribute


METHOD = Method(name="rise", make=make, signed=True, stochastic=True, completeness=False,
                family="perturbation")
