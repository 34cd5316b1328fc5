"""The public entry points: build one method, build many for one jit, or explain at once."""

from __future__ import annotations

import collections
import threading
import warnings
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution import registry
from attribution.classifier import LogitsSpec, NotApplicableError, as_classifier
from attribution.method import AttributionFn
from attribution.model_kinds import kind_of

MODEL_OPTIONS = ("model_kwargs", "logits", "preprocess")
"""Keywords of `build`, `build_many` and `explain` that describe the model, not a method."""


def build(method: str, model: Any, variables: Any, input_shape: tuple[int, int, int], *,
          model_kwargs: Mapping[str, Any] | None = None, logits: LogitsSpec = None,
          preprocess: Callable[[jax.Array], jax.Array] | None = None,
          **options: Any) -> AttributionFn:
    """Builds one attribution method for a model (validated, not jitted).

    Args:
        method: A registered method name (see `names()`).
        model: A `flax.linen.Module`, a `flax.nnx.Module`, an apply function
            `(variables, images) -> logits`, or a `Classifier`.
        variables: The model's variables (NNX: `nnx.state(model)`, or None for the module's
            current state), or the same pytree of `jax.ShapeDtypeStruct`s.
        input_shape: Per-example image shape `(H, W, C)`.
        model_kwargs, logits, preprocess: How to call the model (see `as_classifier`).
        **options: The method's options (the keyword-only parameters of its `make`).

    Returns:
        `fn(variables, images [N, H, W, C], targets int32 [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For an unknown method or option, or an option value the method rejects.
    """
    spec = registry.get(method)
    spec.check_options(options)
    classifier = as_classifier(model, variables, input_shape, model_kwargs=model_kwargs,
                               logits=logits, preprocess=preprocess)
    try:
        return spec.build(classifier, **options)
    except NotApplicableError as e:
        valid = ", ".join(applicable_methods(classifier)) or "none"
        raise NotApplicableError(f"{e} Methods that apply to this model: {valid}.") from None


def applicable_methods(model: Any, variables: Any = None,
                       input_shape: tuple[int, int, int] | None = None,
                       **model_options: Any) -> list[str]:
    """The registered methods that apply to a model (built at their defaults to find out).

    Args:
        model: A `Classifier`, or a model with `variables` and `input_shape` (and the model
            options of `build`).
    """
    classifier = as_classifier(model, variables, input_shape, **model_options)
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in registry.names():
            try:
                registry.get(name).build(classifier)
            except ValueError:  # Not applicable, or not at its default options.
                continue
            found.append(name)
    return found


def _key_for(key: jax.Array, name: str) -> jax.Array:
    # Keyed by name, not position, so adding a method does not change the others' noise.
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def build_many(methods: Mapping[str, Mapping[str, Any]], model: Any, variables: Any,
               input_shape: tuple[int, int, int], *,
               model_kwargs: Mapping[str, Any] | None = None, logits: LogitsSpec = None,
               preprocess: Callable[[jax.Array], jax.Array] | None = None,
               ) -> Callable[[Any, jax.Array, jax.Array, jax.Array], dict[str, jax.Array]]:
    """Builds several methods as one function, so one `jax.jit` compiles them all together.

    Args:
        methods: Method name -> its options (`{}` for defaults).
        model, variables, input_shape, model_kwargs, logits, preprocess: As for `build`.

    Returns:
        `fn(variables, images, targets, key) -> {name: maps [N, H, W, C]}`; each method gets
        its own `fold_in` of `key`.

    Raises:
        ValueError: As for `build`, for any of the methods.
    """
    classifier = as_classifier(model, variables, input_shape, model_kwargs=model_kwargs,
                               logits=logits, preprocess=preprocess)
    fns = {name: build(name, classifier, None, input_shape, **dict(opts))
           for name, opts in methods.items()}

    def attribute_all(variables: Any, images: jax.Array, targets: jax.Array,
                      key: jax.Array) -> dict[str, jax.Array]:
        return {name: fn(variables, images, targets, _key_for(key, name))
                for name, fn in fns.items()}

    return attribute_all


def predicted_targets(model: Any, variables: Any, images: jax.Array,
                      **model_options: Any) -> jax.Array:
    """Returns the model's predicted class per example, int32 `[N]`, for images `[N, H, W, C]`.

    `model_options`: `model_kwargs`, `logits`, `preprocess` as for `build`.
    """
    classifier = as_classifier(model, variables, tuple(images.shape[1:]), **model_options)
    return classifier.predicted_targets(classifier.variables, images)


_CACHE_SIZE = 32
_cache: collections.OrderedDict[Any, tuple[Any, Callable]] = collections.OrderedDict()
_cache_lock = threading.Lock()


def _spec(x: Any) -> jax.ShapeDtypeStruct:
    dtype = x.dtype if hasattr(x, "dtype") else np.result_type(x)
    return jax.ShapeDtypeStruct(np.shape(x), dtype)


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an option value, or raises TypeError."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (np.ndarray, jax.Array)):
        array = np.asarray(value)
        return ("array", array.shape, array.dtype.str, array.tobytes())
    hash(value)
    return value


def explain(method: str, model: Any, variables: Any, images: jax.Array,
            targets: jax.Array | None = None, *, key: jax.Array | None = None,
            model_kwargs: Mapping[str, Any] | None = None, logits: LogitsSpec = None,
            preprocess: Callable[[jax.Array], jax.Array] | None = None,
            **options: Any) -> jax.Array:
    """Explains `images` with one method: builds, jits and caches, then runs.

    Repeated calls with the same model object, method, options and shapes reuse the compiled
    function. For a training loop, prefer `build_many` under your own `jax.jit`.

    Args:
        method: A registered method name.
        model: As for `build`.
        variables: The model's variables (NNX: None for the module's current state).
        images: Float images `[N, H, W, C]`.
        targets: Class to explain per example, int `[N]` in `[0, K)` (e.g. the labels, or any
            class); None explains the predicted class.
        key: PRNG key for stochastic methods; None uses `jax.random.key(0)`.
        model_kwargs, logits, preprocess: How to call the model (see `as_classifier`).
        **options: The method's options.

    Returns:
        Attribution maps float32 `[N, H, W, C]`.

    Raises:
        ValueError: For an unknown method or option, bad images, or targets of the wrong shape
            or out of range.
    """
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C]; got shape {images.shape}.")
    input_shape = tuple(int(d) for d in images.shape[1:])
    # The variables as the model's kind holds them (an NNX module's state, a TrainState's
    # collections, a Keras model's weights); None: the model's own.
    kind = kind_of(model, model_kwargs)
    variables = kind.default_variables() if variables is None else kind.variables_of(variables)
    model_options = {"model_kwargs": model_kwargs, "logits": logits, "preprocess": preprocess}
    specs = jax.tree.map(_spec, variables)
    leaves, treedef = jax.tree.flatten(specs)
    try:
        cache_key = (method, id(model), input_shape, _freeze(options),
                     _freeze(model_options), treedef,
                     tuple((x.shape, str(x.dtype)) for x in leaves))
    except TypeError:
        cache_key = None  # An unhashable option value: build afresh, never cache.
    with _cache_lock:
        hit = _cache.get(cache_key) if cache_key is not None else None
        if hit is not None:
            _cache.move_to_end(cache_key)
    if hit is not None and hit[0] is model:
        num_classes, predict, fn = hit[1]
    else:
        classifier = as_classifier(model, specs, input_shape, **model_options)
        num_classes = classifier.num_classes
        predict = jax.jit(classifier.predicted_targets)
        fn = jax.jit(build(method, classifier, None, input_shape, **options))
        if cache_key is not None:
            with _cache_lock:
                # Holding the model keeps its id from being reused by another object.
                _cache[cache_key] = (model, (num_classes, predict, fn))
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
    if targets is None:
        targets = predict(variables, images)
    targets = _check_targets(targets, images.shape[0], num_classes)
    return fn(variables, images, targets, jax.random.key(0) if key is None else key)


def _check_targets(targets: Any, n: int, num_classes: int) -> jax.Array:
    array = np.asarray(targets)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"targets must be ints of shape ({n},); got {array.dtype} {array.shape}.")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"targets must be in [0, {num_classes}); got values from "
                         f"{array.min()} to {array.max()}.")
    return jnp.asarray(array, dtype=jnp.int32)
