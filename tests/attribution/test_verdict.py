"""The verdict table: each rule's pass / fail / n.a., and the markdown a person reads."""

import math

from attribution import verdict

RULES = (
    verdict.Rule("faithfulness", "faithfulness_correlation", "beats_random"),
    verdict.Rule("complexity", "complexity", "beats_random", higher_is_better=False),
    verdict.Rule("randomisation", "cascading_spearman_abs", "below", bound=0.5),
    verdict.Rule("axiomatic", "completeness", "below", bound=0.05),
)


def test_rules_judge_against_random_maps_and_bounds():
    faith, entropy, cascade, complete = RULES
    assert faith.judge(0.3, 0.01) == verdict.PASS and faith.judge(-0.1, 0.01) == verdict.FAIL
    assert entropy.judge(4.0, 6.4) == verdict.PASS and entropy.judge(6.5, 6.4) == verdict.FAIL
    assert faith.judge(0.3, None) == verdict.NOT_APPLICABLE
    assert cascade.judge(0.07) == verdict.PASS and cascade.judge(0.57) == verdict.FAIL
    assert complete.judge(None) == verdict.NOT_APPLICABLE
    assert complete.judge(math.nan) == verdict.NOT_APPLICABLE
    assert verdict.Rule("x", "s", "above", bound=1.0).judge(2.0) == verdict.PASS


def test_markdown_table_one_row_per_method():
    scores = {
        "gradient": {"faithfulness_correlation": 0.83, "complexity": 5.9,
                     "cascading_spearman_abs": 0.07},
        "guided_backprop": {"faithfulness_correlation": 0.79, "complexity": 5.8,
                            "cascading_spearman_abs": 0.57},
        "integrated_gradients": {"faithfulness_correlation": -0.2, "complexity": 6.6,
                                 "cascading_spearman_abs": 0.99, "completeness": 0.0009},
    }
    text = verdict.markdown(scores, {"faithfulness_correlation": 0.05, "complexity": 6.47},
                            RULES, title="Verdict at step 100")
    lines = text.splitlines()
    assert lines[0] == "**Verdict at step 100**"
    assert lines[2] == ("| method | faithfulness (faithfulness_correlation) | complexity "
                        "(complexity) | randomisation (cascading_spearman_abs) | axiomatic "
                        "(completeness) |")
    assert "| gradient | 0.83 pass | 5.9 pass | 0.07 pass | n.a. |" in lines
    assert "| guided_backprop | 0.79 pass | 5.8 pass | 0.57 fail | n.a. |" in lines
    assert "| integrated_gradients | -0.2 fail | 6.6 fail | 0.99 fail | 0.0009 pass |" in lines
    assert "Random maps: faithfulness_correlation 0.05, complexity 6.47" in text
