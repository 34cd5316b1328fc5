"""What an evaluation metric is: a named factory, its family and which way is better.

Metrics score attribution maps the way the evaluation toolkits do (Quantus' six families,
Captum's infidelity and sensitivity, PAIR's PIC), but as pure, jitted functions batched over
the probes. Every metric has one signature, whether it reads only the maps (complexity,
localisation, most of faithfulness) or explains again (robustness re-explains perturbed inputs,
the random-logit test another class):

    fn(variables, images [N, H, W, C], targets int32 [N], maps [N, H, W, C], explain, key)
        -> scores float32 [N]

`explain(variables, images, targets, key) -> maps` is the attribution method that made `maps`
(an `AttributionFn`). Random draws come from `key`, one key per example, so a probe's score
does not depend on the batch it is in.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax

from attribution.method import AttributionFn, Method

MetricFn = Callable[[Any, jax.Array, jax.Array, jax.Array, AttributionFn, jax.Array], jax.Array]

FAMILIES = ("faithfulness", "robustness", "randomisation", "complexity", "localisation",
            "axiomatic")


def always(method: Method) -> bool:
    """`Metric.applies_to` of metrics that apply to every method."""
    del method
    return True


@dataclasses.dataclass(frozen=True)
class Metric:
    """An evaluation metric as the registry holds it.

    Attributes:
        name: The registry name, equal to the module name in `attribution/metrics/`.
        make: `make(classifier, *, <options>) -> MetricFn`; validates the options and raises
            ValueError at construction.
        family: One of `FAMILIES`.
        higher_is_better: The direction of a better score.
        summary: One line for tables and docs: what the score is.
        applies_to: Whether the metric is defined for a method (completeness only for methods
            that promise it); the verdict shows "n.a." otherwise.
        explains: Whether it calls `explain` (robustness, the random-logit test): such a
            metric cannot score a map that no method made (the random maps of the verdict).
    """

    name: str
    make: Callable[..., MetricFn]
    family: str
    higher_is_better: bool
    summary: str
    applies_to: Callable[[Method], bool] = always
    explains: bool = False

    @property
    def defaults(self) -> dict[str, Any]:
        """The options `make` accepts, mapped to their default values."""
        params = inspect.signature(self.make).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raises ValueError if `options` names an option this metric does not accept."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(f"Unknown option(s) {unknown} for metric {self.name!r}; valid "
                             f"options: {valid}.")
