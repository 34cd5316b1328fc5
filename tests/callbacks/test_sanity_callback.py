"""SanityCallback: every tag at every firing, compiled once, values wired to the right method."""

import pathlib
import sys

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import attribution
from attribution import sanity
from callbacks import TensorBoardWriter, event_files, select_probes
from callbacks import similarity_plot as similarity_plot_module
from callbacks.sanity_callback import SanityCallback, probe_subset
from callbacks.similarity_plot import similarity_plot
from tests.callbacks.test_attribution_callback import _COUNTER, read_events

METHODS = {"gradient": {}, "guided_backprop": {}, "integrated_gradients": {"steps": 8}}
LAYERS = ("Conv_0", "Conv_1", "Dense_0", "Dense_1")  # trainer.models.CNN
SIMILARITIES = ("spearman_abs", "spearman_signed", "ssim")


def expected_scalars(methods):
    tags = {"timing/sanity_ms", "sanity/integrated_gradients/completeness_gap",
            "sanity/random/deletion_auc", "sanity/random/insertion_auc"}
    for m in methods:
        tags |= {f"sanity/{m}/cascading_{s}" for s in SIMILARITIES}
        tags |= {f"sanity/{m}/independent_{s}/{layer}" for s in SIMILARITIES for layer in LAYERS}
        tags |= {f"sanity/{m}/input_invariance", f"sanity/{m}/deletion_auc",
                 f"sanity/{m}/insertion_auc", f"sanity/{m}/efficient_mprt"}
        # The default metrics: the verdict's headline scores (completeness where promised).
        tags |= {f"sanity/{m}/{metric}" for metric in (
            "faithfulness_correlation", "max_sensitivity", "sparseness",
            "relevance_mass_accuracy")}
    tags |= {"sanity/integrated_gradients/completeness", "sanity/random/sparseness",
             "sanity/random/faithfulness_correlation", "sanity/random/relevance_mass_accuracy"}
    return tags


def scalar_values(logdir, step):
    """Tag -> value at `step`."""
    values = {}
    for path in (logdir / name for name in sorted(p.name for p in logdir.iterdir())):
        acc = event_accumulator.EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            values.update((tag, e.value) for e in acc.Scalars(tag) if e.step == step)
    return values


@pytest.fixture(scope="module")
def logged(trained_cnn, mnist, tmp_path_factory):
    """A callback run over 3 epochs with new weights each epoch: (callback, logdir, compiles)."""
    model, variables = trained_cnn
    idx = select_probes(mnist.eval_labels, per_class=2)
    logdir = tmp_path_factory.mktemp("sanity")
    writer = TensorBoardWriter(logdir)
    callback = SanityCallback(model, mnist.eval_images[idx], mnist.eval_labels[idx], writer,
                              methods=METHODS, num_probes=4, schedule="epochs:2", at_start=True,
                              figure_probes=2)
    _COUNTER.count, _COUNTER.active = 0, True
    callback.on_train_begin(variables)  # queues the compile, then the firing at epoch 0
    callback.wait()
    compiles = []
    for epoch in (1, 2, 3):
        variables = jax.tree.map(lambda p, e=epoch: p * (1 + 0.01 * e), variables)
        _COUNTER.count = 0
        callback.on_epoch_end(epoch, variables, None)  # fires at 2
        callback.wait()
        compiles.append(_COUNTER.count)
    _COUNTER.count = 0
    callback.on_train_end(variables)  # epoch 3 was not a firing: fires at 3
    compiles.append(_COUNTER.count)
    _COUNTER.active = False
    writer.close()
    return callback, logdir, compiles


@pytest.mark.slow
def test_compiles_once_and_fires_on_schedule(logged):
    callback, _, compiles = logged
    assert compiles == [0, 0, 0, 0]
    assert len(callback.timings) == 3  # epochs 0, 2 and (at the end) 3
    assert callback.compile_seconds > 0


@pytest.mark.slow
def test_every_tag_at_every_firing(logged):
    _, logdir, _ = logged
    images, scalars = read_events(logdir)
    assert set(scalars) == expected_scalars(METHODS)
    for tag, steps in scalars.items():
        assert sorted(steps) == [0, 2, 3], tag
    assert {tag: sorted(steps) for tag, steps in images.items()} == {
        "sanity/cascading_randomization": [0, 2, 3],
        "sanity/similarity_vs_randomized_layers": [0, 2, 3]}
    assert sorted(event_files.texts(str(logdir), "sanity/verdict")) == [0, 2, 3]


@pytest.mark.slow
def test_invariance_and_deletion_equal_the_standalone_checks(logged, trained_cnn):
    """The callback reuses its cascade's maps and scores all methods' curves at once; the
    scores are those of each check run alone."""
    callback, logdir, _ = logged
    model, variables = trained_cnn  # The weights of the firing at step 0.
    v = scalar_values(logdir, 0)
    images = callback.images
    targets = attribution.predicted_targets(model, variables, images)
    curves = jax.jit(sanity.make_faithfulness(model, variables, images.shape[1:], steps=10))
    for method, options in METHODS.items():
        alone = sanity.input_invariance(method, model, variables, images, options=options)
        assert v[f"sanity/{method}/input_invariance"] == pytest.approx(float(alone.mean()),
                                                                        abs=1e-5), method
        maps = attribution.explain(method, model, variables, images, targets, **options)
        deletion = curves(variables, images, targets, maps)["deletion_auc"]
        assert v[f"sanity/{method}/deletion_auc"] == pytest.approx(float(deletion.mean()),
                                                                    abs=1e-5), method


@pytest.mark.slow
def test_verdict_text_reads_back_with_the_logged_scores(logged):
    """One row per method, one cell per family: the logged score and its pass / fail."""
    shown = 5e-3  # The table's three significant digits ("0.142" for 0.14165).
    _, logdir, _ = logged
    text = event_files.texts(str(logdir), "sanity/verdict")[2]
    v = scalar_values(logdir, 2)
    lines = text.splitlines()
    assert lines[0] == "**Verdict at step 2**"
    rows = {line.split(" | ")[0][2:]: line.strip("| ").split(" | ")[1:]
            for line in lines if line.startswith("| ") and "---" not in line}
    assert list(rows) == ["method", *METHODS]
    assert rows["method"][0] == "faithfulness (faithfulness_correlation)"
    for m, cells in rows.items():
        if m == "method":
            continue
        faith, robust, randomisation, sparse, local, axiom = cells
        value, verdict = faith.split()
        assert float(value) == pytest.approx(v[f"sanity/{m}/faithfulness_correlation"],
                                             rel=shown)
        assert verdict == ("pass" if v[f"sanity/{m}/faithfulness_correlation"]
                           > v["sanity/random/faithfulness_correlation"] else "fail")
        value, verdict = randomisation.split()
        assert float(value) == pytest.approx(v[f"sanity/{m}/cascading_ssim"], rel=shown)
        assert verdict == ("pass" if v[f"sanity/{m}/cascading_ssim"] < 0.5 else "fail")
        assert float(robust.split()[0]) == pytest.approx(v[f"sanity/{m}/max_sensitivity"],
                                                         rel=shown)
        assert float(sparse.split()[0]) == pytest.approx(v[f"sanity/{m}/sparseness"], rel=shown)
        assert float(local.split()[0]) == pytest.approx(
            v[f"sanity/{m}/relevance_mass_accuracy"], rel=shown)
        assert (axiom == "n.a.") == (m != "integrated_gradients")
    # The paper's result, in the table: the gradient passes randomization, guided backprop not.
    assert rows["gradient"][2].endswith("pass") and rows["guided_backprop"][2].endswith("fail")


@pytest.mark.slow
def test_cascading_figure_layout(logged):
    callback, logdir, _ = logged
    path = next(p for p in logdir.iterdir() if p.name.startswith("events"))
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={"images": 0})
    acc.Reload()
    figure = acc.Images("sanity/cascading_randomization")[0]
    # 2 probes x 3 methods rows; input, trained and 4 stages as columns; cells 56 px + 2 pad;
    # under them the colour legend (one signed bar for these three methods: at most 4 lines).
    assert figure.height > 6 * 58 and figure.width > 6 * 58
    assert figure.height < 6 * 58 + 40 + 60 and figure.width < 6 * 58 + 120
    plot = acc.Images("sanity/similarity_vs_randomized_layers")[0]
    assert plot.width > plot.height > 200


@pytest.mark.slow
def test_scores_behave_as_the_papers_say(logged):
    # On the trained CNN (epoch 0): each number comes from the method it is logged under.
    _, logdir, _ = logged
    v = scalar_values(logdir, 0)
    # Adebayo et al.: the gradient's maps change with the weights, guided backprop's much less.
    assert (v["sanity/gradient/cascading_spearman_abs"] + 0.1
            < v["sanity/guided_backprop/cascading_spearman_abs"])
    # The re-initialized logits layer is not the initial one (the CNN was seeded with 0, as
    # the callback): its maps differ already (about 0.98 if it were).
    assert v["sanity/gradient/independent_spearman_abs/Dense_1"] < 0.8
    # Kindermans et al.: the gradient ignores the compensated shift; IG (black baseline) not.
    assert v["sanity/gradient/input_invariance"] > 0.999
    assert v["sanity/integrated_gradients/input_invariance"] < 0.5
    # Deleting the pixels IG ranks first hurts the class far more than deleting random ones.
    assert (v["sanity/integrated_gradients/deletion_auc"]
            < v["sanity/random/deletion_auc"] - 0.2)
    # eMPRT agrees with the cascade: IG's maps, dominated by the input (0.99 Spearman-abs after
    # full randomization), gain the least entropy when the model is randomized.
    assert v["sanity/integrated_gradients/efficient_mprt"] < min(
        v["sanity/gradient/efficient_mprt"], v["sanity/guided_backprop/efficient_mprt"])
    assert (v["sanity/integrated_gradients/insertion_auc"]
            > v["sanity/random/insertion_auc"])
    assert 0 <= v["sanity/integrated_gradients/completeness_gap"] < 0.1
    for tag, value in v.items():
        assert np.isfinite(value), tag
        if "spearman" in tag:
            assert -1 <= value <= 1, tag


def test_probe_subset_spreads_over_the_classes():
    np.testing.assert_array_equal(probe_subset(20, 4), [0, 6, 13, 19])
    np.testing.assert_array_equal(probe_subset(3, 4), [0, 1, 2])
    np.testing.assert_array_equal(probe_subset(5, 0), np.arange(5))


def test_similarity_plot_is_an_rgb_image_without_pyplot():
    had_pyplot = "matplotlib.pyplot" in sys.modules
    stages = ["Dense_1", "Dense_0", "Conv_1", "Conv_0"]
    scores = {"gradient": {"spearman_abs": np.array([0.9, 0.5, 0.2, 0.1]),
                           "ssim": np.array([0.8, 0.4, 0.3, 0.1])},
              "guided_backprop": {"spearman_abs": np.ones(4), "ssim": np.ones(4)}}
    image = similarity_plot(scores, stages, title="t")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # lines and text, not blank
    changed = similarity_plot({**scores, "gradient": scores["guided_backprop"]}, stages,
                              title="t")
    assert changed.shape == image.shape and np.any(changed != image)
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules


def test_a_redrawn_similarity_plot_has_the_layout_of_a_fresh_one():
    """Later firings reuse the first one's constrained layout: the same pixels as a new one."""
    stages = ["Dense_2", "Dense_1", "Conv_1", "Conv_0"]
    scores = {m: {s: np.random.default_rng(i).uniform(-1, 1, 4) for s in ("ssim", "hog")}
              for i, m in enumerate(("gradient", "integrated_gradients", "guided_backprop"))}
    similarity_plot_module._LAYOUTS.clear()
    similarity_plot(scores, stages, title="step 2")
    assert len(similarity_plot_module._LAYOUTS) == 1  # The layout kept for the next firing.
    redrawn = similarity_plot(scores, stages, title="step 40")
    similarity_plot_module._LAYOUTS.clear()
    np.testing.assert_array_equal(redrawn, similarity_plot(scores, stages, title="step 40"))


@pytest.mark.parametrize("kwargs, match", [
    ({"methods": ["gradinet"]}, "valid methods"),
    ({"methods": {"integrated_gradients": {"stepz": 3}}}, "valid options"),
    ({"methods": []}, "methods is empty"),
    ({"num_probes": -1}, "num_probes"),
    ({"figure_probes": 0}, "figure_probes"),
    ({"faithfulness_steps": 0}, "faithfulness_steps"),
    ({"schedule": "epochs:1.5"}, "not an integer"),
    ({"seed": -1}, "seed must be an int >= 0; got -1"),
    ({"invariance_shift": float("nan")}, "invariance_shift must be a finite number"),
])
def test_bad_arguments_fail_in_constructor(kwargs, match):
    images, labels = np.zeros((2, 28, 28, 1), np.float32), np.zeros(2, np.int32)
    with pytest.raises(ValueError, match=match):
        SanityCallback(None, images, labels, None, **kwargs)


def _scores(callback, step):
    return {k: v for k, v in scalar_values(pathlib.Path(callback.writer.logdir), step).items()
            if k.startswith("sanity/")}


@pytest.mark.slow
def test_firing_reads_the_parameters_of_its_step_while_training_goes_on(trained_cnn, mnist,
                                                                        tmp_path):
    """Training does not wait: fire() returns before the checks ran, and the next steps'
    donated, rewritten parameters do not reach the firing (it ran on a snapshot)."""
    model, variables = trained_cnn
    step_fn = jax.jit(lambda v: jax.tree.map(lambda p: -3.0 * p, v), donate_argnums=0)
    scores = []
    for name, donate in (("still", False), ("trained_on", True)):
        writer = TensorBoardWriter(tmp_path / name)
        callback = SanityCallback(model, mnist.eval_images[:8], mnist.eval_labels[:8], writer,
                                  methods={"gradient": {}}, num_probes=2, schedule="never",
                                  independent=False, at_end=False)
        state = jax.tree.map(jax.numpy.array, variables)  # buffers of our own to donate
        callback.on_train_begin(state)
        callback.fire(5, state)
        assert callback.timings == []  # queued behind the compile, not run in fire()
        if donate:
            for _ in range(3):
                state = step_fn(state)
        callback.wait()
        writer.close()
        scores.append(_scores(callback, 5))
    assert scores[0] and scores[0] == scores[1]


def _steps_by_tag(logdir):
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0,
                                                                         "images": 0})
    acc.Reload()
    tags = acc.Tags()
    steps = {t: [e.step for e in acc.Scalars(t)] for t in tags["scalars"]}
    steps.update({t: [e.step for e in acc.Images(t)] for t in tags["images"]})
    steps.update({t: [e.step for e in acc.Tensors(t)] for t in tags["tensors"]})  # Texts.
    return steps


@pytest.mark.slow
def test_resumed_run_redoes_a_firing_cut_short_and_writes_each_tag_once(trained_cnn, mnist,
                                                                         tmp_path):
    """A killed run wrote part of the step-64 firing (not its last tag); resumed at 64, the
    callback fires again and writes only the missing tags. Resumed where the firing is
    complete, it does not fire."""
    model, variables = trained_cnn

    class State:
        def __init__(self, step):
            self.step, self.params = step, variables["params"]

    def callback(resume_step):
        logdir = tmp_path / "run"
        writer = TensorBoardWriter(logdir, purge_step=resume_step + 1)
        result = SanityCallback(model, mnist.eval_images[:8], mnist.eval_labels[:8], writer,
                                methods={"gradient": {}}, num_probes=2, schedule="epochs:1",
                                independent=False,
                                resume_tags=event_files.tags_at_step(str(logdir), resume_step))
        result.set_params({"steps": 32})
        return result

    first = callback(32)
    first.on_train_begin(State(32))  # Nothing at 32 yet: fires.
    first.wait()
    first.writer.close()
    full = event_files.tags_at_step(str(tmp_path / "run"), 32)
    assert "timing/sanity_ms" in full and "sanity/cascading_randomization" in full
    again = callback(32)  # Resumed where the firing is complete: nothing is redone.
    again.on_train_begin(State(32))
    again.wait()
    again.writer.close()
    assert all(steps == [32] for steps in _steps_by_tag(tmp_path / "run").values())

    # A run killed while writing its step-64 firing: some scalars, no images, no last tag.
    part = sorted(t for t in full if t.startswith("sanity/gradient/cascading"))
    killed = TensorBoardWriter(tmp_path / "run")
    killed.write_scalars(64, {t: 0.5 for t in part})
    killed.close()
    assert event_files.tags_at_step(str(tmp_path / "run"), 64) == set(part)
    resumed = callback(64)
    resumed.on_train_begin(State(64))
    resumed.wait()
    resumed.writer.close()
    steps = _steps_by_tag(tmp_path / "run")
    assert {t for t in steps if t.startswith(("sanity/", "timing/sanity"))} == full
    for tag in full:
        assert steps[tag] == [32, 64], tag
    # The redo kept what the killed run had written for the scalars it already held.
    assert scalar_values(tmp_path / "run", 64)[part[0]] == 0.5


@pytest.mark.slow
def test_new_method_families_pass_through_the_checks(trained_cnn, mnist, tmp_path):
    """LRP, DeepLIFT, a gradient-free CAM and KernelSHAP get every score, finite, with the
    randomized models re-traced through their rewritten backward passes."""
    model, variables = trained_cnn
    idx = select_probes(mnist.eval_labels, per_class=1)
    writer = TensorBoardWriter(tmp_path)
    methods = {"lrp": {}, "deeplift": {}, "ablation_cam": {},
               "kernel_shap": {"num_samples": 64, "patch": 7}}
    callback = SanityCallback(model, mnist.eval_images[idx], mnist.eval_labels[idx], writer,
                              methods=methods, num_probes=2, schedule="at:0", at_start=True,
                              independent=False)
    callback.on_train_begin(variables)  # Fires at step 0.
    callback.wait()
    writer.close()
    values = scalar_values(tmp_path, 0)
    for m in methods:
        scores = {k: v for k, v in values.items() if k.startswith(f"sanity/{m}/")}
        assert {f"sanity/{m}/cascading_spearman_abs", f"sanity/{m}/input_invariance",
                f"sanity/{m}/deletion_auc"} <= set(scores), m
        assert all(np.isfinite(v) for v in scores.values()), m
    # Randomizing every layer changes LRP's maps.
    assert values["sanity/lrp/cascading_spearman_abs"] < 0.9


@pytest.mark.slow
def test_a_family_scores_the_same_in_the_main_program_and_in_its_own(trained_cnn, mnist,
                                                                     tmp_path):
    """A family run at every firing is traced into the main program; one on a schedule of its
    own is a program of its own, first due at its n-th firing. Same scores either way, for a
    metric that reads the model, the targets and the key (faithfulness correlation) and one
    that reads only the maps (sparseness)."""
    model, variables = trained_cnn
    idx = select_probes(mnist.eval_labels, per_class=1)
    scores = {}
    for every in (1, 2):
        logdir = tmp_path / str(every)
        writer = TensorBoardWriter(logdir)
        callback = SanityCallback(model, mnist.eval_images[idx], mnist.eval_labels[idx], writer,
                                  methods=["gradient"], num_probes=2, schedule="epochs:1",
                                  at_start=True, independent=False, faithfulness_steps=2,
                                  metrics={"faithfulness_correlation": {"num_runs": 8},
                                           "sparseness": {}},
                                  metric_every={"faithfulness": every, "complexity": every})
        callback.on_train_begin(variables)  # Fires at step 0.
        callback.on_epoch_end(1, variables, None)
        callback.wait()
        writer.close()
        assert callback._metrics.inline == (["faithfulness", "complexity"] if every == 1
                                            else [])
        scores[every] = [scalar_values(logdir, step) for step in (0, 1)]
    tags = [f"sanity/{m}/{n}" for m in ("gradient", "random")
            for n in ("faithfulness_correlation", "sparseness")]
    assert not set(tags) & set(scores[2][0])  # Not due at the first firing.
    for tag in tags:
        assert scores[2][1][tag] == pytest.approx(scores[1][1][tag], abs=1e-6), tag
