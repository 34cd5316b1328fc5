"""Batched, jitted attribution methods for JAX/Flax image classifiers.

Every method explains the logit of a target class. Methods live one per file in
`attribution/methods/` and are found by name:

    import attribution
    attribution.names()  # ["cam", "gradient", "integrated_gradients", ...]
    maps = attribution.explain("integrated_gradients", model, variables, images, labels)
"""

from attribution.api import (
    applicable_methods,
    build,
    build_many,
    explain,
    predicted_targets,
)
from attribution.classifier import Classifier, NotApplicableError, as_classifier
from attribution.method import AttributionFn, Method, example_keys
from attribution.registry import get, names

__all__ = [
    "AttributionFn",
    "Classifier",
    "Method",
    "NotApplicableError",
    "applicable_methods",
    "as_classifier",
    "build",
    "build_many",
    "example_keys",
    "explain",
    "get",
    "names",
    "predicted_targets",
]
