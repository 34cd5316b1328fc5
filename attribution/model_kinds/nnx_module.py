"""Flax NNX modules: called through `nnx.split` / `nnx.merge`, in evaluation mode.

The engine keeps the graph of an evaluation-mode copy of the module (`nnx.clone` then
`.eval()`: BatchNorm on its running averages, Dropout off, no `rngs` needed) and merges it
with the variables of each call: the module's state without its RNG streams (`RngState`;
evaluation draws no random numbers), i.e. parameters, batch statistics and any other
variables. The user's module is never changed, and a state taken from it at any point in
training fits the same compiled code.

Layers are the module's submodules by attribute path ("conv1", "blocks/0/conv"). While an
interception hook is open, the merged copy's submodules are swapped for subclasses whose
`__call__` runs the hooks (`instrument`): the copy exists only inside this call, so nothing
the user holds changes.

NNX layers do not keep the initializers they were built with, so re-initialization draws each
parameter `p` of a layer with the default of its class's `p_init` argument (`kernel_init`,
`bias_init`, `scale_init`, ...); `initializers` overrides that per layer path and parameter.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
from flax import nnx

from attribution.model_kinds import interception
from attribution.model_kinds.base import ModelKind, fast_compiling_draws

_LINEAR = (nnx.Linear, nnx.LinearGeneral, nnx.Conv, nnx.ConvTranspose, nnx.Einsum)
_CONTAINERS = (nnx.List, nnx.Dict, nnx.Sequential)
# Containers whose items count as top-level layers: NNX's, and plain ones (`nnx.data([...])`).
_LAYER_CONTAINERS = (*_CONTAINERS, list, tuple, dict)


_NOT_RNG = nnx.Not(nnx.RngState)


def accepts(model: Any) -> bool:
    return isinstance(model, nnx.Module)


def _path(parts: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(p) for p in parts)


_local = threading.local()
_hooked_classes: dict[type, type] = {}
_hooked_classes_lock = threading.Lock()


def _hooked_class(cls: type) -> type:
    """A subclass of `cls` whose `__call__` runs the open hooks (one per class, cached)."""
    with _hooked_classes_lock:
        if cls not in _hooked_classes:
            _hooked_classes[cls] = _subclass(cls)
        return _hooked_classes[cls]


def _subclass(cls: type) -> type:
    base_call = cls.__call__

    def __call__(self, *args, **kwargs):
        path = getattr(_local, "paths", {}).get(id(self))
        if path is None:  # Not inside an instrumented call (or a copy made outside one).
            return base_call(self, *args, **kwargs)
        layer = interception.LayerCall(
            path, self, args, isinstance(self, _LINEAR),
            lambda *inputs: base_call(self, *inputs, *args[1:], **kwargs))
        return interception.run(layer, lambda: base_call(self, *args, **kwargs))

    return type(cls.__name__, (cls,), {"__call__": __call__, "__module__": cls.__module__})


def _defines_call(cls: type) -> bool:
    return any("__call__" in vars(c) for c in cls.__mro__ if c is not object)


@contextlib.contextmanager
def instrument(module: nnx.Module) -> Iterator[None]:
    """Routes the calls of `module`'s submodules through the open hooks (a merged copy only)."""
    paths = {}
    for parts, node in nnx.iter_graph(module):
        if (parts and isinstance(node, nnx.Module) and not isinstance(node, _CONTAINERS)
                and _defines_call(type(node))):
            object.__setattr__(node, "__class__", _hooked_class(type(node)))
            paths[id(node)] = _path(parts)
    previous = getattr(_local, "paths", None)
    _local.paths = {**(previous or {}), **paths}
    try:
        yield
    finally:
        _local.paths = previous or {}


class NnxKind(ModelKind):
    """An `nnx.Module`; variables are an `nnx.State` of the whole module."""

    name = "flax.nnx.Module"

    def __init__(self, model: nnx.Module, model_kwargs: Mapping[str, Any] | None = None,
                 initializers: Mapping[str, Mapping[str, Callable]] | None = None):
        self.model = model
        self.model_kwargs = dict(model_kwargs or {})
        self.initializers = {k: dict(v) for k, v in (initializers or {}).items()}

    @functools.cached_property
    def _split(self) -> tuple[Any, Any]:
        evaluation = nnx.clone(self.model)
        evaluation.eval()  # A copy: the user's module keeps its mode.
        graphdef, rng_state, _ = nnx.split(evaluation, nnx.RngState, ...)
        return graphdef, rng_state

    @property
    def graphdef(self) -> Any:
        return self._split[0]

    def merged(self, variables: Any) -> nnx.Module:
        return nnx.merge(self.graphdef, self._split[1], nnx.filter_state(variables, _NOT_RNG))

    def apply(self, variables: Any, images: jax.Array) -> Any:
        module = self.merged(variables)
        if not interception.active():
            return module(images, **self.model_kwargs)
        with instrument(module):
            return module(images, **self.model_kwargs)

    def default_variables(self) -> Any:
        return nnx.state(self.model, _NOT_RNG)

    def variables_of(self, state: Any) -> Any:
        if isinstance(state, nnx.Module):
            return nnx.state(state, _NOT_RNG)
        if isinstance(state, nnx.State):
            return nnx.filter_state(state, _NOT_RNG)
        if isinstance(state, Mapping) and any(isinstance(v, nnx.State) for v in state.values()):
            # A dict of states, e.g. {"params": ..., "batch_stats": ...}.
            parts = [v for v in state.values() if isinstance(v, nnx.State)]
            return nnx.filter_state(nnx.merge_state(*parts), _NOT_RNG)
        params = getattr(state, "params", None)
        if isinstance(params, nnx.State):
            # A TrainState holding the parameters and, in other fields, the rest of the state
            # (batch statistics).
            fields = getattr(state, "__dataclass_fields__", None) or {}
            # Other parameter states (an EMA of the weights) are not this model's variables.
            rest = [getattr(state, f) for f in fields
                    if f != "params" and isinstance(getattr(state, f), nnx.State)
                    and not nnx.filter_state(getattr(state, f), nnx.Param)]
            return nnx.filter_state(nnx.merge_state(params, *rest) if rest else params,
                                    _NOT_RNG)
        raise TypeError(
            f"Cannot find the NNX model's variables in {type(state).__name__}: pass the "
            "nnx.Module itself, nnx.state(module), a dict of nnx.State, or a TrainState whose "
            "params (and other fields, e.g. batch statistics) are nnx.State.")

    def check(self, variables: Any, input_shape: tuple[int, int, int]) -> None:
        want = jax.tree.structure(self.default_variables())
        if not isinstance(variables, nnx.State) or jax.tree.structure(
                nnx.filter_state(variables, _NOT_RNG)) != want:
            have = sorted({type(v).__name__ for v in jax.tree.leaves(
                variables, is_leaf=lambda x: isinstance(x, nnx.Variable))})
            raise ValueError(
                "The variables do not fit the NNX model: pass the module, nnx.state(module) "
                f"or a TrainState holding its parameters and batch statistics (got variables "
                f"of types: {', '.join(have) or 'none'}).")

    # Parameter randomization ---------------------------------------------------------------

    @functools.cached_property
    def _plan(self) -> tuple[tuple[tuple[Any, ...], str, Callable, int], ...]:
        """(graph path, layer, initializer, salt) of every parameter inside a layer.

        Layers are the top-level submodules holding parameters; the items of a list or dict
        container count as top-level ("blocks/0").
        """
        nodes = dict(nnx.iter_graph(self.merged(self.default_variables())))

        def top_level(parts):
            return (isinstance(nodes[parts], nnx.Module)
                    and not isinstance(nodes[parts], _CONTAINERS)
                    and all(isinstance(nodes[parts[:i]], _LAYER_CONTAINERS)
                            for i in range(1, len(parts))))

        layers = [p for p in nodes if p and top_level(p)]
        plan = []
        for parts, node in nodes.items():
            if not isinstance(node, nnx.Param):
                continue
            layer = next((p for p in layers if parts[:len(p)] == p), None)
            if layer is None:
                continue  # A parameter of the root module itself: not a layer's.
            name = "/".join(_path(layer))
            init = self._initializer(name, nodes[parts[:-1]], str(parts[-1]))
            salt = zlib.crc32("/".join(_path(parts)).encode()) & 0x7FFFFFFF
            plan.append((parts, name, init, salt))
        return tuple(plan)

    def parameter_layers(self, variables: Any) -> list[str | None]:
        owner = {_path(parts): layer for parts, layer, _, _ in self._plan}
        layers = []
        for keypath, _ in jax.tree_util.tree_flatten_with_path(variables)[0]:
            parts = _path(tuple(k.key for k in keypath if hasattr(k, "key")))
            layers.append(owner.get(parts))
        return layers

    def _initializer(self, layer: str, module: nnx.Module, param: str) -> Callable:
        custom = self.initializers.get(layer, {}).get(param)
        if custom is not None:
            return custom
        arg = inspect.signature(type(module).__init__).parameters.get(f"{param}_init")
        if arg is None or arg.default is inspect.Parameter.empty:
            raise ValueError(
                f"Cannot re-initialize NNX parameter {layer}/{param}: its layer class "
                f"{type(module).__name__} has no `{param}_init` argument with a default; pass "
                f"initializers={{{layer!r}: {{{param!r}: init}}}}.")
        return arg.default

    def fresh_variables(self, variables: Any, key: jax.Array,
                        input_shape: tuple[int, int, int]) -> Any:
        del input_shape
        plan = tuple((parts, init, salt) for parts, _, init, salt in self._plan)
        with fast_compiling_draws():
            return _draw(self.graphdef, plan, self._split[1], variables, key)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _draw(graphdef, plan, rng_state, variables, key):
    # Jitted: unjitted, each parameter shape compiles its own random draw (seconds on CPU).
    module = nnx.merge(graphdef, rng_state, variables)
    nodes = dict(nnx.iter_graph(module))
    for parts, init, salt in plan:
        param = nodes[parts]
        value = param.get_value()
        param.set_value(init(jax.random.fold_in(key, salt), value.shape, value.dtype))
    return nnx.state(module, _NOT_RNG)
