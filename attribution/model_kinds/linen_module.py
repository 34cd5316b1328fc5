"""Flax linen modules: `model.apply(variables, images, **mode keywords)`, never mutating.

Evaluation mode is asked for through the model's own arguments: if `__call__` declares
`train`, `training` or `is_training` it gets False, if it declares `deterministic` it gets
True; `model_kwargs` adds or overrides keywords. Every collection the model reads (params,
batch_stats, ...) comes from the variables; a TrainState subclass's extra mapping fields
(the Flax ImageNet example's `batch_stats`) are collections too. Layers are submodules by
module path ("Conv_1", "Block_0/Conv_1"), reached with `flax.linen.intercept_methods`;
re-initialization uses the model's own `init`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from attribution.model_kinds.base import ModelKind, fast_compiling_draws, mapping_fields

MODE_KEYWORDS = {"train": False, "training": False, "is_training": False, "deterministic": True}
"""Keywords that switch a model to evaluation mode, and the value that does."""


# Jitted (unjitted, each parameter shape compiles its own random draw: seconds on CPU), with
# the module and keywords static: linen modules hash by their fields, so every seed and
# every check built for the same model reuse one compile.
_init = jax.jit(lambda model, keywords, key, images: model.init(key, images, **dict(keywords)),
                static_argnums=(0, 1))


def accepts(model: Any) -> bool:
    return isinstance(model, nn.Module)


def call_parameters(model: nn.Module) -> list[str]:
    """The names of the arguments of `model.__call__` (without self)."""
    return list(inspect.signature(type(model).__call__).parameters)[1:]


class LinenKind(ModelKind):
    """A `flax.linen.Module`; variables are its variables dict `{"params": ..., ...}`."""

    name = "flax.linen.Module"

    def __init__(self, model: nn.Module, model_kwargs: Mapping[str, Any] | None = None):
        self.model = model
        declared = call_parameters(model)
        mode = {k: v for k, v in MODE_KEYWORDS.items() if k in declared}
        self.model_kwargs = {**mode, **dict(model_kwargs or {})}

    def apply(self, variables: Any, images: jax.Array) -> Any:
        return self.model.apply(variables, images, **self.model_kwargs)

    def variables_of(self, state: Any) -> Any:
        if isinstance(state, Mapping) and "params" in state:
            return state
        params = getattr(state, "params", None)
        if params is None:
            raise TypeError(
                f"Cannot find parameters in {type(state).__name__}: pass a TrainState (its "
                "extra fields such as batch_stats come along), an object with `.params`, or a "
                "variables dict {'params': ..., ...}.")
        return {"params": params, **mapping_fields(state)}

    def check(self, variables: Any, input_shape: tuple[int, int, int]) -> Any:
        images = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
        have = sorted(variables) if isinstance(variables, Mapping) else []
        try:
            return jax.eval_shape(lambda v, x: self.apply(v, x), variables, images)
        except flax.errors.ModifyScopeVariableError as e:
            raise ValueError(
                f"The model writes collection {_collection(e)!r} in evaluation mode (called with "
                f"{self.model_kwargs or 'no keywords'}); pass the keyword that turns training "
                f"off in model_kwargs, e.g. {{'train': False}} or "
                f"{{'use_running_average': True}} (its __call__ takes: "
                f"{', '.join(call_parameters(self.model))}).") from None
        except flax.errors.ScopeCollectionNotFound as e:
            raise ValueError(
                f"The model reads collection {_collection(e)!r}, which the variables lack (they "
                f"have: {', '.join(have) or 'none'}); pass the whole variables dict, or a "
                f"TrainState with a {_collection(e)!r} field.") from None
        except TypeError as e:
            if "argument" not in str(e):
                raise
            raise ValueError(
                f"The model cannot be called as model.apply(variables, images, "
                f"**{self.model_kwargs}): {e}; pass the arguments it needs, and only those, in "
                f"model_kwargs (its __call__ takes: {', '.join(call_parameters(self.model))})."
            ) from None

    # Parameter randomization ---------------------------------------------------------------

    def parameter_layers(self, variables: Any) -> list[str | None]:
        layers = []
        for keypath, _ in jax.tree_util.tree_flatten_with_path(variables)[0]:
            keys = [getattr(k, "key", None) for k in keypath]
            layers.append(str(keys[1]) if len(keys) > 2 and keys[0] == "params" else None)
        return layers

    def fresh_variables(self, variables: Any, key: jax.Array,
                        input_shape: tuple[int, int, int]) -> Any:
        try:
            keywords = tuple(sorted(self.model_kwargs.items()))
            hash(keywords)
        except TypeError:  # Unhashable keyword values: compile for this call only.
            keywords = None
        images = jnp.zeros((1, *input_shape), jnp.float32)
        with fast_compiling_draws():
            fresh = (_init(self.model, keywords, key, images) if keywords is not None else
                     jax.jit(lambda k, x: self.model.init(k, x, **self.model_kwargs))(key,
                                                                                      images))
        # Matched by path, in the layout of `variables` (a FrozenDict stays one).
        drawn = {_keys(path): leaf for path, leaf in
                 jax.tree_util.tree_flatten_with_path(fresh["params"])[0]}
        trained, treedef = jax.tree_util.tree_flatten_with_path(variables["params"])
        missing = [_keys(path) for path, _ in trained if _keys(path) not in drawn]
        if missing or len(drawn) != len(trained):
            raise ValueError(
                "The model's init does not produce the params of `variables`: "
                f"{'/'.join(map(str, missing[0])) if missing else 'extra parameters'} differ "
                f"(init gives layers {', '.join(sorted(fresh['params']))}).")
        params = jax.tree.unflatten(treedef, [drawn[_keys(path)] for path, _ in trained])
        return {**variables, "params": params}


def _collection(error: Exception) -> str:
    """The collection a flax scope error names."""
    found = re.search(r'collection "([^"]+)"', str(error))
    return found.group(1) if found else "?"


def _keys(path) -> tuple[Any, ...]:
    return tuple(getattr(k, "key", getattr(k, "name", k)) for k in path)
