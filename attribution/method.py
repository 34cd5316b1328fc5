"""What an attribution method is: a named factory plus the flags that say how to read its maps."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier

AttributionFn = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
"""`(variables, images [N, H, W, C] float32, targets int32 [N], key) -> maps [N, H, W, C]`.

Pure and jittable; explains the whole batch at once. Deterministic methods ignore `key`.
A stochastic method also takes one key per example (`[N]`) and draws example `n`'s randomness
from its key alone; a single key means `example_keys(key, N)`. So a slice of the batch with
the same slice of the keys gives the same slice of the maps: devices that each explain their
own probes reproduce the whole batch's maps.
"""


def example_keys(key: jax.Array, num_examples: int) -> jax.Array:
    """One PRNG key per example: `key` itself if it is already a batch of `num_examples` keys.

    Args:
        key: A typed key (`jax.random.key`) or a raw uint32 one (`jax.random.PRNGKey`), either
            one key or `num_examples` of them.
        num_examples: N.

    Returns:
        Typed keys `[N]`; from a single key, key `n` is `jax.random.fold_in(key, n)`.

    Raises:
        ValueError: If `key` is a batch of another size.
    """
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    if key.ndim == 0:
        return jax.vmap(lambda n: jax.random.fold_in(key, n))(jnp.arange(num_examples))
    if key.shape != (num_examples,):
        raise ValueError(f"key must be one PRNG key or one per example ({num_examples}); got "
                         f"keys of shape {key.shape}.")
    return key


FAMILIES = ("gradient", "propagation", "cam", "perturbation")


@dataclasses.dataclass(frozen=True)
class Method:
    """An attribution method as the registry holds it.

    Attributes:
        name: The registry name, equal to the module name in `attribution/methods/`.
        make: `make(classifier, *, <options>) -> AttributionFn`; validates the options and raises
            ValueError at construction. The options are exactly its keyword-only parameters.
        signed: Whether maps carry a sign (show with a diverging colormap) or are magnitudes.
        stochastic: Whether the maps depend on the PRNG key.
        completeness: Whether the map sums to f(x) - f(baseline) (e.g. integrated gradients).
        family: "gradient", "propagation" (modified backward passes), "cam" (maps from a
            layer's activations) or "perturbation" (forward passes on altered inputs): the
            named sets of `attribution.method_sets` are made of it.
    """

    name: str
    make: Callable[..., AttributionFn]
    signed: bool
    stochastic: bool
    completeness: bool
    family: str

    @property
    def defaults(self) -> dict[str, Any]:
        """The options `make` accepts, mapped to their default values."""
        params = inspect.signature(self.make).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raises ValueError if `options` names an option this method does not accept."""
        valid = self.defaults
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(
                f"Unknown option(s) {', '.join(map(repr, unknown))} for method {self.name!r}; "
                f"valid options: {', '.join(sorted(valid)) or '(none)'}."
            )

    def build(self, classifier: Classifier, **options: Any) -> AttributionFn:
        """Checks the option names, then returns `make(classifier, **options)` (not jitted)."""
        self.check_options(options)
        return self.make(classifier, **options)
