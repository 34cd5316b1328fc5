"""Named method sets: families, expansion in order, and only what applies to the model."""

import pytest

import attribution
from attribution import method_sets
from tests.attribution._zoo import linen_init
from trainer.models import CNN, CNNGAP

FAMILY_SETS = ["gradient_family", "propagation", "cam_family", "perturbation"]


def test_every_method_is_in_exactly_one_family_set():
    seen = [m for s in FAMILY_SETS for m in method_sets.members(s)]
    assert sorted(seen) == attribution.names()
    assert method_sets.members("all_applicable") == attribution.names()
    assert {"cam", "grad_cam", "score_cam"} <= set(method_sets.members("cam_family"))
    assert {"lrp", "deeplift", "guided_backprop"} <= set(method_sets.members("propagation"))


def test_expansion_keeps_order_and_drops_repeats():
    expanded = method_sets.expand(["grad_cam", "cam_family", "gradient", "grad_cam"])
    assert expanded[0] == "grad_cam" and expanded[-1] == "gradient"
    assert expanded.count("grad_cam") == 1
    assert expanded[1:-1] == [m for m in method_sets.members("cam_family") if m != "grad_cam"]


def _applicable(model, shape=(28, 28, 1)):
    variables = linen_init(model, shape)
    return lambda: attribution.applicable_methods(model, variables, shape)


@pytest.mark.slow
def test_sets_keep_only_the_members_that_apply():
    # No global-average-pool head: CAM does not apply, the rest of its family does.
    cnn = method_sets.expand(["cam_family"], _applicable(CNN(features=(4, 8), dense=16)))
    assert "cam" not in cnn and "grad_cam" in cnn and "score_cam" in cnn
    gap = method_sets.expand(["cam_family"], _applicable(CNNGAP(features=(4, 8))))
    assert gap == method_sets.members("cam_family")
    everything = method_sets.expand(["all_applicable"], _applicable(CNN(features=(4, 8),
                                                                        dense=16)))
    assert everything == [m for m in attribution.names() if m != "cam"]


def test_unknown_names_list_the_methods_and_the_sets():
    with pytest.raises(ValueError, match="'cam_famly'.*valid sets: gradient_family, "
                                         "propagation, cam_family, perturbation, all_applicable"):
        method_sets.expand(["cam_famly"])
