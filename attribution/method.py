"""What an attribution method is: a named factory plus the flags that say how to read its maps."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax

from attribution.classifier import Classifier

AttributionFn = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
"""`(variables, images [N, H, W, C] float32, targets int32 [N], key) -> maps [N, H, W, C]`.

Pure and jittable; explains the whole batch at once. Deterministic methods ignore `key`.
"""


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
    """

    name: str
    make: Callable[..., AttributionFn]
    signed: bool
    stochastic: bool
    completeness: bool

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
