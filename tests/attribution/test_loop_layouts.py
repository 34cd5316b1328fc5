"""Convolutions inside loops are bound in XLA:CPU's canonical layout (`_conv_layout`).

XLA canonicalizes conv layouts only at a program's top level; an input gradient's transposed
convs left in a `scan` / `while` body run as a generic loop nest (2-3x slower steps). Every
loop that evaluates a method's gradient must go through `canonical_convs`.
"""

import jax
import jax.numpy as jnp
import numpy as np

import attribution
import attribution.metrics
from attribution._jaxpr_interpreter import sub_jaxprs
from attribution.sanity.randomization import make_randomization_check
from trainer import models

SHAPE = (28, 28, 1)
CANONICAL = ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # NHWC, HWIO, NHWC
LOOPS = ("scan", "while")


def _loop_convs(fn, *args) -> tuple[int, int]:
    """(canonical, other) counts of the convolutions inside loop bodies of `fn`'s program."""
    counts = [0, 0]

    def walk(jaxpr, in_loop):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "conv_general_dilated" and in_loop:
                numbers = eqn.params["dimension_numbers"]
                specs = (tuple(numbers.lhs_spec), tuple(numbers.rhs_spec),
                         tuple(numbers.out_spec))
                counts[specs != CANONICAL] += 1
            for sub, _ in sub_jaxprs(eqn.params):
                walk(sub, in_loop or eqn.primitive.name in LOOPS)

    walk(jax.make_jaxpr(fn)(*args).jaxpr, False)
    return counts[0], counts[1]


def _cnn():
    model = models.create_model("cnn")
    variables = {"params": model.init(jax.random.key(0), jnp.zeros((1, *SHAPE)))["params"]}
    images = jnp.asarray(np.random.default_rng(0).uniform(size=(4, *SHAPE)), jnp.float32)
    return model, variables, images, jnp.arange(4, dtype=jnp.int32)


def test_guided_ig_steps_take_their_gradient_in_the_canonical_layout():
    model, variables, images, targets = _cnn()
    fn = attribution.build("guided_ig", model, variables, SHAPE, steps=3)
    canonical, other = _loop_convs(fn, variables, images, targets, jax.random.key(0))
    assert canonical >= 4 and other == 0  # The forward pass and the gradient, each step.


def test_sanity_stage_loop_binds_every_method_in_the_canonical_layout():
    model, variables, images, _ = _cnn()
    fns = {name: attribution.build(name, model, variables, SHAPE)
           for name in ("gradient", "guided_backprop", "integrated_gradients")}
    check = make_randomization_check(fns, model, variables, SHAPE, mode="cascading")
    canonical, other = _loop_convs(check.run, variables, check.random_variables, images,
                                   jax.random.key(0))
    assert canonical >= 12 and other == 0


def test_robustness_metric_re_explains_in_the_canonical_layout():
    model, variables, images, targets = _cnn()
    explain = attribution.build("gradient", model, variables, SHAPE)
    classifier = attribution.as_classifier(model, variables, SHAPE)
    metric = attribution.metrics.build("max_sensitivity", classifier, num_samples=2)

    def score(variables, images, targets, key):
        maps = explain(variables, images, targets, key)
        return metric(variables, images, targets, maps, explain, key)

    canonical, other = _loop_convs(score, variables, images, targets, jax.random.key(0))
    assert canonical >= 4 and other == 0
