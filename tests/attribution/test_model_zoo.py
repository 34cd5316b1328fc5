"""Models users bring, unmodified: NNX, linen with BatchNorm / Dropout and a `train` flag,
tuple outputs, standardized inputs, GELU mixes, bfloat16 parameters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import attribution
from attribution import layers, render, sanity
from attribution.model_kinds import kind_of
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

SHAPE = (28, 28, 1)
# Every method but CAM (the zoo CNN has a dense head, not global average pooling).
METHODS = [m for m in attribution.names() if m != "cam"]


@pytest.fixture(scope="module")
def pair(digits):
    """(NNX CNN, equivalent linen CNN, its variables, 6 real digits, their labels)."""
    model = build_nnx(NnxCNN, 0)
    randomize_statistics(model)
    images, labels = digits
    return model, LinenBnCNN(), linen_variables_from_nnx(model), images[:6], labels[:6]


def _relative(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def every_method_on_the_pair(pair):
    """Every method's maps on the NNX CNN and on its linen twin: each model's methods built as
    one function (`attribution.build_many`) and compiled as one program."""
    model, linen_model, linen_variables, images, labels = pair
    methods = {method: FAST_OPTIONS.get(method, {}) for method in METHODS}
    maps = []
    for net, variables in ((model, None), (linen_model, linen_variables)):
        kind = kind_of(net)
        variables = kind.default_variables() if variables is None else kind.variables_of(
            variables)
        fn = jax.jit(attribution.build_many(methods, net, variables, SHAPE))
        maps.append(jax.device_get(fn(variables, images, jnp.asarray(labels),
                                      jax.random.key(0))))
    return maps


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_nnx_maps_equal_the_equivalent_linen_models(every_method_on_the_pair, method):
    ours, reference = (maps[method] for maps in every_method_on_the_pair)
    assert float(np.abs(reference).max()) > 0
    assert _relative(ours, reference) < 1e-5


def test_explain_on_an_nnx_module_equals_the_linen_twin(pair):
    """`explain` takes the NNX module itself (variables None: its current state)."""
    model, linen_model, linen_variables, images, labels = pair
    ours = attribution.explain("integrated_gradients", model, None, images, labels, steps=4)
    reference = attribution.explain("integrated_gradients", linen_model, linen_variables,
                                    images, labels, steps=4)
    assert _relative(ours, reference) < 1e-5


def test_nnx_module_keeps_its_mode_and_state(pair):
    model, *_, images, labels = pair
    def host(state):
        return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(
            x.dtype, jax.dtypes.prng_key) else x) for x in jax.tree.leaves(state)]

    before = host(nnx.state(model))
    attribution.explain("gradient", model, nnx.state(model), images, labels)
    assert model.dropout1.deterministic is False and model.batch_norm1.use_running_average is False
    for a, b in zip(before, host(nnx.state(model)), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_gradients_of_batchnorm_models_are_the_eval_mode_logit_gradient(pair):
    model, linen_model, linen_variables, images, labels = pair

    def logit_sum(x):
        logits = linen_model.apply(linen_variables, x, train=False)
        return jnp.take_along_axis(logits, jnp.asarray(labels)[:, None], 1).sum()

    expected = jax.grad(logit_sum)(jnp.asarray(images))
    linen_maps = attribution.explain("gradient", linen_model, linen_variables, images, labels)
    np.testing.assert_allclose(linen_maps, expected, rtol=1e-5, atol=1e-7)
    evaluation = nnx.clone(model)
    evaluation.eval()
    graphdef, state = nnx.split(evaluation)

    def nnx_logit_sum(x):
        logits = nnx.merge(graphdef, state)(x)
        return jnp.take_along_axis(logits, jnp.asarray(labels)[:, None], 1).sum()

    nnx_maps = attribution.explain("gradient", model, None, images, labels)
    np.testing.assert_allclose(nnx_maps, jax.grad(nnx_logit_sum)(jnp.asarray(images)),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_nnx_layers_by_path_and_their_errors():
    model = build_nnx(NnxResNet, 1)
    images = jnp.asarray(np.random.default_rng(0).uniform(size=(3, 32, 32, 3)), jnp.float32)
    classifier = attribution.as_classifier(model, None, (32, 32, 3))
    shapes = layers.layer_output_shapes(classifier)
    assert list(shapes)[:4] == ["stem", "blocks/0/conv", "blocks/0/norm", "blocks/0"]
    maps = attribution.explain("grad_cam", model, None, images, layer="blocks/0/conv")
    assert maps.shape == images.shape and float(maps.max()) > 0
    # The CAM head check and Grad-CAM reach the last block through the NNX graph.
    cam = attribution.explain("cam", model, None, images, layer="blocks/1")
    grad_cam = attribution.explain("grad_cam", model, None, images, layer="blocks/1")
    assert np.corrcoef(np.maximum(cam, 0).ravel(), grad_cam.ravel())[0, 1] > 0.99
    with pytest.raises(ValueError, match="valid layers: stem, blocks/0/conv, blocks/0/norm"):
        attribution.build("grad_cam", model, None, (32, 32, 3), layer="conv9")


def test_linen_train_flag_and_collections_from_a_train_state(pair):
    _, linen_model, linen_variables, images, labels = pair
    from flax.training import train_state

    class TrainState(train_state.TrainState):
        batch_stats: dict

    import optax
    state = TrainState.create(apply_fn=linen_model.apply, params=linen_variables["params"],
                              batch_stats=linen_variables["batch_stats"], tx=optax.sgd(0.1))
    kind = kind_of(linen_model)
    assert kind.model_kwargs == {"train": False}
    variables = kind.variables_of(state)
    assert set(variables) == {"params", "batch_stats"}
    maps = attribution.explain("gradient", linen_model, variables, images, labels)
    np.testing.assert_array_equal(
        maps, attribution.explain("gradient", linen_model, linen_variables, images, labels))
    with pytest.raises(ValueError, match="reads collection 'batch_stats'.*lack"):
        attribution.build("gradient", linen_model, {"params": state.params}, SHAPE)


class AlwaysTrainingBN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.BatchNorm(use_running_average=False)(nn.Conv(4, (3, 3))(x))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


class NeedsMode(nn.Module):
    @nn.compact
    def __call__(self, x, mode):
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.mark.slow
def test_linen_models_that_cannot_run_in_eval_mode_fail_at_construction():
    variables = linen_init(AlwaysTrainingBN(), SHAPE)
    with pytest.raises(ValueError, match="writes collection 'batch_stats'.*model_kwargs"):
        attribution.build("gradient", AlwaysTrainingBN(), variables, SHAPE)
    variables = linen_init(NeedsMode(), SHAPE, mode=1)
    with pytest.raises(ValueError, match="model_kwargs.*takes: x, mode"):
        attribution.build("gradient", NeedsMode(), variables, SHAPE)
    fn = attribution.build("gradient", NeedsMode(), variables, SHAPE, model_kwargs={"mode": 1})
    images = jnp.ones((2, *SHAPE))
    kernel = variables["params"]["Dense_0"]["kernel"][:, 3].reshape(SHAPE)
    np.testing.assert_allclose(fn(variables, images, jnp.array([3, 3]), None)[0], kernel,
                               rtol=1e-6)


@pytest.mark.slow
def test_tuple_outputs_need_and_take_a_logits_option(digits):
    model = TupleOutput()
    variables = linen_init(model, SHAPE)
    images, labels = digits[0][:4], digits[1][:4]
    with pytest.raises(ValueError, match="tuple of 2.*logits"):
        attribution.build("gradient", model, variables, SHAPE)
    by_index = attribution.explain("gradient", model, variables, images, labels, logits=0)
    by_function = attribution.explain("gradient", model, variables, images, labels,
                                      logits=lambda out: out[0])
    expected = jax.grad(lambda x: jnp.take_along_axis(
        model.apply(variables, x)[0], jnp.asarray(labels)[:, None], 1).sum())(images)
    # Relative to the map's scale: the engine may sum a convolution's terms in another order
    # than this plain gradient (layouts; `_thin_convs` from 32 probes).
    np.testing.assert_allclose(by_index, expected, rtol=1e-6,
                               atol=1e-6 * float(jnp.abs(expected).max()))
    np.testing.assert_array_equal(by_index, by_function)
    with pytest.raises(ValueError, match="does not pick the logits"):
        attribution.build("gradient", model, variables, SHAPE, logits="logits")


@pytest.mark.slow
def test_preprocess_runs_inside_the_model_call(digits, trained_cnn):
    model, variables = trained_cnn
    images, labels = digits[0][:4], digits[1][:4]
    mean, std = 0.1307, 0.3081
    standardized = (images - mean) / std

    def standardized_model(v, x):  # A model trained on standardized digits, fed them.
        return model.apply(v, x * std + mean)

    with_preprocess = attribution.explain("integrated_gradients", standardized_model, variables,
                                          images, labels, preprocess=lambda x: (x - mean) / std,
                                          steps=8)
    direct = attribution.explain("integrated_gradients", model, variables, images, labels,
                                 steps=8)
    np.testing.assert_allclose(with_preprocess, direct, rtol=1e-4, atol=1e-6)
    low, high = render.display_range(standardized)
    assert (low, high) == (float(standardized.min()), float(standardized.max()))
    shown = render.digit_to_rgb(standardized, (low, high))
    np.testing.assert_array_equal(shown, render.digit_to_rgb(images))


def test_mixed_activations_warn_and_inapplicable_methods_list_the_applicable(digits):
    model = GeluReluNet()
    variables = linen_init(model, SHAPE)
    with pytest.warns(UserWarning, match=r"other activations \(gelu\) pass the plain"):
        attribution.build("guided_backprop", model, variables, SHAPE)
    mlp_apply = lambda v, x: x.reshape(x.shape[0], -1) @ v["w"]  # noqa: E731
    mlp_variables = {"w": jnp.ones((28 * 28, 10))}
    with pytest.raises(attribution.NotApplicableError,
                       match="Methods that apply to this model: blur_ig, deeplift, deeplift_shap, "
                             "feature_ablation, gradient, gradient_shap, gradient_x_input, "
                             "guided_ig, "
                             "integrated_gradients, kernel_shap, lime, lrp, occlusion, rise, "
                             "smoothgrad, vargrad, xrai"):
        attribution.build("grad_cam", mlp_apply, mlp_variables, SHAPE)


@pytest.mark.slow
def test_bfloat16_parameters(digits):
    model = build_nnx(NnxCNN, 0, dtype=jnp.bfloat16)
    images, labels = digits[0][:4], digits[1][:4]
    as_float32 = nnx.clone(model)
    nnx.update(as_float32, jax.tree.map(lambda p: p.astype(jnp.float32)
                                        if p.dtype == jnp.bfloat16 else p, nnx.state(model)))
    # Every method runs on bfloat16 weights (a residual net's) and this model goes through
    # both callbacks with one method of each family in
    # tests/callbacks/test_model_zoo_callbacks.py; here one of each family is compared with
    # float32.
    for method in ("gradient", "integrated_gradients", "guided_backprop", "grad_cam"):
        ours = np.asarray(attribution.explain(method, model, None, images, labels,
                                              **FAST_OPTIONS.get(method, {})))
        assert ours.dtype == np.float32 and np.isfinite(ours).all()
        reference = np.asarray(attribution.explain(method, as_float32, None, images, labels,
                                                   **FAST_OPTIONS.get(method, {})))
        # bfloat16 keeps 8 bits of mantissa: the maps agree as pictures, not to the digit.
        assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.95, method


@pytest.mark.slow
def test_nnx_parameter_randomization_uses_layer_initializers(pair):
    model, *_, images, labels = pair
    state = nnx.state(model)
    order = sanity.layer_order(state, model, SHAPE)
    assert order == ["conv1", "batch_norm1", "conv2", "batch_norm2", "linear1", "linear2"]
    classifier = attribution.as_classifier(model, None, SHAPE)
    fns = {"gradient": attribution.build("gradient", classifier, None, SHAPE)}
    check = sanity.make_randomization_check(fns, classifier, state, SHAPE, num_maps=0)
    # BatchNorm's scale / bias are ones / zeros at init: re-initializing changes nothing.
    assert check.layers == ("conv1", "conv2", "linear1", "linear2")
    everything = sanity.make_randomization_check(fns, classifier, state, SHAPE, num_maps=0,
                                                 keep_constant=False)
    assert everything.layers == tuple(order)
    fresh = sanity.randomize_layers(model, state, ["conv1"], seed=0, input_shape=SHAPE)
    kernel = np.asarray(fresh["conv1"]["kernel"][...])
    assert not np.allclose(kernel, state["conv1"]["kernel"][...])
    # lecun_normal, nnx.Conv's default: variance 1 / fan_in (9 inputs per output).
    assert abs(kernel.std() * 3.0 - 1.0) < 0.3
    np.testing.assert_array_equal(fresh["conv1"]["bias"][...], state["conv1"]["bias"][...])
    np.testing.assert_array_equal(fresh["batch_norm1"]["mean"][...],
                                  state["batch_norm1"]["mean"][...])
    scores = sanity.randomization_scores(fns, classifier, state, images, num_maps=0)
    assert scores.stage_names == ["linear2", "linear1", "conv2", "conv1"]
    assert scores.scores["gradient"]["spearman_abs"][-1] < 0.6


def test_nnx_input_invariance(pair):
    model, *_, images, labels = pair
    classifier = attribution.as_classifier(model, None, SHAPE)
    assert sanity.first_linear_layer(classifier) == "conv1"
    gradient = sanity.input_invariance("gradient", model, None, images, labels)
    times_input = sanity.input_invariance("gradient_x_input", model, None, images, labels)
    assert gradient.min() > 0.999 and times_input.mean() < 0.9


@pytest.mark.slow
def test_states_are_accepted_wherever_variables_are(pair):
    """The module, a TrainState or None stand for the variables in every entry point."""
    model, *_, images, labels = pair
    reference = attribution.explain("gradient", model, None, images, labels)
    for variables in (model, nnx.state(model)):
        np.testing.assert_array_equal(
            attribution.explain("gradient", model, variables, images, labels), reference)
    predicted = attribution.predicted_targets(model, None, images)
    np.testing.assert_array_equal(predicted, attribution.predicted_targets(model, model, images))
    fns = {"gradient": attribution.build("gradient", model, None, SHAPE)}
    scores = sanity.randomization_scores(fns, model, None, images, num_maps=0)
    assert len(scores.stage_names) == 4


@pytest.mark.slow
def test_grad_cam_at_the_compensated_first_layer_is_input_invariant(pair):
    """Hooks nest as linen's do on every kind: Grad-CAM sees the compensated first layer."""
    model, linen_model, linen_variables, images, labels = pair
    nnx_score = sanity.input_invariance("grad_cam", model, None, images, labels,
                                        options={"layer": "conv1"})
    linen_score = sanity.input_invariance("grad_cam", linen_model, linen_variables, images,
                                          labels, options={"layer": "conv1"})
    np.testing.assert_allclose(nnx_score, linen_score, atol=1e-5)
    assert nnx_score.min() > 0.999


class PlainListNet(nnx.Module):
    """Blocks in a plain list marked as data (`nnx.data`), not an `nnx.List`."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.blocks = nnx.data([nnx.Linear(28 * 28, 16, rngs=rngs), nnx.Linear(16, 10, rngs=rngs)])

    def __call__(self, x):
        return self.blocks[1](nnx.relu(self.blocks[0](x.reshape(x.shape[0], -1))))


def test_layers_in_plain_containers_and_frozen_linen_variables(trained_cnn):
    model = build_nnx(PlainListNet, 0)
    assert sanity.layer_order(None, model, SHAPE) == ["blocks/0", "blocks/1"]
    linen_model, variables = trained_cnn
    from flax.core import freeze
    frozen = freeze(variables)
    fresh = sanity.randomize_layers(linen_model, frozen, ["Dense_1"], seed=0, input_shape=SHAPE)
    plain = sanity.randomize_layers(linen_model, variables, ["Dense_1"], seed=0,
                                    input_shape=SHAPE)
    for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(plain), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(fresh["params"]["Dense_1"]["kernel"],
                              variables["params"]["Dense_1"]["kernel"])
