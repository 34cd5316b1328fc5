"""Layer-wise relevance propagation rules and composites, as data.

A rule redistributes the relevance R of a layer's outputs z = W a + b onto its inputs a. Every
rule here has the form zennit's `BasicHook` gives them: a few terms k, each a modified input
a_k, modified weights W_k and bias b_k, with outputs z_k = W_k a_k + b_k;

    R_a = sum_k c_k a_k * W_k^T (m_k R / stabilize(d_k)),   d_k = sum_{j in group(k)} s_j z_j,

where c_k is the term's coefficient, s_j its sign in its group's denominator and m_k an
optional mask on the unmodified output z. `stabilize(d) = d + eps sign(d)` (sign(0) = +1).

Weight modifiers act on the layer's effective weights: a layer followed by elementwise affine
operations (its bias, a BatchNorm in evaluation mode) is one affine layer z = s * (W a) + t,
BatchNorm folded in as zennit's canonizers do. Composites assign rules by layer kind ("conv",
"dense") and position (the first layer), as zennit's EpsilonPlusFlat, EpsilonGammaBox and
EpsilonAlpha2Beta1 do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

WEIGHT_MODIFIERS = ("identity", "positive", "negative", "gamma_positive", "gamma_negative",
                    "ones", "square")
BIAS_MODIFIERS = ("identity", "positive", "negative", "gamma_positive", "gamma_negative", "zero",
                  "square")
INPUT_MODIFIERS = ("identity", "positive", "negative", "ones", "low", "high")
MASKS = (None, "positive_output", "negative_output")


@dataclasses.dataclass(frozen=True)
class Term:
    """One modified copy of the layer (see the module docstring)."""

    inputs: str = "identity"
    weights: str = "identity"
    bias: str = "identity"
    coefficient: float = 1.0
    group: int = 0
    sign: float = 1.0  # In its group's denominator.
    mask: str | None = None  # Where the unmodified output is > 0 or < 0 only.


@dataclasses.dataclass(frozen=True)
class Rule:
    """A relevance rule for layers with weights: its terms and its stabilizer epsilon."""

    name: str
    terms: tuple[Term, ...]
    epsilon: float = 1e-6
    gamma: float = 0.0  # For the gamma modifiers.


def epsilon(eps: float = 1e-6) -> Rule:
    """LRP-epsilon (Bach et al. 2015); eps = 0 is LRP-0."""
    return Rule("epsilon" if eps else "zero", (Term(),), eps)


def gamma(value: float = 0.25, eps: float = 1e-6) -> Rule:
    """Generalized LRP-gamma (Montavon et al. 2019; Andeol et al. 2021), as zennit's `Gamma`."""
    return Rule("gamma", (
        Term("positive", "gamma_positive", "gamma_positive", group=0, mask="positive_output"),
        Term("negative", "gamma_negative", "zero", group=0, mask="positive_output"),
        Term("positive", "gamma_negative", "gamma_negative", group=1, mask="negative_output"),
        Term("negative", "gamma_positive", "zero", group=1, mask="negative_output"),
    ), eps, value)


def alpha_beta(alpha: float, beta: float, eps: float = 1e-6) -> Rule:
    """LRP-alpha-beta (Bach et al. 2015), as zennit's `AlphaBeta` (alpha - beta = 1)."""
    terms = (
        Term("positive", "positive", "positive", alpha, group=0),
        Term("negative", "negative", "zero", alpha, group=0),
        Term("positive", "negative", "negative", -beta, group=1),
        Term("negative", "positive", "zero", -beta, group=1),
    )
    # beta = 0 (z+): the negative terms' relevance is multiplied by zero; skip computing it.
    return Rule(f"alpha{alpha:g}_beta{beta:g}", tuple(t for t in terms if t.coefficient), eps)


def flat(eps: float = 1e-6) -> Rule:
    """LRP-flat (Lapuschkin et al. 2019): every input of a unit gets an equal share."""
    return Rule("flat", (Term("ones", "ones", "zero"),), eps)


def w_square(eps: float = 1e-6) -> Rule:
    """LRP-w^2 (Montavon et al. 2017): shares in proportion to the squared weights."""
    return Rule("w_square", (Term("ones", "square", "square"),), eps)


def z_box(eps: float = 1e-6) -> Rule:
    """LRP-z^B (Montavon et al. 2017) for inputs bounded by `low` and `high`."""
    return Rule("z_box", (
        Term("identity", "identity", "identity", 1.0, sign=1.0),
        Term("low", "positive", "positive", -1.0, sign=-1.0),
        Term("high", "negative", "negative", -1.0, sign=-1.0),
    ), eps)


@dataclasses.dataclass(frozen=True)
class Composite:
    """Rules by layer kind ("conv", "dense"), with optional overrides for the first layer."""

    name: str
    layers: Mapping[str, Rule]
    first: Mapping[str, Rule] = dataclasses.field(default_factory=dict)

    def rule_for(self, kind: str, is_first: bool) -> Rule:
        if is_first and kind in self.first:
            return self.first[kind]
        return self.layers[kind]


def composite(name: str, *, eps: float = 1e-6, gamma_value: float = 0.25,
              stabilizer: float = 1e-6) -> Composite:
    """One of zennit's composites by its registered name.

    Raises:
        ValueError: For an unknown name (the message lists the valid ones).
    """
    dense = epsilon(eps)
    if name == "epsilon_plus_flat":
        plus = alpha_beta(1.0, 0.0, stabilizer)
        return Composite(name, {"conv": plus, "dense": dense},
                         {"conv": flat(stabilizer), "dense": flat(stabilizer)})
    if name == "epsilon_gamma_box":
        return Composite(name, {"conv": gamma(gamma_value, stabilizer), "dense": dense},
                         {"conv": z_box(stabilizer)})
    if name == "epsilon_alpha2_beta1":
        return Composite(name, {"conv": alpha_beta(2.0, 1.0, stabilizer), "dense": dense})
    raise ValueError(f"Unknown composite {name!r}; valid composites: {', '.join(COMPOSITES)}.")


COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1")


def uniform(name: str, *, eps: float, gamma_value: float, stabilizer: float = 1e-6
            ) -> Composite:
    """One rule for every layer with weights, by name.

    Raises:
        ValueError: For an unknown name (the message lists the valid ones).
    """
    rules = {"zero": lambda: epsilon(0.0), "epsilon": lambda: epsilon(eps),
             "gamma": lambda: gamma(gamma_value, stabilizer),
             "alpha1_beta0": lambda: alpha_beta(1.0, 0.0, stabilizer),
             "alpha2_beta1": lambda: alpha_beta(2.0, 1.0, stabilizer)}
    if name not in rules:
        raise ValueError(f"Unknown rule {name!r}; valid rules: {', '.join(rules)}.")
    rule = rules[name]()
    return Composite(name, {"conv": rule, "dense": rule})


RULES = ("zero", "epsilon", "gamma", "alpha1_beta0", "alpha2_beta1")
