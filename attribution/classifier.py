"""The classifier as the attribution engine sees it: a pure function from images to logits.

Every method explains the logit of a target class (pre-softmax), never the loss, so
the explanation does not depend on the labels the model was trained with.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from attribution.model_kinds import ModelKind, kind_of

LogitsSpec = int | str | Callable[[Any], jax.Array] | None
"""How to find the logits in a model's output: an index (tuple output), a key (dict output),
a function of the output, or None (the output is the logits)."""


class NotApplicableError(ValueError):
    """A method does not apply to this model (no ReLU, no spatial layer, no GAP head)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Classifier:
    """A classifier as the engine sees it: logits = apply_fn(variables, images).

    Attributes:
        apply_fn: `(variables, images [N, H, W, C]) -> logits [N, K]`; pure and jittable.
        input_shape: The per-example image shape `(H, W, C)`.
        variables: A template of the variables pytree: real arrays or `jax.ShapeDtypeStruct`s.
            Methods may trace the model with it; the values used are the ones passed at call time.
        kind: The model's adapter (`attribution.model_kinds`), for what needs more than the
            logits (re-initializing layers); None for a bare apply function.
    """

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    input_shape: tuple[int, int, int]
    variables: Any
    kind: ModelKind | None = None

    def logits(self, variables: Any, images: jax.Array) -> jax.Array:
        """Returns the logits `[N, K]` for images `[N, H, W, C]`."""
        return self.apply_fn(variables, images)

    def target_logit(self, variables: Any, images: jax.Array, targets: jax.Array) -> jax.Array:
        """Returns the logit of each example's target class, shape `[N]`.

        Args:
            variables: The model variables.
            images: Float images `[N, H, W, C]`.
            targets: Int class indices `[N]`, each in `[0, K)`.
        """
        logits = self.logits(variables, images)
        return jnp.take_along_axis(logits, targets[:, None].astype(jnp.int32), axis=1)[:, 0]

    def predicted_targets(self, variables: Any, images: jax.Array) -> jax.Array:
        """Returns the predicted class (argmax of the logits) per example, int32 `[N]`."""
        return jnp.argmax(self.logits(variables, images), axis=-1).astype(jnp.int32)

    @functools.cached_property
    def num_classes(self) -> int:
        """The number of logits K, found by abstract evaluation (no computation)."""
        return _output(self.apply_fn, self.variables, self.input_shape).shape[1]


def _output(apply_fn: Callable, variables: Any, input_shape: tuple[int, ...]) -> Any:
    images = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    return jax.eval_shape(apply_fn, variables, images)


def _is_abstract(output: Any) -> bool:
    """Whether a kind's `check` returned an abstract output to reuse (not None)."""
    leaves = jax.tree.leaves(output)
    return bool(leaves) and all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in leaves)


def _describe(output: Any) -> str:
    if isinstance(output, Mapping):
        return "a dict with keys " + ", ".join(map(repr, output))
    if isinstance(output, (tuple, list)):
        return f"a {type(output).__name__} of {len(output)} " + ", ".join(
            str(getattr(o, "shape", type(o).__name__)) for o in output)
    return f"shape {tuple(getattr(output, 'shape', ()))}"


def _logits_selector(logits: LogitsSpec) -> Callable[[Any], Any]:
    if logits is None:
        return lambda output: output
    if callable(logits):
        return logits
    if isinstance(logits, (int, str)) and not isinstance(logits, bool):
        return lambda output: output[logits]
    raise ValueError(f"logits must be an index, a key, a function of the model's output or "
                     f"None; got {logits!r}.")


def as_classifier(model: Any, variables: Any, input_shape: tuple[int, int, int], *,
                  model_kwargs: Mapping[str, Any] | None = None, logits: LogitsSpec = None,
                  preprocess: Callable[[jax.Array], jax.Array] | None = None) -> Classifier:
    """Wraps a model of any kind as a `Classifier`.

    Args:
        model: A `flax.linen.Module`, a `flax.nnx.Module`, a plain function
            `(variables, images [N, H, W, C]) -> logits [N, K]`, a `ModelKind`, or a
            `Classifier` (returned as is).
        variables: The model's variables (linen: `{"params": ..., "batch_stats": ...}`; NNX:
            `nnx.state(model)`, or None for the module's current state), real arrays or the
            same pytree of `jax.ShapeDtypeStruct`s.
        input_shape: The per-example image shape `(H, W, C)`.
        model_kwargs: Keywords for every model call, added to (or overriding) the
            evaluation-mode ones the model kind passes (`train=False`, ...).
        logits: Where the logits are in the model's output (see `LogitsSpec`).
        preprocess: A function applied to the images inside every model call (e.g. a
            mean / std standardization), so that images stay displayable pixels.

    Returns:
        The classifier, running the model in evaluation mode.

    Raises:
        ValueError: If `input_shape` is not three positive ints, `model` is not a model, the
            model cannot run in evaluation mode with `variables`, or its output (after
            `logits`) is not `[N, K]` logits.
    """
    if isinstance(model, Classifier):
        return model
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be three positive ints (H, W, C); got {input_shape!r}.")
    if preprocess is not None and not callable(preprocess):
        raise ValueError(f"preprocess must be a function of the images; got {preprocess!r}.")
    kind = kind_of(model, model_kwargs)
    variables = kind.default_variables() if variables is None else kind.variables_of(variables)
    checked = kind.check(variables, shape)
    select = _logits_selector(logits)

    def apply_fn(variables: Any, images: jax.Array) -> jax.Array:
        if preprocess is not None:
            images = preprocess(images)
        return select(kind.apply(variables, images))

    try:
        raw = checked if _is_abstract(checked) else _output(kind.apply, variables, shape)
    except TypeError as e:
        if "argument" not in str(e):
            raise
        raise ValueError(
            f"The model cannot be called on images [1, {', '.join(map(str, shape))}] with "
            f"model_kwargs {getattr(kind, 'model_kwargs', {})}: {e}; pass the arguments it "
            "needs in model_kwargs.") from None
    try:
        # Without logits or preprocess, apply_fn is kind.apply: no second trace of the model.
        out = raw if logits is None and preprocess is None else _output(apply_fn, variables,
                                                                          shape)
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError(f"logits={logits!r} does not pick the logits from the model's output, "
                         f"{_describe(raw)}: {e!r}.") from None
    if not hasattr(out, "shape") or len(out.shape) != 2 or out.shape[0] != 1:
        if logits is not None:
            raise ValueError(f"logits={logits!r} does not pick the logits [N, K] from the "
                             f"model's output, {_describe(raw)}: for N=1 it gives "
                             f"{_describe(out)}.")
        raise ValueError(
            f"The model must map images [N, {', '.join(map(str, shape))}] to logits [N, K]; "
            f"for N=1 it returned {_describe(out)}. Pick the logits with the `logits` option: "
            "an index (tuple output), a key (dict output) or a function of the output.")
    classifier = Classifier(apply_fn=apply_fn, input_shape=shape, variables=variables, kind=kind)
    # `num_classes` is known now: stored where the cached property keeps it (frozen dataclass).
    classifier.__dict__["num_classes"] = out.shape[1]
    return classifier
