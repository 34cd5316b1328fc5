"""Keras 3 models on the JAX backend: `model.stateless_call` in inference mode.

Variables are `(trainable, non_trainable)`: the two lists of arrays `stateless_call` takes,
in the order of `model.trainable_variables` and `model.non_trainable_variables`. Layers are
the model's layers by their Keras names ("conv2d_1"); while an interception hook is open,
each layer's `call` is routed through the hooks for the duration of the traced call only. A
Dense or Conv layer with a fused activation (`activation="relu"`) shows the hooks its
pre-activation and applies the activation after them, as a linen conv followed by an
`nn.relu` call does: so Grad-CAM on it uses the pre-activation, and the input-invariance
check compensates the affine part exactly.
Re-initialization uses each layer's own initializers (`kernel_initializer`,
`bias_initializer`, `gamma_initializer`, ...), seeded from the key, for the trainable
variables of each top-level layer; BatchNorm's moving statistics are non-trainable and
never re-drawn.

Keras is imported only when a Keras model is passed (the `[keras]` extra); set
`KERAS_BACKEND=jax` before Keras is first imported.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution.model_kinds import interception
from attribution.model_kinds.base import ModelKind


def accepts(model: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.Model)


def _all_layers(model) -> list[Any]:
    return list(model._flatten_layers(include_self=False, recursive=True))


# Patching is per model object: two threads tracing one model would patch it twice.
_patch_lock = threading.RLock()


def _hooked_call(layer: Any, linear: bool) -> Any:
    """`layer.call` routed through the open hooks (the affine part, if it is `linear`)."""
    import keras

    original = layer.call
    activation = getattr(layer, "activation", None)
    fused = linear and activation not in (None, keras.activations.linear)

    def affine(*args, **kwargs):
        if not fused:
            return original(*args, **kwargs)
        object.__setattr__(layer, "activation", None)  # Keras's call skips a None one.
        try:
            return original(*args, **kwargs)
        finally:
            object.__setattr__(layer, "activation", activation)

    def call(*args, **kwargs):
        called = interception.LayerCall(
            (layer.name,), layer, args, linear,
            lambda *inputs: affine(*inputs, *args[1:], **kwargs))
        out = interception.run(called, lambda: affine(*args, **kwargs))
        return activation(out) if fused else out

    return call


@contextlib.contextmanager
def _hooked(model) -> Iterator[None]:
    """Routes every layer's `call` through the open hooks (restored on exit)."""
    import keras

    linear = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Conv1D,
              keras.layers.Conv2D, keras.layers.Conv3D)
    with _patch_lock:
        patched = []
        try:
            for layer in _all_layers(model):
                # An instance attribute, bypassing Keras's attribute tracking.
                object.__setattr__(layer, "call", _hooked_call(layer, isinstance(layer, linear)))
                patched.append(layer)
            yield
        finally:
            for layer in patched:
                object.__delattr__(layer, "call")


class KerasKind(ModelKind):
    """A `keras.Model` (JAX backend); variables are `(trainable, non_trainable)` lists."""

    name = "keras.Model"

    def __init__(self, model: Any, model_kwargs: Mapping[str, Any] | None = None):
        import keras

        if keras.backend.backend() != "jax":
            raise ValueError(f"Keras models need the JAX backend (KERAS_BACKEND=jax); this "
                             f"Keras runs on {keras.backend.backend()!r}.")
        self.model = model
        self.model_kwargs = {"training": False, **dict(model_kwargs or {})}

    def apply(self, variables: Any, images: jax.Array) -> Any:
        trainable, non_trainable = variables
        if not interception.active():
            out, _ = self.model.stateless_call(list(trainable), list(non_trainable), images,
                                               **self.model_kwargs)
            return out
        with _hooked(self.model):
            out, _ = self.model.stateless_call(list(trainable), list(non_trainable), images,
                                               **self.model_kwargs)
        return out

    def default_variables(self) -> Any:
        return self.variables_of(self.model)

    def variables_of(self, state: Any) -> Any:
        if accepts(state):
            return ([jnp.asarray(v.value) for v in state.trainable_variables],
                    [jnp.asarray(v.value) for v in state.non_trainable_variables])
        if isinstance(state, (tuple, list)) and len(state) == 2:
            return tuple(list(part) for part in state)
        raise TypeError(f"Cannot find the Keras model's variables in {type(state).__name__}: "
                        "pass the keras.Model or (trainable values, non-trainable values).")

    def check(self, variables: Any, input_shape: tuple[int, int, int]) -> None:
        want = [tuple(v.shape) for v in self.model.trainable_variables]
        have = [tuple(np.shape(v)) for v in variables[0]]
        if have != want:
            raise ValueError("The variables do not fit the Keras model: pass the model or "
                             "([v.value for v in model.trainable_variables], "
                             "[v.value for v in model.non_trainable_variables]).")

    # Parameter randomization ---------------------------------------------------------------

    def _owners(self) -> list[tuple[str, Any, Any]]:
        """(top-level layer name, owning layer, variable) per trainable variable."""
        owner = {}
        for top in self.model.layers:
            for layer in [top, *_all_layers(top)]:
                for variable in layer._trainable_variables if hasattr(
                        layer, "_trainable_variables") else []:
                    owner.setdefault(id(variable), (top.name, layer))
        return [(*owner[id(v)], v) if id(v) in owner else (None, None, v)
                for v in self.model.trainable_variables]

    def parameter_layers(self, variables: Any) -> list[str | None]:
        owners = [name for name, _, _ in self._owners()]
        return owners + [None] * len(variables[1])

    def fresh_variables(self, variables: Any, key: jax.Array,
                        input_shape: tuple[int, int, int]) -> Any:
        import keras

        del input_shape
        seeds = np.asarray(jax.random.randint(key, (len(variables[0]),), 0, 2**31 - 1))
        fresh = []
        for (_, layer, variable), seed, trained in zip(self._owners(), seeds, variables[0],
                                                          strict=True):
            if layer is None:  # A weight of the model itself, no layer's: not randomized.
                fresh.append(trained)
                continue
            init = getattr(layer, f"{variable.name}_initializer", None)
            if init is None:
                raise ValueError(
                    f"Cannot re-initialize Keras variable {variable.path}: its layer "
                    f"{type(layer).__name__} has no `{variable.name}_initializer`.")
            init = keras.initializers.get(init)
            seeded = type(init).from_config({**init.get_config(), **(
                {"seed": int(seed)} if "seed" in init.get_config() else {})})
            fresh.append(jnp.asarray(seeded(np.shape(trained), variable.dtype)))
        return fresh, list(variables[1])
