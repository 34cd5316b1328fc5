"""Layer-wise relevance propagation.

Bach, Binder, Montavon, Klauschen, Müller & Samek, "On Pixel-Wise Explanations for Non-Linear
Classifier Decisions by Layer-Wise Relevance Propagation", PLOS ONE 2015; the rules and
composites of Montavon, Binder, Lapuschkin, Samek & Müller, "Layer-Wise Relevance Propagation:
An Overview", 2019, as zennit (Anders et al. 2021) names and defines them.

The target logit's value is sent back as relevance through the unmodified model, each dense or
conv layer (its bias and a following BatchNorm folded in) redistributing it by its rule
(`attribution.relevance_backward`, `attribution.lrp_rules`). Either a composite assigns rules by
layer kind and position, or one `rule` serves every layer:

- composite "epsilon_plus_flat": flat for the first layer, z+ (alpha1_beta0) for convs, epsilon
  for dense layers; "epsilon_gamma_box": z-box for the first (conv) layer, gamma for convs,
  epsilon for dense layers; "epsilon_alpha2_beta1": alpha2_beta1 for convs, epsilon for dense;
- rule "zero" (LRP-0: gradient x input on a ReLU network without biases), "epsilon", "gamma",
  "alpha1_beta0" (z+), "alpha2_beta1".

Sums and average pooling get the Norm rule, ReLUs pass relevance on, max pooling routes it to
the maximum. A model with other nonlinearities is refused at construction, naming the
operation.

Options:
    composite: One of the composites above; ignored when `rule` is given.
    rule: One rule for every layer with weights, or None (use `composite`).
    first_rule: "flat", "w_square" or "z_box" for the first layer, overriding the composite's
        (None: the composite's own).
    epsilon: The epsilon rule's stabilizer (also the dense layers' in composites).
    gamma: The gamma rule's weight on the positive (negative) parts.
    low, high: The z-box bounds of the first layer's input (after the model's `preprocess`):
        scalars or arrays broadcastable to one image.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution import lrp_rules
from attribution._checks import image_like
from attribution._chunked import split_batch
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.relevance_backward import relevance_apply

FIRST_RULES = {"flat": lrp_rules.flat, "w_square": lrp_rules.w_square, "z_box": lrp_rules.z_box}


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number >= 0; got {value!r}.")
    return float(value)


def _rules(composite: str, rule: str | None, first_rule: str | None, epsilon: float,
           gamma: float) -> lrp_rules.Composite:
    if rule is not None:
        chosen = lrp_rules.uniform(rule, eps=epsilon, gamma_value=gamma)
    else:
        chosen = lrp_rules.composite(composite, eps=epsilon, gamma_value=gamma)
    if first_rule is None:
        return chosen
    if first_rule not in FIRST_RULES:
        raise ValueError(f"Unknown first_rule {first_rule!r}; valid: "
                         f"{', '.join(FIRST_RULES)} or None.")
    override = FIRST_RULES[first_rule]()
    return lrp_rules.Composite(chosen.name, chosen.layers, {"conv": override, "dense": override})


def make(classifier: Classifier, *, composite: str = "epsilon_plus_flat",
         rule: str | None = None, first_rule: str | None = None, epsilon: float = 1e-6,
         gamma: float = 0.25, low: ArrayLike = 0.0, high: ArrayLike = 1.0) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For an unknown composite, rule or first_rule, a negative epsilon or gamma,
            bounds that do not broadcast to one image, or a model with an operation no rule
            covers (named).
    """
    rules = _rules(composite, rule, first_rule, _non_negative(epsilon, "epsilon"),
                   _non_negative(gamma, "gamma"))
    low_image = image_like(low, classifier.input_shape, "low")
    high_image = image_like(high, classifier.input_shape, "high")
    apply = relevance_apply(classifier.apply_fn, rules, low_image, high_image)
    probe = jax.ShapeDtypeStruct((1, *classifier.input_shape), jnp.float32)
    jax.eval_shape(apply, classifier.variables, probe)  # Unsupported operations fail here.

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        logits, backward = jax.vjp(lambda x: apply(variables, x), images)
        start = jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype) * logits
        return backward(jax.lax.stop_gradient(start))[0].astype(jnp.float32)

    return split_batch(attribute)


METHOD = Method(name="lrp", make=make, signed=True, stochastic=False, completeness=False,
                family="propagation")
