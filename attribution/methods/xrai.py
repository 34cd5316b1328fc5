"""XRAI: integrated gradients summed over regions, regions ranked by how much they explain.

Kapishnikov, Bolukbasi, Viegas & Terry, "XRAI: Better Attributions Through Regions", ICCV 2019.

The base map is integrated gradients averaged over a black and a white baseline, then the
maximum over channels (PAIR saliency's `XRAI` with its defaults). The image is segmented at
several scales into overlapping candidate regions, each dilated a little. Starting from an empty
selection, XRAI repeatedly adds the region whose not-yet-selected pixels have the highest mean
base attribution (the gain density), and gives those pixels that mean; a region that would add
fewer than `min_pixel_diff` new pixels is dropped. Pixels no region covers get the mean base
attribution over them. This is PAIR's "full" algorithm step for step (the test suite checks
it against a hand-worked case, `benchmarks/vs_pair_saliency.py` against PAIR on the same
segments and base map).

The segments differ from PAIR's: PAIR runs Felzenszwalb's graph segmentation on host at six
scales after resizing to 224 x 224; here SLIC superpixels (`attribution.segmentation`) at
`segment_sizes` grid steps run inside the jitted program, batched. PAIR's dilation radius (5
pixels) and `min_pixel_diff` (50 pixels) are for 224 x 224 images; the defaults here, 1 and 1,
are the same fractions of a 28 x 28 digit, rounded up.

Options:
    steps: Integrated-gradients path points per baseline (PAIR: 100).
    baselines: The baselines to average IG over: scalars or images (PAIR: the image's minimum
        and maximum, 0 and 1 for the project's digits).
    rule: IG's path rule, "midpoint" or "linspace" (PAIR's).
    segment_sizes: SLIC grid steps in pixels, one segmentation per size; None: 3, 5, 7, 10
        and 14, those that fit the image (all of them for 28 x 28 digits).
    compactness: SLIC's weight of the distance in space against the distance in intensity.
    dilation: Radius in pixels by which every segment grows (0: none).
    min_pixel_diff: A region must add at least this many new pixels to be chosen.
    chunk_size: IG's model evaluations per pass (see `integrated_gradients`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution import segmentation
from attribution._checks import positive_int
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods import integrated_gradients

DEFAULT_SEGMENT_SIZES = (3, 5, 7, 10, 14)


def make(classifier: Classifier, *, steps: int = 100, baselines: Sequence[ArrayLike] = (0.0, 1.0),
         rule: str = "midpoint", segment_sizes: Sequence[int] | None = None,
         compactness: float = 0.3, dilation: int = 1, min_pixel_diff: int = 1,
         chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For bad IG options (see `integrated_gradients`), no baselines, a segment
            size that is not a positive int or exceeds the image, a negative `dilation`, a
            non-positive `compactness` or `min_pixel_diff`.
    """
    if isinstance(baselines, (str, bytes)) or not isinstance(baselines, Sequence) or not baselines:
        raise ValueError(f"baselines must be a non-empty sequence of scalars or images; got "
                         f"{baselines!r}.")
    ig = [integrated_gradients.make(classifier, steps=steps, baseline=b, rule=rule,
                                    chunk_size=chunk_size) for b in baselines]
    if segment_sizes is None:
        side = max(classifier.input_shape[:2])
        segment_sizes = tuple(s for s in DEFAULT_SEGMENT_SIZES if s <= side) or (side,)
    sizes = segmentation.check_sizes(segment_sizes, classifier.input_shape, "segment_sizes")
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise ValueError(f"dilation must be an int >= 0; got {dilation!r}.")
    if isinstance(compactness, bool) or not isinstance(compactness, (int, float)) \
            or compactness <= 0:
        raise ValueError(f"compactness must be a number > 0; got {compactness!r}.")
    min_pixel_diff = positive_int(min_pixel_diff, "min_pixel_diff")
    counts = [segmentation.grid_size(classifier.input_shape, s) for s in sizes]

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        base = sum(fn(variables, images, targets, key) for fn in ig) / len(ig)
        base = jnp.max(base, axis=-1)  # [N, H, W]: channels merged as PAIR does.
        masks = jnp.concatenate([
            segmentation.segment_masks(segmentation.slic(images, size=s,
                                                         compactness=compactness), k)
            for s, k in zip(sizes, counts, strict=True)], axis=1)
        masks = segmentation.dilate(masks, dilation)  # [N, S, H, W]
        n, height, width = base.shape
        regions = jax.vmap(lambda a, m: region_map(a, m, min_pixel_diff))(
            base.reshape(n, -1), masks.reshape(n, masks.shape[1], -1))
        return jnp.broadcast_to(regions.reshape(n, height, width, 1), images.shape)

    return attribute


def region_map(attribution: jax.Array, masks: jax.Array, min_pixel_diff: int) -> jax.Array:
    """XRAI's greedy region ranking for one image.

    Args:
        attribution: The base map, float `[P]` (pixels flattened).
        masks: Candidate regions, bool `[S, P]`.
        min_pixel_diff: Regions adding fewer new pixels than this are dropped.

    Returns:
        float `[P]`: each pixel the gain density of the region that first covered it; pixels
        never covered, the mean attribution over them.
    """
    masks = masks.astype(attribution.dtype)

    def body(state: tuple[jax.Array, jax.Array, jax.Array]
             ) -> tuple[jax.Array, jax.Array, jax.Array]:
        covered, alive, out = state
        free = 1.0 - covered
        new_pixels = masks @ free  # [S]
        alive = alive & (new_pixels >= min_pixel_diff)
        gain = jnp.where(alive, (masks @ (attribution * free)) / jnp.maximum(new_pixels, 1.0),
                         -jnp.inf)
        best = jnp.argmax(gain)  # The first of equal gains, as PAIR's strict `>` picks.
        added = masks[best] * free * jnp.any(alive)
        out = jnp.where(added > 0, gain[best], out)
        return jnp.maximum(covered, added), alive.at[best].set(False), out

    start = (jnp.zeros_like(attribution), jnp.ones(masks.shape[0], bool),
             jnp.zeros_like(attribution))
    covered, _, out = jax.lax.while_loop(lambda state: jnp.any(state[1]), body, start)
    rest = 1.0 - covered
    fill = jnp.sum(attribution * rest) / jnp.maximum(jnp.sum(rest), 1.0)
    return jnp.where(rest > 0, fill, out)


METHOD = Method(name="xrai", make=make, signed=True, stochastic=False, completeness=False,
                family="gradient")
