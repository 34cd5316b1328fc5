"""Watching (and changing) what a model's layers return, whatever the model's kind.

A hook sees every layer call while a model runs: `hook(call_next, layer) -> output`, where
`call_next()` runs the layer (and the hooks inside this one) and `layer` says which layer it
is. Hooks are global while their `intercept` context is open, like
`flax.linen.intercept_methods`, whose order they follow: the hook entered first runs
outermost, the one entered last next to the layer. So a plain function that calls a module
inside is watched too. Linen modules are reached through `flax.linen.intercept_methods`;
NNX and Keras layers through their adapters, which route each layer call of the model they
run through `run` while a hook is open.

A layer's public name is its path joined with "/": "Conv_1", "Block_0/Conv_1" (linen),
"conv1", "blocks/0/conv" (NNX; list indices are path parts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn


@dataclasses.dataclass(frozen=True)
class LayerCall:
    """One call of a layer, as a hook sees it.

    Attributes:
        path: The layer's path, e.g. `("Block_0", "Conv_1")` or `("blocks", "0", "conv")`.
        module: The module object being called.
        args: The positional arguments of the call (the layer's input first).
        linear: Whether the layer is affine in its input (Dense / Linear / Conv kinds).
        standalone: `standalone(*args) -> output`: the layer applied alone, with its current
            variables, to other inputs; no hook sees that call.
    """

    path: tuple[str, ...]
    module: Any
    args: tuple[Any, ...]
    linear: bool
    standalone: Callable[..., Any]

    @property
    def name(self) -> str:
        return "/".join(self.path)


Hook = Callable[[Callable[[], Any], LayerCall], Any]

_local = threading.local()


def _hooks() -> list[Hook]:
    if not hasattr(_local, "hooks"):
        _local.hooks = []
    return _local.hooks


def active() -> bool:
    """Whether any hook is open on this thread."""
    return bool(_hooks())


def run(layer: LayerCall, call: Callable[[], Any]) -> Any:
    """Runs `call` (the layer itself) through every open hook; the last entered is innermost,
    as in `flax.linen.intercept_methods`."""
    fun = call
    for hook in reversed(_hooks()):
        fun = (lambda h, f: lambda: h(f, layer))(hook, fun)
    return fun()


_LINEN_LINEAR = (nn.Dense, nn.DenseGeneral, nn.Conv, nn.ConvTranspose, nn.ConvLocal)


def _linen_interceptor(hook: Hook):
    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or not module.path:
            return next_fun(*args, **kwargs)

        def standalone(*inputs):
            # A parentless copy, so that the model's other hooks see one call of the layer.
            return module.clone(parent=None).apply(module.variables, *inputs, *args[1:],
                                                   **kwargs)

        layer = LayerCall(tuple(module.path), module, tuple(args),
                          isinstance(module, _LINEN_LINEAR), standalone)
        return hook(lambda: next_fun(*args, **kwargs), layer)

    return interceptor


@contextlib.contextmanager
def intercept(hook: Hook) -> Iterator[None]:
    """Opens `hook` on every layer call of any model run (traced) inside the context."""
    hooks = _hooks()
    hooks.append(hook)
    try:
        with nn.intercept_methods(_linen_interceptor(hook)):
            yield
    finally:
        assert hooks.pop() is hook
