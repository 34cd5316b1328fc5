"""Input invariance: a method should not change its map when a compensated model does not.

Kindermans, Hooker, Adebayo, Alber, Schütt, Dähne, Erhan & Kim, "The (Un)reliability of
Saliency Methods", in Explainable AI (Springer LNCS 11700), 2019. Shift every input by a
constant `c` and compensate in the first layer, so the shifted model's logits on `x + c`
equal the original model's on `x`. The two models compute the same function of the data, so
a reliable method gives the same map: the gradient does, gradient x input does not.

The first parameterized layer (a linen Dense or Conv, an NNX Linear or Conv) is linear, so
`layer(x + c) - (layer(c * 1) - layer(0)) == layer(x)`. The compensation is applied by
intercepting that layer's output (`attribution.model_kinds.intercept`) and subtracting
`layer(c * 1) - layer(0)`, a copy of the layer applied to a constant input. The paper changes
the bias instead; that is exact only away from the borders of a zero-padded convolution,
where the padding is not shifted, while the subtracted map is exact everywhere. The layer
must take the image itself, up to a reshape (a ValueError says so otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution import registry
from attribution.classifier import Classifier, as_classifier
from attribution.method import AttributionFn
from attribution.model_kinds import intercept
from attribution.sanity.similarity import get_similarity

DEFAULT_SHIFT = -1.0
"""Maps [0, 1] MNIST digits to [-1, 0], as in Kindermans et al."""

DEFAULT_SIMILARITY = "l1"
"""Compares the maps before and after the shift; sees changes of scale, unlike ranks."""

MethodSpec = str | Callable[[Classifier], AttributionFn]
"""A registered method name, or a factory `classifier -> AttributionFn`."""


def first_linear_layer(classifier: Classifier) -> str:
    """The path ("/"-joined) of the first Dense / Linear or Conv layer the model calls.

    Raises:
        ValueError: If the model calls no such module (e.g. a plain apply function with
            hand-written matmuls).
    """
    found: list[tuple[str, ...]] = []

    def record(call_next, layer):
        if not found and layer.linear:
            found.append(layer.path)
        return call_next()

    images = jax.ShapeDtypeStruct((1, *classifier.input_shape), jnp.float32)
    with intercept(record):
        # A fresh function each time: eval_shape caches traces, which would skip the hook.
        jax.eval_shape(lambda v, x: classifier.apply_fn(v, x), classifier.variables, images)
    if not found:
        raise ValueError("Input invariance needs a model whose first parameterized layer is a "
                         "Dense / Linear or Conv module (flax.linen or flax.nnx); this model "
                         "calls none.")
    return "/".join(found[0])


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
    if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not math.isfinite(shift):
        raise ValueError(f"shift must be a finite number; got {shift!r}.")
    original = as_classifier(model, variables, input_shape)
    path = tuple(first_linear_layer(original).split("/"))

    size = math.prod(original.input_shape)

    def compensate(call_next, layer):
        out = call_next()
        if layer.path != path:
            return out
        inputs = layer.args[0]
        if math.prod(inputs.shape[1:]) != size:
            raise ValueError(f"Input invariance: the first layer {'/'.join(path)!r} must take the "
                             f"image itself (up to a reshape); its input has shape "
                             f"{inputs.shape}.")
        # The layer applied to a constant and a black input, standalone: the other hooks
        # (layer probes, Grad-CAM's) see one call of this layer per forward pass.
        constant = jnp.stack([jnp.full(inputs.shape[1:], shift, inputs.dtype),
                              jnp.zeros(inputs.shape[1:], inputs.dtype)])
        both = layer.standalone(constant)
        # W c per output position, so also exact at zero-padded borders.
        return out - (both[0] - both[1])

    def apply_fn(variables: Any, images: jax.Array) -> jax.Array:
        with intercept(compensate):
            return original.apply_fn(variables, images)

    return Classifier(apply_fn=apply_fn, input_shape=original.input_shape,
                      variables=original.variables, kind=original.kind)


def _build(method: MethodSpec, classifier: Classifier,
           options: Mapping[str, Any] | None) -> AttributionFn:
    if isinstance(method, str):
        return registry.get(method).build(classifier, **dict(options or {}))
    if callable(method):
        if options:
            raise ValueError("options apply to a registered method name; a factory takes none "
                             f"(got {sorted(options)}).")
        return method(classifier)
    raise ValueError(f"method must be a registered method name or a factory; got "
                     f"{type(method).__name__}.")


def make_shifted_maps(
    method: MethodSpec, model: Any, variables: Any, input_shape: tuple[int, int, int], *,
    shift: float = DEFAULT_SHIFT, options: Mapping[str, Any] | None = None,
) -> AttributionFn:
    """The method's maps of the compensated model `m2` on the shifted inputs `x + shift`.

    The other half of the test, for a caller that has the original model's maps already
    (the SanityCallback takes them from its randomization check: the program then holds one
    copy of each method fewer).

    Args:
        method, options: As for `make_input_invariance`.
        model, variables, input_shape, shift: As for `shifted_classifier`.

    Returns:
        Pure, jittable `fn(variables, images [N, H, W, C], targets int32 [N], key) -> maps`;
        `images` are the unshifted inputs.
    """
    shifted = _build(method, shifted_classifier(model, variables, input_shape, shift), options)

    def maps(variables: Any, images: jax.Array, targets: jax.Array, key: jax.Array
             ) -> jax.Array:
        return shifted(variables, images + shift, targets, key)

    return maps


def make_input_invariance(
    method: MethodSpec, model: Any, variables: Any, input_shape: tuple[int, int, int], *,
    shift: float = DEFAULT_SHIFT, similarity: str = DEFAULT_SIMILARITY,
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
    sim = get_similarity(similarity)
    original = as_classifier(model, variables, input_shape)
    after = make_shifted_maps(method, original, variables, input_shape, shift=shift,
                              options=options)
    before = _build(method, original, options)

    def score(variables: Any, images: jax.Array, targets: jax.Array,
              key: jax.Array) -> jax.Array:
        return sim(before(variables, images, targets, key),
                   after(variables, images, targets, key))

    return score


def input_invariance(
    method: MethodSpec, model: Any, variables: Any, images: jax.Array,
    targets: jax.Array | None = None, *, shift: float = DEFAULT_SHIFT,
    similarity: str = DEFAULT_SIMILARITY, key: jax.Array | None = None,
    options: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Runs `make_input_invariance` once on `images`; targets None = the predicted class.

    Returns:
        float32 `[N]` similarities, 1.0 = invariant.
    """
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C]; got shape {images.shape}.")
    input_shape = tuple(int(d) for d in images.shape[1:])
    if variables is None:  # An NNX module's own state.
        variables = as_classifier(model, None, input_shape).variables
    fn = make_input_invariance(method, model, variables, input_shape, shift=shift,
                               similarity=similarity, options=options)
    if targets is None:
        targets = as_classifier(model, variables, input_shape).predicted_targets(variables, images)
    targets = jnp.asarray(targets, jnp.int32)
    key = jax.random.key(0) if key is None else key
    return np.asarray(jax.jit(fn)(variables, images, targets, key))
