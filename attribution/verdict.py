"""A verdict a person can read: one row per method, one cell per metric family, pass / fail.

Each family is judged by one headline score and a documented rule (`RULES`):
- "beats random": the method's score is better, in the metric's direction, than the same
  metric on maps of uniform noise (the SanityCallback's `random` maps). Used where no absolute
  bound is meaningful: faithfulness, complexity, localisation.
- "below" / "above" a bound: randomisation (the map after every layer is re-initialized must
  not resemble the trained one), robustness (relative change of the map under a small input
  perturbation), axioms (completeness gap).
A family whose headline score is missing (switched off, not yet run) or undefined for the
method (completeness of a method that does not promise it) reads "n.a.".

Pure functions of host floats: the SanityCallback writes `markdown(...)` as TensorBoard text,
`python -m trainer.verdict WORKDIR` prints it from a finished run's event files.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

PASS, FAIL, NOT_APPLICABLE = "pass", "fail", "n.a."
KINDS = ("beats_random", "below", "above")


@dataclasses.dataclass(frozen=True)
class Rule:
    """How a family's cell is judged.

    Attributes:
        family: The metric family (a column).
        score: The headline score's name (a metric name or a sanity score such as
            `cascading_spearman_abs`).
        kind: "beats_random", "below" or "above".
        bound: The bound of "below" / "above".
        higher_is_better: For "beats_random": the score's direction.
        reading: One line for the docs and the table's legend.
    """

    family: str
    score: str
    kind: str
    bound: float | None = None
    higher_is_better: bool = True
    reading: str = ""

    def judge(self, value: float | None, random_value: float | None = None) -> str:
        """PASS, FAIL or NOT_APPLICABLE for one method's headline score."""
        if value is None or not math.isfinite(value):
            return NOT_APPLICABLE
        if self.kind == "below":
            return PASS if value < self.bound else FAIL
        if self.kind == "above":
            return PASS if value > self.bound else FAIL
        if random_value is None or not math.isfinite(random_value):
            return NOT_APPLICABLE
        better = value > random_value if self.higher_is_better else value < random_value
        return PASS if better else FAIL


RULES = (
    Rule("faithfulness", "faithfulness_correlation", "beats_random", higher_is_better=True,
         reading="correlation of the attribution removed with the logit drop (Bhatt et al.) "
                 "above that of random maps"),
    Rule("robustness", "max_sensitivity", "below", bound=1.0,
         reading="largest relative change of the map under uniform noise of radius 0.1 "
                 "below 1 (the map changes by less than its own size)"),
    Rule("randomisation", "cascading_ssim", "below", bound=0.5,
         reading="SSIM of the map to the trained one after re-initializing every layer "
                 "below 0.5 (Adebayo et al.; SSIM rather than Spearman-abs, which the tied "
                 "black background of digits holds near 1 for any map that is 0 there)"),
    Rule("complexity", "sparseness", "beats_random", higher_is_better=True,
         reading="Gini index of the map above that of random maps"),
    Rule("localisation", "relevance_mass_accuracy", "beats_random", higher_is_better=True,
         reading="share of positive relevance on the digit's strokes above that of random "
                 "maps (a proxy: the strokes stand in for an object mask)"),
    Rule("axiomatic", "completeness", "below", bound=0.05,
         reading="relative completeness gap |sum(map) - (f(x) - f(baseline))| / |f(x) - "
                 "f(baseline)| below 5%, for methods that promise it"),
)


def table(scores: Mapping[str, Mapping[str, float]], random_scores: Mapping[str, float],
          rules: Sequence[Rule] = RULES) -> list[list[str]]:
    """Rows `[method, cell per rule]`, each cell "value verdict" or "n.a.".

    Args:
        scores: method -> score name -> the mean score over the probes.
        random_scores: score name -> the same metric on random maps.
        rules: One per column.
    """
    rows = []
    for method, values in scores.items():
        cells = [method]
        for rule in rules:
            value = values.get(rule.score)
            verdict = rule.judge(value, random_scores.get(rule.score))
            cells.append(verdict if verdict == NOT_APPLICABLE else f"{value:.3g} {verdict}")
        rows.append(cells)
    return rows


def markdown(scores: Mapping[str, Mapping[str, float]], random_scores: Mapping[str, float],
             rules: Sequence[Rule] = RULES, *, title: str = "") -> str:
    """The verdict as a markdown table with its legend (one line per family's rule)."""
    header = ["method", *(f"{r.family} ({r.score})" for r in rules)]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table(scores, random_scores, rules)]
    shown = {r.score: random_scores[r.score] for r in rules
             if r.kind == "beats_random" and r.score in random_scores}
    if shown:
        lines += ["", "Random maps: " + ", ".join(f"{k} {v:.3g}" for k, v in shown.items())]
    lines += ["", *(f"- {r.family}: {r.reading}." for r in rules)]
    return "\n".join(lines)
