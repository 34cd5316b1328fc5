"""Keras 3 (JAX backend): both callbacks in `model.fit`, Grad-CAM by layer name,
re-initialization by each layer's own initializers."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import attribution  # noqa: E402
from attribution import sanity  # noqa: E402
from callbacks import TensorBoardWriter, select_probes  # noqa: E402
from callbacks.keras import KerasAttributionCallback, KerasSanityCallback  # noqa: E402
from tests.callbacks.test_attribution_callback import read_events  # noqa: E402

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.

SHAPE = (28, 28, 1)


def keras_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input(SHAPE),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv_a"),
        keras.layers.BatchNormalization(name="norm"),
        keras.layers.AveragePooling2D(2),
        keras.layers.Conv2D(16, 3, activation="relu", name="conv_b"),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(10, name="head"),
    ])


def test_fit_with_both_callbacks(mnist, tmp_path):
    model = keras_cnn()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    idx = select_probes(mnist.eval_labels, per_class=1)
    probes, labels = mnist.eval_images[idx], mnist.eval_labels[idx]
    writer = TensorBoardWriter(tmp_path)
    methods = {"gradient": {}, "guided_backprop": {}, "grad_cam": {"layer": "conv_a"},
               "integrated_gradients": {"steps": 8}}
    explain = KerasAttributionCallback(probes, labels, writer, methods=methods)
    sane = KerasSanityCallback(probes, labels, writer, methods=["gradient"], num_probes=2,
                               schedule="epochs:1", faithfulness_steps=4)
    model.fit(mnist.train_images[:512], mnist.train_labels[:512], batch_size=64, epochs=2,
              verbose=0, callbacks=[explain, sane])
    explain.wait()

    images, scalars = read_events(tmp_path)
    # 8 steps per epoch: the log-spaced default fires at global steps 0 (the untrained
    # model), 1, 2, 4, then at the epoch ends 8 and 16; the sanity checks at the epoch ends.
    for name in methods:
        assert images[f"methods/{name}"] == [0, 1, 2, 4, 8, 16]
    assert images["evolution/gradient"] == [0, 1, 2, 4, 8, 16]
    assert scalars["sanity/gradient/cascading_spearman_abs"] == [8, 16]
    # Keras layers by name; BatchNormalization (ones / zeros initializers) is no stage.
    for layer in ("conv_a", "conv_b", "head"):
        assert scalars[f"sanity/gradient/independent_ssim/{layer}"] == [8, 16]
    assert not any("norm" in tag for tag in scalars)
    # The maps are those of the trained model in inference mode.
    maps = explain.callback.fire(17, model)["gradient"]
    logits = lambda x: model(x, training=False)  # noqa: E731
    expected = jax.grad(lambda x: jnp.take_along_axis(
        logits(x), jnp.asarray(labels)[:, None], 1).sum())(jnp.asarray(probes))
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    explain.wait()


def test_keras_layers_and_reinitialization():
    model = keras_cnn()
    kind = attribution.model_kinds.kind_of(model)
    variables = kind.default_variables()
    assert sanity.layer_order(variables, model, SHAPE) == ["conv_a", "norm", "conv_b", "head"]
    fresh = sanity.randomize_layers(model, variables, ["conv_a"], seed=0, input_shape=SHAPE)
    kernel = np.asarray(fresh[0][0])
    assert not np.allclose(kernel, variables[0][0])
    # Conv2D's own initializer, glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
    limit = np.sqrt(6 / (9 * 1 + 9 * 8))
    assert np.abs(kernel).max() <= limit and abs(kernel.std() - limit / np.sqrt(3)) < 0.2 * limit
    np.testing.assert_array_equal(fresh[0][1], variables[0][1])  # zero bias: kept
    np.testing.assert_array_equal(fresh[1][0], variables[1][0])  # moving mean: never drawn
    with pytest.raises(ValueError, match="valid layers: conv_a, norm, .*conv_b"):
        attribution.build("grad_cam", model, None, SHAPE, layer="conv_z")


def test_keras_input_invariance_with_fused_activations(mnist):
    """Conv2D(activation="relu") is compensated before its activation: gradient invariant."""
    model = keras_cnn()
    images, labels = mnist.eval_images[:4], mnist.eval_labels[:4]
    gradient = sanity.input_invariance("gradient", model, None, images, labels)
    times_input = sanity.input_invariance("gradient_x_input", model, None, images, labels)
    assert gradient.min() > 0.999 and times_input.mean() < 0.9
