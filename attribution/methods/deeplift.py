"""DeepLIFT with the rescale rule.

Shrikumar, Greenside & Kundaje, "Learning Important Features Through Propagating Activation
Differences", ICML 2017.

The map is `(x - baseline) * m`, where the multipliers m are the gradient of the target logit
with every elementwise nonlinearity's derivative replaced by its secant slope between the
input and the baseline (`attribution.rescale_backward`). For a network of affine layers and
elementwise activations the map sums to `f(x) - f(baseline)` exactly (summation to delta).
Models whose forward pass holds other input-dependent operations (max pooling, products of
activations such as GELU's) are refused at construction, naming the operation.

Options:
    baseline: A scalar or an array broadcastable to one image `(H, W, C)`; 0.0 is black.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution._checks import image_like
from attribution._chunked import split_batch
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.rescale_backward import rescale_apply


def multipliers(classifier: Classifier) -> Any:
    """`fn(variables, images [N, H, W, C], references [N, H, W, C], targets [N]) -> [N, H, W, C]`:
    the target logit's rescale-rule multipliers.

    Raises:
        NotApplicableError: For a model the rescale rule cannot handle (checked here, by
            tracing once with the classifier's variables template).
    """
    apply = rescale_apply(classifier.apply_fn)
    probe = jax.ShapeDtypeStruct((1, *classifier.input_shape), jnp.float32)
    jax.eval_shape(apply, classifier.variables, probe, probe)

    def fn(variables, images, references, targets):
        def total(x):
            logits = apply(variables, x, references)
            # Examples are independent, so the gradient of the sum is per example.
            return jnp.sum(jnp.take_along_axis(logits, targets[:, None], axis=1))

        return jax.grad(total)(images)

    return fn


def make(classifier: Classifier, *, baseline: ArrayLike = 0.0) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: If `baseline` does not broadcast to one image, or the model holds an
            input-dependent operation the rescale rule cannot handle.
    """
    base = image_like(baseline, classifier.input_shape, "baseline")
    multiplier = multipliers(classifier)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        reference = jnp.broadcast_to(jnp.asarray(base, images.dtype), images.shape)
        m = multiplier(variables, images, reference, targets)
        return ((images - reference) * m).astype(jnp.float32)

    return split_batch(attribute)


METHOD = Method(name="deeplift", make=make, signed=True, stochastic=False, completeness=True,
                family="propagation")
