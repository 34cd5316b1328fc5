"""Both callbacks, end to end with a real TensorBoardWriter, on every model of the zoo.

Each model goes through methods of every family, or every method that applies to it
(AttributionCallback; see ZOO), and the sanity checks (SanityCallback), with the `state` its
own training loop would hand the hooks; the event files are read back as TensorBoard reads
them.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from flax.training import train_state
from tensorboard.backend.event_processing import event_accumulator

import attribution
from callbacks import AttributionCallback, SanityCallback, TensorBoardWriter, select_probes
from tests.attribution._zoo import (
    FAST_OPTIONS,
    GeluReluNet,
    LinenBnCNN,
    NnxCNN,
    NnxResNet,
    TupleOutput,
    build_nnx,
    linen_init,
    linen_variables_from_nnx,
    randomize_statistics,
)
from tests.callbacks.test_attribution_callback import read_events

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.


class BatchStatsState(train_state.TrainState):
    """The Flax ImageNet example's TrainState."""

    batch_stats: dict


def _nnx_cnn(dtype=jnp.float32):
    model = build_nnx(NnxCNN, 0, dtype=dtype)
    randomize_statistics(model)
    return model


def _linen_bn():
    variables = linen_variables_from_nnx(_nnx_cnn())
    state = BatchStatsState.create(apply_fn=LinenBnCNN().apply, params=variables["params"],
                                   batch_stats=variables["batch_stats"], tx=optax.sgd(0.1))
    return LinenBnCNN(), state


def _colour(images):
    """Digits as 32x32 RGB images, standardized per channel as CIFAR pipelines do."""
    rgb = np.pad(np.repeat(images, 3, axis=-1), ((0, 0), (2, 2), (2, 2), (0, 0)))
    rgb = rgb * np.array([1.0, 0.8, 0.6], np.float32)
    return ((rgb - rgb.mean((0, 1, 2))) / rgb.std((0, 1, 2))).astype(np.float32)


# Every method's maps on the first two models are compared, NNX against linen, in
# tests/attribution/test_model_zoo.py; here their loops' states go through the callbacks with
# methods of every family and rule. So do the tuple output's (the logits are picked once, in
# the classifier every method calls), the GELU mix's (the family decides how a method treats
# a GELU) and the bfloat16 CNN's. The residual net, its weights in bfloat16, takes every
# method that applies: each method's own arithmetic meets the residual adds and the bfloat16
# weights in one program (one compile of every method instead of two).
EACH_FAMILY = ["gradient", "integrated_gradients", "smoothgrad", "xrai", "guided_backprop",
               "deeplift", "lrp", "grad_cam", "score_cam", "occlusion", "kernel_shap"]

# name -> (model, the state its loop would pass, model options, colour probes?, methods or
# None for every method that applies). DeepLIFT and LRP refuse a GELU at build (tested in
# their own modules).
ZOO = {
    "nnx_mnist_example": lambda: (_nnx_cnn(), None, {}, False, EACH_FAMILY),
    "linen_batchnorm_train_flag": lambda: (*_linen_bn(), {}, False, EACH_FAMILY),
    "nnx_resnet_bfloat16_standardized_colour": lambda: (
        build_nnx(NnxResNet, 2, dtype=jnp.bfloat16), None, {}, True, None),
    "tuple_output": lambda: (TupleOutput(), linen_init(TupleOutput(), (28, 28, 1)),
                             {"logits": 0}, False, EACH_FAMILY),
    "gelu_relu_mix": lambda: (GeluReluNet(), linen_init(GeluReluNet(), (28, 28, 1)), {}, False,
                              [m for m in EACH_FAMILY if m not in ("deeplift", "lrp")]),
    "bfloat16_params": lambda: (_nnx_cnn(jnp.bfloat16), None, {}, False, EACH_FAMILY),
}


def _scalar_values(logdir):
    import glob
    import os
    values = {}
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        acc = event_accumulator.EventAccumulator(path, size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            values.setdefault(tag, {}).update((e.step, e.value) for e in acc.Scalars(tag))
    return values


@pytest.mark.parametrize("name", list(ZOO))
def test_both_callbacks_on_the_zoo(name, mnist, tmp_path):
    model, state, options, colour, chosen = ZOO[name]()
    idx = select_probes(mnist.eval_labels, per_class=1)
    images, labels = mnist.eval_images[idx], mnist.eval_labels[idx]
    if colour:
        images = _colour(images)
    state = model if state is None else state  # An NNX loop hands over its module.
    shape = images.shape[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # The GELU mix warns about guided backprop (tested).
        methods = chosen or attribution.applicable_methods(model, AttributionCallback(
            model, images, labels, None, ["gradient"], **options).variables_of(state), shape,
            **options)
        writer = TensorBoardWriter(tmp_path)
        explain = AttributionCallback(model, images, labels, writer,
                                      {m: FAST_OPTIONS.get(m, {}) for m in methods},
                                      schedule="epochs:1", **options)
        sane = SanityCallback(model, images, labels, writer, ["gradient"], num_probes=1,
                              schedule="epochs:1", independent=False, faithfulness_steps=2,
                              **options)
        for callback in (explain, sane):
            callback.on_train_begin(state)
    if isinstance(model, nnx.Module):  # Training moves the weights; the callbacks follow.
        nnx.update(model, jax.tree.map(lambda p: p * 1.01, nnx.state(model, nnx.Param)))
        later = nnx.state(model)  # The hooks take the state as well as the module.
    else:
        later = jax.tree.map(lambda p: p * 1.01, state)
    for callback in (explain, sane):
        callback.on_train_batch_end(1, later)
        callback.on_epoch_end(1, later, None)
        callback.on_train_end(later)

    assert len(methods) >= 6 and "gradient" in methods
    image_steps, scalar_steps = read_events(tmp_path)
    # More methods than one grid holds: the overview is split by family.
    overviews = [t for t in image_steps if t.startswith("attributions/overview")]
    assert len(overviews) == (1 if len(methods) <= 12 else len(
        {attribution.get(m).family for m in methods}))
    assert all(image_steps[t] == [0, 1] for t in overviews)
    for method in methods:
        assert image_steps[f"methods/{method}"] == [0, 1], method
        assert image_steps[f"evolution/{method}"] == [0, 1], method
    assert scalar_steps["sanity/gradient/cascading_spearman_abs"] == [1]
    assert scalar_steps["sanity/gradient/input_invariance"] == [1]
    # The logged probe accuracy is the model's own on the probes (evaluation mode).
    classifier = attribution.as_classifier(model, explain.variables_of(later), shape, **options)
    predicted = np.asarray(classifier.predicted_targets(classifier.variables, images))
    assert _scalar_values(tmp_path)["probes/accuracy"][1] == pytest.approx(
        float((predicted == labels).mean()))
    # The gradient the callback drew is the eval-mode logit gradient.
    maps = explain.fire(2, later)["gradient"]
    expected = jax.grad(lambda x: jnp.take_along_axis(
        classifier.logits(classifier.variables, x), jnp.asarray(labels)[:, None], 1).sum())(
        jnp.asarray(images))
    np.testing.assert_allclose(maps, expected, rtol=2e-5, atol=1e-6 * np.abs(expected).max())
    explain.wait()
