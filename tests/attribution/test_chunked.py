"""Chunked evaluation sums, canonical conv layouts, thin convolutions, and IG's path rules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from attribution._chunked import (
    LANES_VARIABLE,
    _single_pass_layout,
    count_convolutions,
    evaluation_sum,
    pass_layout,
    split_batch,
)
from attribution._conv_layout import canonical_convs
from attribution._thin_convs import thin_conv
from attribution.methods.integrated_gradients import path_points
from tests.attribution._models import TinyReluNet, random_variables
from tests.attribution._zoo import linen_init
from trainer import models


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 7, 15, 40])
def test_evaluation_sum_matches_a_double_loop(chunk_size):
    """15 evaluations in chunks that split a point's examples, straddle points, need padding
    (8 x 2, 4 x 4), or hold all."""
    num_points, num_examples = 3, 5
    values = np.random.default_rng(0).standard_normal((num_points, num_examples, 2))

    def fn(points, examples):
        return jnp.asarray(values, jnp.float32)[points, examples] * (1.0 + points[:, None])

    total = jax.jit(lambda: evaluation_sum(fn, num_points, num_examples, chunk_size))()
    expected = sum(values[p] * (1.0 + p) for p in range(num_points))
    np.testing.assert_allclose(total, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("forward_only", [False, True])
@pytest.mark.parametrize("method", ["gradient_x_input", "guided_backprop"])
def test_split_batch_keeps_every_map(method, forward_only, monkeypatch):
    monkeypatch.setenv(LANES_VARIABLE, "2")  # forward_only then changes the layout.
    shape = (6, 5, 2)
    model = TinyReluNet()
    variables = random_variables(model, shape, seed=5)
    images = jnp.asarray(np.random.default_rng(6).uniform(size=(5, *shape)), jnp.float32)
    args = (variables, images, jnp.array([0, 3, 1, 2, 2]), jax.random.key(0))
    fn = attribution.build(method, model, variables, shape)
    whole = jax.jit(fn)(*args)
    for chunk_size in (1, 2, 5, None):  # 5 chunks, 3 of 2 with one padding, no split, default.
        split = split_batch(fn, chunk_size, forward_only=forward_only)
        np.testing.assert_allclose(jax.jit(split)(*args), whole, rtol=1e-6, atol=1e-7)


# Lanes are how a pass is cut on the CPU; accelerators run one lane of up to 4,096 images.
cpu_lanes = pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU pass layout")


@cpu_lanes
@pytest.mark.parametrize("probes, layout", [(20, (1, 1, 20)), (32, (1, 1, 33)), (64, (1, 1, 65)),
                                            (100, (1, 1, 100)), (256, (2, 1, 128))])
def test_forward_passes_run_one_lane_off_the_slow_sizes(probes, layout, monkeypatch):
    monkeypatch.setenv(LANES_VARIABLE, "2")
    assert _single_pass_layout(probes, None, forward_only=True) == layout
    assert _single_pass_layout(probes, None, forward_only=False)[1] == 2  # Input gradients.


@cpu_lanes
def test_a_padded_forward_pass_keeps_every_map():
    """32 probes run as one pass of 33 (the last one repeated): the same maps."""
    shape = (6, 5, 2)
    model = TinyReluNet()
    variables = random_variables(model, shape, seed=5)
    images = jnp.asarray(np.random.default_rng(7).uniform(size=(32, *shape)), jnp.float32)
    args = (variables, images, jnp.arange(32) % 4, jax.random.key(0))
    fn = attribution.build("gradient_x_input", model, variables, shape)
    np.testing.assert_allclose(jax.jit(split_batch(fn, forward_only=True))(*args),
                               jax.jit(fn)(*args), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
@cpu_lanes
def test_layer_maps_whose_gradient_crosses_no_convolution_run_in_one_lane(monkeypatch):
    monkeypatch.setenv(LANES_VARIABLE, "2")  # As on a 2-core machine.
    model = models.create_model("cnn")
    variables = linen_init(model, (28, 28, 1))
    assert count_convolutions(model.apply, variables, jnp.zeros((1, 28, 28, 1))) == 2

    def convolutions(method, layer, probes):
        args = (variables, jax.ShapeDtypeStruct((probes, 28, 28, 1), jnp.float32),
                jax.ShapeDtypeStruct((probes,), jnp.int32), jax.random.key(0))
        return count_convolutions(attribution.build(method, model, variables, (28, 28, 1),
                                                    layer=layer), *args)

    # At the last conv layer the program is the forward pass: one lane (at 256 probes two
    # passes of 128, one loop body; at 32 one pass of 33), so its two convolutions appear once.
    assert convolutions("grad_cam", "Conv_1", 256) == convolutions("layer_cam", "Conv_1", 256) == 2
    assert convolutions("grad_cam", "Conv_1", 32) == 2
    # At the first, the gradient crosses Conv_1 (one more convolution): two lanes of 16. The
    # first layer's (one input feature) is then shifted products (`_thin_convs`).
    assert convolutions("grad_cam", "Conv_0", 256) == 2 * 2
    # An input gradient from 32 probes on: both of the first layer's convolutions (forward, and
    # back to one feature) as shifted products; below, XLA's four.
    gradient = [count_convolutions(attribution.build("gradient", model, variables, (28, 28, 1)),
                                   variables, jax.ShapeDtypeStruct((n, 28, 28, 1), jnp.float32),
                                   jax.ShapeDtypeStruct((n,), jnp.int32), jax.random.key(0))
                for n in (16, 32)]
    assert gradient == [2 * 4, 2 * 2]


def _conv(x, w, specs):
    return jax.lax.conv_general_dilated(x, w, (2, 1), [(1, 0), (0, 1)], rhs_dilation=(1, 2),
                                        dimension_numbers=specs)


@pytest.mark.parametrize("specs", [("NHWC", "HWOI", "NHWC"), ("NCHW", "OIHW", "NCHW"),
                                   ("NHWC", "HWIO", "NCHW")])
def test_canonical_convs_keep_values_and_use_the_canonical_layout(specs):
    rng = np.random.default_rng(1)
    lhs_shape = {"NHWC": (2, 7, 6, 3), "NCHW": (2, 3, 7, 6)}[specs[0]]
    rhs_shape = {"HWOI": (3, 2, 4, 3), "OIHW": (4, 3, 3, 2), "HWIO": (3, 2, 3, 4)}[specs[1]]
    x = jnp.asarray(rng.standard_normal(lhs_shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal(rhs_shape), jnp.float32)

    def f(x, w):
        return jax.jit(_conv, static_argnums=2)(x, w, specs)  # Nested jit: inlined.

    rewritten = canonical_convs(f)
    np.testing.assert_allclose(rewritten(x, w), f(x, w), rtol=1e-5, atol=1e-5)
    convs = [e for e in jax.make_jaxpr(rewritten)(x, w).eqns
             if e.primitive.name == "conv_general_dilated"]
    assert len(convs) == 1
    lhs, rhs, out = convs[0].params["dimension_numbers"]
    assert (tuple(lhs), tuple(rhs), tuple(out)) == ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))


def test_canonical_convs_keep_an_input_gradient_inside_scan():
    model = TinyReluNet()
    variables = random_variables(model, (6, 5, 2), seed=0)
    x = jnp.asarray(np.random.default_rng(2).uniform(size=(3, 6, 5, 2)), jnp.float32)

    def grad(x):
        return jax.grad(lambda x: model.apply(variables, x)[:, 1].sum())(x)

    def run(body):
        return jax.lax.scan(lambda c, s: (c + body(s * x), None), jnp.zeros_like(x),
                            jnp.linspace(0.5, 1.0, 4))[0]

    run = jax.jit(run, static_argnums=0)
    np.testing.assert_allclose(run(canonical_convs(grad)), run(grad),
                               rtol=1e-5, atol=1e-6)


def _thin(specs, lhs_shape, rhs_shape, dtype=jnp.float32, **conv):
    """A conv with one input or output feature, its value through `thin_conv`, and the lax one."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal(lhs_shape), dtype)
    w = jnp.asarray(rng.standard_normal(rhs_shape), dtype)
    spatial = len(lhs_shape) - 2
    conv = {"window_strides": (1,) * spatial, "padding": "SAME", **conv}

    def f(x, w):
        return jax.lax.conv_general_dilated(x, w, dimension_numbers=specs, **conv)

    eqn = jax.make_jaxpr(f)(x, w).eqns[-1]
    return thin_conv(eqn, x, w), f(x, w)


@pytest.mark.parametrize("specs, lhs_shape, rhs_shape, padding", [
    (("NHWC", "HWIO", "NHWC"), (2, 7, 6, 1), (3, 3, 1, 4), "SAME"),  # One input feature.
    (("NHWC", "HWIO", "NHWC"), (2, 7, 6, 5), (3, 3, 5, 1), "SAME"),  # One output feature.
    (("NCHW", "OIHW", "NCHW"), (2, 1, 7, 6), (4, 1, 2, 3), "VALID"),
    (("NCHW", "OIHW", "NHWC"), (2, 5, 7, 6), (1, 5, 3, 2), [(2, 0), (1, 3)]),
    (("NHWC", "HWOI", "NHWC"), (3, 8, 8, 6), (5, 5, 1, 6), [(-1, 2), (2, -1)]),  # Cropping.
])
def test_thin_convolutions_equal_the_convolution(specs, lhs_shape, rhs_shape, padding):
    rewritten, expected = _thin(specs, lhs_shape, rhs_shape, padding=padding)
    assert rewritten is not None
    np.testing.assert_allclose(rewritten, expected, rtol=1e-5, atol=1e-5)


NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("specs, lhs_shape, rhs_shape, options", [
    (NHWC, (2, 7, 6, 2), (3, 3, 2, 4), {}),  # Two features in, four out.
    (NHWC, (2, 7, 6, 1), (3, 3, 1, 4), {"window_strides": (2, 1)}),
    (NHWC, (2, 7, 6, 1), (3, 3, 1, 4), {"rhs_dilation": (1, 2)}),
    (NHWC, (2, 7, 6, 1), (3, 3, 1, 4), {"lhs_dilation": (2, 2), "padding": [(1, 1), (1, 1)]}),
    (NHWC, (2, 7, 6, 2), (3, 3, 1, 2), {"feature_group_count": 2}),  # Depthwise, one per group.
    (NHWC, (2, 7, 6, 1), (3, 3, 1, 2), {"batch_group_count": 2}),  # As in weight gradients.
    (NHWC, (2, 9, 9, 1), (8, 7, 1, 4), {}),  # 56 taps: more than MAX_TAPS.
    (NHWC, (2, 7, 6, 1), (3, 3, 1, 4), {"dtype": jnp.bfloat16}),
    (("NWC", "WIO", "NWC"), (2, 7, 1), (3, 1, 4), {}),  # 1-D.
])
def test_other_convolutions_are_left_to_xla(specs, lhs_shape, rhs_shape, options):
    assert _thin(specs, lhs_shape, rhs_shape, **options)[0] is None


@pytest.mark.slow
@cpu_lanes
def test_an_input_gradient_runs_its_thin_convolutions_as_shifted_products():
    """The CNN's input gradient crosses the first conv twice (forward, and back to one input
    feature): both become shifted products, with the gradient's values."""
    model = models.create_model("cnn")
    variables = linen_init(model, (28, 28, 1))
    x = jnp.asarray(np.random.default_rng(4).uniform(size=(3, 28, 28, 1)), jnp.float32)

    def grad(x):
        return jax.grad(lambda x: model.apply(variables, x)[:, 2].sum())(x)

    rewritten = canonical_convs(grad, thin=True)
    assert count_convolutions(grad, x) == 4  # Two forward, two input gradients.
    assert count_convolutions(rewritten, x) == 2
    assert count_convolutions(canonical_convs(grad), x) == 4
    expected = jax.jit(grad)(x)
    np.testing.assert_allclose(jax.jit(rewritten)(x), expected, rtol=1e-5,
                               atol=1e-6 * float(jnp.abs(expected).max()))


@pytest.mark.slow
@cpu_lanes
def test_gradient_maps_through_thin_convolutions_equal_the_plain_gradient(digits):
    """40 digits through the CNN in passes of 16 (a loop, padded) or one pass: its first
    layer as shifted products both ways, the gradient's values."""
    model = models.create_model("cnn")
    variables = linen_init(model, (28, 28, 1))
    images, labels = jnp.asarray(digits[0][:40]), jnp.asarray(digits[1][:40])

    def plain(x):
        return jnp.take_along_axis(model.apply(variables, x), labels[:, None], 1).sum()

    expected = jax.jit(jax.grad(plain))(images)
    scale = float(jnp.abs(expected).max())
    for chunk_size in (16, 40):
        fn = split_batch(lambda v, x, t, k: jax.grad(
            lambda x: jnp.take_along_axis(model.apply(v, x), t[:, None], 1).sum())(x),
            chunk_size)
        maps = jax.jit(fn)(variables, images, labels, jax.random.key(0))
        np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.slow
def test_linspace_rule_is_the_mean_over_both_ends_of_the_path():
    shape = (6, 5, 2)
    model = TinyReluNet()
    variables = random_variables(model, shape, seed=3)
    images = jnp.asarray(np.random.default_rng(4).uniform(size=(2, *shape)), jnp.float32)
    targets = jnp.array([2, 0])
    np.testing.assert_allclose(path_points(5, "linspace"), [0, 0.25, 0.5, 0.75, 1])
    maps = attribution.explain("integrated_gradients", model, variables, images, targets,
                               steps=5, rule="linspace", chunk_size=3)

    def grad(x):
        return jax.grad(lambda x: model.apply(variables, x)[jnp.arange(2), targets].sum())(x)

    expected = images * sum(grad(a * images) for a in (0, 0.25, 0.5, 0.75, 1)) / 5
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("options", "message"), [({"rule": "trapezoid"}, "midpoint, linspace"),
                                                  ({"chunk_size": 0}, "chunk_size")])
def test_bad_path_options_raise(options, message):
    with pytest.raises(ValueError, match=message):
        attribution.build("integrated_gradients", TinyReluNet(),
                          random_variables(TinyReluNet(), (6, 5, 2), seed=0), (6, 5, 2), **options)


LANE_METHODS = {"gradient": {}, "guided_backprop": {}, "grad_cam": {"layer": "Conv_0"},
                "integrated_gradients": {"steps": 3, "chunk_size": 4},
                "smoothgrad": {"num_samples": 3, "chunk_size": 4}}


def _lane_maps(model, variables, images, labels):
    """Every LANE_METHODS map, built and traced afresh (the lane count is read when a method
    is traced), as one program."""
    fn = jax.jit(attribution.build_many(LANE_METHODS, model, variables, (28, 28, 1)))
    return jax.device_get(fn(variables, images, labels, jax.random.key(0)))


@pytest.fixture(scope="module")
def one_lane(digits):
    """(model, variables, images, labels, their maps in one lane), built once for the module."""
    model = models.create_model("cnn")
    variables = linen_init(model, (28, 28, 1))
    images, labels = jnp.asarray(digits[0][:10]), jnp.asarray(digits[1][:10], jnp.int32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LANES_VARIABLE, "1")
        return model, variables, images, labels, _lane_maps(model, variables, images, labels)


@pytest.mark.slow
@cpu_lanes
@pytest.mark.parametrize("lanes", ["2", "3"])
def test_maps_do_not_depend_on_the_lanes(lanes, monkeypatch, one_lane):
    """The suite runs one lane (tests/conftest.py); users' machines one per core."""
    *args, reference = one_lane
    monkeypatch.setenv(LANES_VARIABLE, lanes)
    assert pass_layout(10, 4)[1] == min(int(lanes), 4)
    for name, several in _lane_maps(*args).items():
        np.testing.assert_allclose(several, reference[name], rtol=1e-5, atol=1e-6, err_msg=name)


@cpu_lanes
@pytest.mark.parametrize("value", ["0", "two", "-1", "9", "\u00b2"])
def test_bad_lane_counts_name_the_variable(value, monkeypatch):
    monkeypatch.setenv(LANES_VARIABLE, value)
    with pytest.raises(ValueError, match="ATTRIBUTION_CPU_LANES=.*from 1 to 8"):
        pass_layout(10, 4)
