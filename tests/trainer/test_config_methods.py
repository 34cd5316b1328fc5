"""The config's method list: sets expand to the members that apply, each with its options."""

import pytest

from attribution import method_sets
from tests.trainer.test_train import CONFIG_DIR, load_config
from trainer import train


def test_a_set_in_the_config_expands_with_each_members_options():
    config = load_config(CONFIG_DIR / "cnn.py")
    config.attribution.methods = "gradient_family,cam_family"
    config.attribution.layer = "Conv_0"
    applies = [m for m in method_sets.members("all_applicable") if m != "cam"]
    methods = train.attribution_methods(config.attribution, lambda: applies)
    assert list(methods)[:len(method_sets.members("gradient_family"))] == (
        method_sets.members("gradient_family"))
    assert "cam" not in methods and "score_cam" in methods
    # The section's options reach the members: IG's steps, the layer of every CAM.
    assert methods["integrated_gradients"]["steps"] == config.attribution.options.\
        integrated_gradients.steps
    assert all(methods[m]["layer"] == "Conv_0" for m in methods if m.endswith("cam"))


def test_an_unknown_name_lists_methods_and_sets():
    config = load_config(CONFIG_DIR / "cnn.py")
    config.attribution.methods = "gradient,saliency_family"
    with pytest.raises(ValueError, match="valid methods: .*valid sets: gradient_family"):
        train.attribution_methods(config.attribution)
