"""AttributionCallback: compiles once, logs every tag for every firing, fails early."""

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import attribution
from callbacks import AttributionCallback, TensorBoardWriter, select_probes
from trainer import models, steps


def read_events(logdir):
    """(image tags -> steps, scalar tags -> steps) as TensorBoard's loader sees them."""
    images, scalars = {}, {}
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        acc = event_accumulator.EventAccumulator(path, size_guidance={"images": 0, "scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["images"]:
            images.setdefault(tag, []).extend(e.step for e in acc.Images(tag))
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.step for e in acc.Scalars(tag))
    return images, scalars


@pytest.fixture(scope="module")
def gap_model():
    model = models.create_model("cnn_gap", features=(8, 16))
    tx = steps.make_optimizer("sgd", 0.05)
    state = steps.create_train_state(model, jax.random.PRNGKey(1), (28, 28, 1), tx)
    return model, state


@pytest.fixture(scope="module")
def probes(mnist):
    idx = select_probes(mnist.eval_labels, per_class=1)
    return mnist.eval_images[idx], mnist.eval_labels[idx]


class _CompileCounter:
    """Counts XLA compilations through jax.monitoring while active."""

    count = 0
    active = False

    def __call__(self, event, duration, **kwargs):
        if self.active and event == "/jax/core/compile/backend_compile_duration":
            self.count += 1


_COUNTER = _CompileCounter()
jax.monitoring.register_event_duration_secs_listener(_COUNTER)


@pytest.mark.slow
@pytest.mark.parametrize("per_method_timing", [False, True])
def test_compiles_once_across_firings_with_new_params(gap_model, probes, mnist, tmp_path,
                                                      per_method_timing):
    model, state = gap_model
    methods = ["gradient", "integrated_gradients", "smoothgrad", "guided_backprop", "grad_cam",
               "cam"]
    writer = TensorBoardWriter(str(tmp_path))
    callback = AttributionCallback(model, *probes, writer, schedule="epochs:1", methods={
        m: ({"steps": 4} if m == "integrated_gradients" else
            {"num_samples": 2} if m == "smoothgrad" else {}) for m in methods},
        per_method_timing=per_method_timing)
    _COUNTER.count, _COUNTER.active = 0, True
    callback.on_train_begin(state)  # compiles, then fires step 0
    compiled_at_begin = _COUNTER.count
    images, labels = mnist.train_images[:32], mnist.train_labels[:32]
    state = jax.tree.map(jnp.array, state)  # train_step donates; keep the fixture's intact
    for epoch in (1, 2, 3):
        state, _ = steps.train_step(state, images, labels)  # new params every firing
        _COUNTER.count = 0
        callback.on_train_batch_end(epoch, state)
        callback.on_epoch_end(epoch, state, None)
        assert _COUNTER.count == 0, f"firing {epoch} compiled {_COUNTER.count} times"
    _COUNTER.active = False
    callback.on_train_end(state)
    writer.close()
    # All at on_train_begin: every method and the probes' prediction in one program, or one
    # program each; and the drift program.
    programs = [*methods, "_predict"] if per_method_timing else ["_firing"]
    assert sorted(callback._compiled) == sorted([*programs, "_drift"])
    assert compiled_at_begin >= len(programs) + 1
    assert len(callback.timings) == 4 and all(t > 0 for t in callback.timings)
    if per_method_timing:
        assert [sorted(t) for t in callback.method_timings] == [sorted(methods)] * 4
        # Each firing's whole time holds its methods' times.
        assert all(total >= sum(t.values()) for total, t in
                   zip(callback.timings, callback.method_timings, strict=True))
    else:
        assert callback.method_timings == []


@pytest.mark.slow
@pytest.mark.parametrize("targets", ["label", "predicted"])
def test_one_program_equals_one_program_per_method(gap_model, probes, tmp_path, targets):
    """The same maps and probe scores (the probabilities, and so the predicted targets)
    whether the methods share one program or not; only the per-method timing tags differ."""
    from tests.callbacks.test_sanity_callback import scalar_values

    model, state = gap_model
    methods = {"gradient": {}, "smoothgrad": {"num_samples": 3}, "grad_cam": {},
               "occlusion": {"window": 7, "stride": 7}}
    maps, scalars, values = {}, {}, {}
    for per_method in (False, True):
        logdir = tmp_path / str(per_method)
        writer = TensorBoardWriter(str(logdir))
        callback = AttributionCallback(model, *probes, writer, methods=methods, targets=targets,
                                       schedule="never", per_method_timing=per_method)
        callback.compile({"params": state.params})
        maps[per_method] = callback.fire(0, state)
        callback.wait()
        writer.close()
        scalars[per_method] = read_events(logdir)[1]
        values[per_method] = scalar_values(logdir, 0)
    for name in methods:
        reference = maps[True][name]
        np.testing.assert_allclose(maps[False][name], reference, rtol=1e-5,
                                   atol=1e-6 * np.abs(reference).max())
        assert f"timing/attribution_ms/{name}" not in scalars[False]
        assert scalars[True][f"timing/attribution_ms/{name}"] == [0]
    assert scalars[False]["timing/attribution_ms"] == scalars[True]["timing/attribution_ms"] == [0]
    for tag in ("probes/confidence", "probes/accuracy", "probes/true_class_probability"):
        assert values[False][tag] == pytest.approx(values[True][tag], abs=1e-6), tag
    with pytest.raises(ValueError, match="per_method_timing must be True or False; got 'yes'"):
        AttributionCallback(model, *probes, None, per_method_timing="yes")


@pytest.mark.slow
def test_every_tag_for_every_firing(gap_model, probes, tmp_path):
    model, state = gap_model
    methods = {"gradient": {}, "integrated_gradients": {"steps": 4}, "grad_cam": {}, "cam": {}}
    writer = TensorBoardWriter(str(tmp_path))
    callback = AttributionCallback(model, *probes, writer, methods=methods,
                                   schedule="epochs:2", targets="predicted")
    callback.on_train_begin(state)
    for epoch in range(1, 5):  # 3 steps per epoch: epoch ends at global steps 3, 6, 9, 12
        callback.on_epoch_begin(epoch, state)
        for step in range(3 * epoch - 2, 3 * epoch + 1):
            callback.on_train_batch_end(step, state)
        callback.on_epoch_end(epoch, state, {"eval_accuracy": 0.1})
    callback.on_train_end(state)
    writer.close()
    images, scalars = read_events(tmp_path)
    for name in methods:
        assert images[f"methods/{name}"] == [0, 6, 12]
        assert images[f"evolution/{name}"] == [0, 6, 12]
        assert scalars[f"drift/{name}/to_previous"] == [6, 12]
    assert images["attributions/overview"] == [0, 6, 12]
    assert images["drift/curves"] == [6, 12]
    assert scalars["timing/attribution_ms"] == [0, 6, 12]
    for tag in ("probes/confidence", "probes/accuracy", "probes/true_class_probability"):
        assert scalars[tag] == [0, 6, 12]


@pytest.mark.slow
def test_evolution_image_has_a_column_per_firing(gap_model, probes, tmp_path):
    model, state = gap_model
    writer = TensorBoardWriter(str(tmp_path))
    callback = AttributionCallback(model, *probes, writer, methods=["gradient"],
                                   schedule="epochs:1")
    callback.on_train_begin(state)
    callback.on_train_batch_end(1, state)
    callback.on_epoch_end(1, state, None)
    callback.wait()
    one = callback._evolution_images()["evolution/gradient"]
    callback.on_train_batch_end(2, state)
    callback.on_epoch_end(2, state, None)
    callback.wait()
    two = callback._evolution_images()["evolution/gradient"]
    writer.close()
    cell_width = 28 * 2 + 2  # scale 2, pad 2
    assert one.dtype == np.uint8 and one.shape[0] > len(probes[1]) * cell_width
    assert two.shape[1] - one.shape[1] == cell_width  # One more column (the legend below
    # wraps its caption to the width, so the heights may differ by a line).


def test_step_schedule_uses_global_steps(gap_model, probes, tmp_path):
    model, state = gap_model
    writer = TensorBoardWriter(str(tmp_path))
    callback = AttributionCallback(model, *probes, writer, methods=["gradient"],
                                   schedule="steps:3", at_start=False)
    callback.on_train_begin(state)
    for step in range(1, 8):
        callback.on_train_batch_end(step, state, None)
    callback.on_train_end(state)
    writer.close()
    images, _ = read_events(tmp_path)
    assert images["methods/gradient"] == [3, 6]


def test_inapplicable_method_fails_at_start(probes, tmp_path):
    model = models.create_model("mlp", hidden=(16,))
    state = steps.create_train_state(model, jax.random.PRNGKey(0), (28, 28, 1),
                                     steps.make_optimizer("adam", 1e-3))
    writer = TensorBoardWriter(str(tmp_path))
    callback = AttributionCallback(model, *probes, writer, methods=["gradient", "grad_cam"])
    with pytest.raises(ValueError, match="grad_cam|Grad-CAM"):
        callback.on_train_begin(state)
    writer.close()


def test_bad_arguments_fail_in_constructor(probes):
    images, labels = probes
    with pytest.raises(ValueError, match="valid methods"):
        AttributionCallback(None, images, labels, None, methods=["gradinet"])
    with pytest.raises(ValueError, match="valid options"):
        AttributionCallback(None, images, labels, None,
                            methods={"integrated_gradients": {"stepz": 3}})
    with pytest.raises(ValueError, match="label, predicted"):
        AttributionCallback(None, images, labels, None, targets="loss")
    with pytest.raises(ValueError, match="probe_images"):
        AttributionCallback(None, images[0], labels, None)


def test_registered_methods_all_available():
    # Configs enable every method that applies; the registry must know them all.
    assert {"gradient", "gradient_x_input", "integrated_gradients", "smoothgrad", "deconvnet",
            "guided_backprop", "cam", "grad_cam", "guided_grad_cam",
            "occlusion"} <= set(attribution.names())


@pytest.mark.slow
def test_drift_scalars_equal_a_hand_computation_on_the_maps(gap_model, probes, mnist, tmp_path):
    """drift/<method>/to_previous and to_first from the second firing on, as scipy computes
    them on the maps the callback returned; drift/curves at each of those firings."""
    from scipy import stats

    from tests.callbacks.test_sanity_callback import scalar_values

    model, state = gap_model
    writer = TensorBoardWriter(str(tmp_path))
    callback = AttributionCallback(model, *probes, writer, methods=["gradient", "grad_cam"])
    callback.compile({"params": state.params})
    images, labels = mnist.train_images[:64], mnist.train_labels[:64]
    state = jax.tree.map(jnp.array, state)  # train_step donates; keep the fixture's intact
    maps = []
    for step in (0, 1, 2):
        maps.append(callback.fire(step, state))
        for _ in range(3):
            state, _ = steps.train_step(state, images, labels)
    callback.wait()
    writer.close()

    def spearman_abs(a, b):
        return np.mean([stats.spearmanr(np.abs(x.sum(-1)).ravel(), np.abs(y.sum(-1)).ravel())[0]
                        for x, y in zip(a, b, strict=True)])

    for step in (1, 2):
        logged = scalar_values(tmp_path, step)
        for name in ("gradient", "grad_cam"):
            assert logged[f"drift/{name}/to_previous"] == pytest.approx(
                spearman_abs(maps[step - 1][name], maps[step][name]), abs=1e-5)
            assert logged[f"drift/{name}/to_first"] == pytest.approx(
                spearman_abs(maps[0][name], maps[step][name]), abs=1e-5)
    assert "drift/gradient/to_previous" not in scalar_values(tmp_path, 0)
    assert sorted(read_events(tmp_path)[0]["drift/curves"]) == [1, 2]
    assert [s for s, _ in callback.drift] == [1, 2]


@pytest.mark.slow
def test_sets_expand_for_the_model_and_a_wide_overview_splits_by_family(probes, tmp_path):
    model = models.create_model("cnn", features=(4, 8), dense=16)
    state = steps.create_train_state(model, jax.random.PRNGKey(2), (28, 28, 1),
                                     steps.make_optimizer("sgd", 0.05))
    writer = TensorBoardWriter(str(tmp_path))
    callback = AttributionCallback(model, *probes, writer, methods=["gradient", "propagation"],
                                   overview_columns=2)
    callback.on_train_begin(state)  # Fires at step 0.
    callback.on_train_end(state)
    writer.close()
    assert list(callback.methods) == ["gradient", "deconvnet", "deeplift", "deeplift_shap",
                                      "guided_backprop", "lrp"]
    images, _ = read_events(str(tmp_path))
    overviews = sorted(t for t in images if t.startswith("attributions/overview"))
    assert overviews == ["attributions/overview/gradient", "attributions/overview/propagation_1",
                         "attributions/overview/propagation_2",
                         "attributions/overview/propagation_3"]
    assert all(images[t] == [0] for t in overviews)
    assert all(f"methods/{m}" in images for m in callback.methods)
