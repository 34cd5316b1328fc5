"""Model parameter randomization (Adebayo et al. 2018) on small models and a trained CNN."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from attribution import sanity
from attribution.model_kinds.base import fast_compiling_draws
from attribution.sanity import similarity
from tests.attribution._models import TinyReluNet, random_variables

SHAPE = (8, 8, 1)


class _Reversed(nn.Module):
    """Called in the opposite order of its layers' sorted names."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(6, name="z_first")(x.reshape(x.shape[0], -1)))
        return nn.Dense(3, name="a_second")(x)


@pytest.fixture(scope="module")
def tiny():
    model = TinyReluNet()
    variables = {"params": random_variables(model, SHAPE, seed=0)["params"]}
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(3, *SHAPE)), jnp.float32)
    return model, variables, images


def test_layer_order_is_call_order():
    model = _Reversed()
    variables = random_variables(model, SHAPE, seed=0)
    sorted_params = {"params": dict(sorted(variables["params"].items()))}
    assert sanity.layer_order(sorted_params, model, SHAPE) == ["z_first", "a_second"]
    assert sanity.layer_order(sorted_params) == ["a_second", "z_first"]  # dict order only
    with pytest.raises(ValueError, match="input_shape"):
        sanity.layer_order(variables, model)
    with pytest.raises(ValueError, match="'params'"):
        sanity.layer_order({"batch_stats": {}})


def test_stages():
    layers = ["Conv_0", "Dense_0", "Dense_1"]
    assert sanity.cascading_stages(layers) == [
        ["Dense_1"], ["Dense_1", "Dense_0"], ["Dense_1", "Dense_0", "Conv_0"]]
    assert sanity.independent_stages(layers) == [["Dense_1"], ["Dense_0"], ["Conv_0"]]
    with pytest.raises(ValueError, match="valid modes: cascading, independent"):
        sanity.stages("shuffled", layers)


@pytest.mark.slow
def test_randomize_layers_uses_the_layers_initializers(tiny):
    model, variables, _ = tiny
    out = sanity.randomize_layers(model, variables, ["Dense_0"], seed=3, input_shape=SHAPE)
    key = jax.random.fold_in(jax.random.key(3), sanity.reinit.REINIT_STREAM)
    # Drawn as the re-initialization and the trainer's init draw (faster to compile).
    with fast_compiling_draws():
        fresh = jax.jit(model.init)(key, jnp.zeros((1, *SHAPE)))["params"]
        # Not the initial weights of a model trained from the same integer seed.
        initial = jax.jit(model.init)(jax.random.PRNGKey(3), jnp.zeros((1, *SHAPE)))["params"]
    np.testing.assert_array_equal(out["params"]["Dense_0"]["kernel"], fresh["Dense_0"]["kernel"])
    assert not np.allclose(out["params"]["Dense_0"]["kernel"], initial["Dense_0"]["kernel"])
    # Flax initializes biases to zero: no randomness, so the trained biases stay.
    np.testing.assert_array_equal(out["params"]["Dense_0"]["bias"],
                                  variables["params"]["Dense_0"]["bias"])
    for name in ("Conv_0", "Dense_1"):
        jax.tree.map(np.testing.assert_array_equal, out["params"][name],
                     variables["params"][name])
    again = sanity.randomize_layers(model, variables, ["Dense_0"], seed=3, input_shape=SHAPE)
    jax.tree.map(np.testing.assert_array_equal, out, again)
    everything = sanity.randomize_layers(model, variables, ["Dense_0"], seed=3,
                                         input_shape=SHAPE, keep_constant=False)
    np.testing.assert_array_equal(everything["params"]["Dense_0"]["bias"], 0.0)


def test_randomize_layers_rejects_bad_input(tiny):
    model, variables, _ = tiny
    with pytest.raises(ValueError, match="Unknown layer.*'Dense_7'.*valid layers: Conv_0"):
        sanity.randomize_layers(model, variables, ["Dense_7"], seed=0, input_shape=SHAPE)
    with pytest.raises(ValueError, match="needs a model whose layers can be re-initialized"):
        sanity.randomize_layers(model.apply, variables, ["Dense_0"], seed=0, input_shape=SHAPE)


@pytest.mark.slow
@pytest.mark.parametrize("mode", sanity.MODES)
def test_check_matches_randomize_layers_stage_by_stage(tiny, mode):
    """Each stage's maps, targets and scores equal a direct computation on that stage's model."""
    model, variables, images = tiny
    fns = {name: jax.jit(attribution.build(name, model, variables, SHAPE))
           for name in ("gradient", "guided_backprop")}
    result = sanity.randomization_scores(fns, model, variables, images, mode=mode, seed=5,
                                         num_maps=3)
    groups = sanity.stages(mode, ["Conv_0", "Dense_0", "Dense_1"])
    assert result.stage_names == [g[-1] for g in groups]
    key = jax.random.key(0)
    trained_targets = attribution.predicted_targets(model, variables, images)
    np.testing.assert_array_equal(result.targets[0], trained_targets)
    for s, group in enumerate(groups, start=1):
        staged = sanity.randomize_layers(model, variables, group, seed=5, input_shape=SHAPE)
        targets = attribution.predicted_targets(model, staged, images)
        np.testing.assert_array_equal(result.targets[s], targets)
        for name, fn in fns.items():
            trained = fn(variables, images, trained_targets, key)
            maps = fn(staged, images, targets, key)
            np.testing.assert_allclose(result.maps[name][s], maps, rtol=1e-5, atol=1e-6)
            for sim in sanity.DEFAULT_SIMILARITIES:
                want = np.mean(similarity.SIMILARITIES[sim](trained, maps))
                np.testing.assert_allclose(result.scores[name][sim][s - 1], want, atol=1e-5)


@pytest.mark.slow
def test_checks_run_together_equal_each_check_alone(tiny):
    model, variables, images = tiny
    fns = {name: attribution.build(name, model, variables, SHAPE)
           for name in ("gradient", "integrated_gradients")}
    checks = [sanity.make_randomization_check(fns, model, variables, SHAPE, mode=mode, seed=3,
                                              num_maps=n)
              for mode, n in (("cascading", 2), ("independent", 1))]
    key = jax.random.key(1)
    together = jax.jit(lambda v, r, x, k: sanity.run_together(checks, v, r, x, k))(
        variables, checks[0].random_variables, images, key)
    assert set(together) == {"cascading", "independent"}
    for check in checks:
        alone = jax.jit(check.run)(variables, check.random_variables, images, key)
        assert len(alone["targets"]) == len(check.stages) + 1
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                     together[check.mode], alone)
    other = sanity.make_randomization_check({"gradient": fns["gradient"]}, model, variables,
                                            SHAPE, mode="independent")
    with pytest.raises(ValueError, match="same model and methods"):
        sanity.run_together([checks[0], other], variables, checks[0].random_variables, images,
                            key)


def test_check_rejects_bad_options(tiny):
    model, variables, images = tiny
    fns = {"gradient": attribution.build("gradient", model, variables, SHAPE)}
    with pytest.raises(ValueError, match="Unknown similarity 'hog'"):
        sanity.make_randomization_check(fns, model, variables, SHAPE, similarities=("hog",))
    with pytest.raises(ValueError, match="Unknown randomization mode 'all'"):
        sanity.make_randomization_check(fns, model, variables, SHAPE, mode="all")
    with pytest.raises(ValueError, match="num_maps must be an int >= 0"):
        sanity.make_randomization_check(fns, model, variables, SHAPE, num_maps=-1)


@pytest.mark.slow
def test_gradient_passes_and_guided_backprop_fails(trained_cnn, digits):
    """The paper's result: after full cascading randomization, gradient maps no longer look
    like the trained model's, guided backprop's still do."""
    model, variables = trained_cnn
    images = jnp.asarray(digits[0][::8])  # 8 digits, one or two per class
    fns = {name: attribution.build(name, model, variables, images.shape[1:])
           for name in ("gradient", "guided_backprop")}
    result = sanity.randomization_scores(fns, model, variables, images)
    print("\nCascading randomization, mean over 8 digits; stages randomize down to:",
          ", ".join(result.stage_names))
    for name, scores in result.scores.items():
        for sim, values in scores.items():
            print(f"  {name:16s} {sim:16s} " + " ".join(f"{v:6.3f}" for v in values))
    assert result.maps["gradient"].shape == (5, 2, 28, 28, 1)
    grad, guided = result.scores["gradient"], result.scores["guided_backprop"]
    assert grad["spearman_abs"][-1] < 0.25
    assert guided["spearman_abs"][-1] > grad["spearman_abs"][-1] + 0.2
    assert guided["ssim"][-1] > grad["ssim"][-1] + 0.3
