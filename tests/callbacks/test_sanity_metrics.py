"""The SanityCallback's metric families: which run at which firing, and bad choices."""

import pytest

from callbacks.sanity_metrics import DEFAULT_METRICS, MetricFamilies


def test_families_run_every_nth_firing_starting_with_the_nth():
    families = MetricFamilies(["sparseness", "max_sensitivity", "pointing_game"],
                              every={"robustness": 2, "localisation": 0})
    assert set(families.families) == {"complexity", "robustness"}  # 0: switched off
    assert [families.due(k) for k in range(4)] == [
        ["complexity"], ["robustness", "complexity"], ["complexity"],
        ["robustness", "complexity"]]


def test_a_family_stands_for_its_metrics_and_options_reach_them():
    families = MetricFamilies({"localisation": {}, "max_sensitivity": {"num_samples": 3}})
    assert families.options == {"pointing_game": {}, "relevance_mass_accuracy": {},
                                "relevance_rank_accuracy": {},
                                "max_sensitivity": {"num_samples": 3}}
    assert list(MetricFamilies().options) == list(DEFAULT_METRICS)


@pytest.mark.parametrize("chosen, every, message", [
    (["sparse"], None, "Unknown metric 'sparse'; valid metrics"),
    ({"complexity": {"bins": 3}}, None, "The family 'complexity' takes no options"),
    ({"sparseness": {"abs": True}}, None, "Unknown option"),
    (["sparseness"], {"speed": 1}, "Unknown metric family 'speed'"),
    (["sparseness"], {"complexity": -1}, "must be an int >= 0"),
    ("sparseness", None, "a list of names or a mapping"),
])
def test_bad_choices_fail_before_training(chosen, every, message):
    with pytest.raises(ValueError, match=message):
        MetricFamilies(chosen, every)
