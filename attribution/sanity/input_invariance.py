"""Input invariance: a method should not change its map when a compensated model does not.

Kindermans, Hooker, Adebayo, Alber, Schütt, Dähne, Erhan & Kim, "The (Un)reliability of
Saliency Methods", in Explainable AI (Springer LNCS 11700), 2019. Shift every input by a
constant `c` and compensate in the first layer, so the shifted model's logits on `x + c`
equal the original model's on `x`. The two models compute the same function of the data, so
a reliable method gives the same map: the gradient does, gradient x input does not.

The first parameterized layer (a Dense or Conv) is linear, so
`layer(x + c) - (layer(c * 1) - layer(0)) == layer(x)`. The compensation is applied by
intercepting that layer's output (`flax.linen.intercept_methods`) and subtracting
`layer(c * 1) - layer(0)` evaluated on a constant image. The paper changes the bias instead;
that is exact only away from the borders of a zero-padded convolution, where the padding is
not shifted, while the subtracted map is exact everywhere. Any parameter-free affine
preprocessing before the layer (reshape, scaling) is folded into the same difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution.classifier import Classifier
from attribution.method import AttributionFn

DEFAULT_SHIFT = -1.0
"""Maps [0, 1] MNIST digits to [-1, 0], as in Kindermans et al."""

MethodSpec = str | Callable[[Classifier], AttributionFn]
"""A registered method name, or a factory `classifier -> AttributionFn`."""


def first_linear_layer(classifier: Classifier) -> str:
    """The path ("/"-joined) of the first Dense or Conv layer the model calls.

    Raises:
        ValueError: If the model calls no Dense or Conv module (e.g. a plain apply function
            with hand-written matmuls).
    """
    raise NotImplementedError


def shifted_classifier(model: Any, variables: Any, input_shape: tuple[int, int, int],
                       shift: float = DEFAULT_SHIFT) -> Classifier:
    """The compensated model `m2`, with `m2(x + shift) == m1(x)` for the same variables.

    Args:
        model: A `flax.linen.Module`, an apply function that calls linen modules, or a
            `Classifier`.
        variables: The model's variables (or a matching pytree of `jax.ShapeDtypeStruct`s).
        input_shape: Per-example image shape `(H, W, C)`.
        shift: The constant added to every pixel.

    Returns:
        A classifier over shifted images with the same variables.

    Raises:
        ValueError: As for `first_linear_layer`, or if `shift` is not a finite number.
    """
    raise NotImplementedError


def make_input_invariance(
    method: MethodSpec, model: Any, variables: Any, input_shape: tuple[int, int, int], *,
    shift: float = DEFAULT_SHIFT, similarity: str = "l1",
    options: Mapping[str, Any] | None = None,
) -> Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]:
    """Builds the invariance score of one method: its map on `m1(x)` against `m2(x + shift)`.

    Args:
        method: A registered method name (built with `options`) or a factory
            `classifier -> AttributionFn` (then `options` must be empty).
        model, variables, input_shape, shift: As for `shifted_classifier`.
        similarity: A name from `SIMILARITIES`; the default "l1" (`1 - |a - b|_1 /
            (|a|_1 + |b|_1)`) sees changes of scale that rank correlations ignore.
        options: The method's options.

    Returns:
        Pure, jittable `fn(variables, images [N, H, W, C], targets int32 [N], key) ->
        similarity float32 [N]` (1.0 = invariant). Baselines inside the method (IG's black
        image) are not shifted: that is what the test probes.

    Raises:
        ValueError: For an unknown method, option or similarity, or as `shifted_classifier`.
    """
    raise NotImplementedError


def input_invariance(
    method: MethodSpec, model: Any, variables: Any, images: jax.Array,
    targets: jax.Array | None = None, *, shift: float = DEFAULT_SHIFT, similarity: str = "l1",
    key: jax.Array | None = None, options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Runs `make_input_invariance` once on `images`; targets None = the predicted class.

    Returns:
        float32 `[N]` similarities, 1.0 = invariant.
    """
    raise NotImplementedError
