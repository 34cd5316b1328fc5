"""DeepLIFT (rescale rule) and DeepLIFT-SHAP: summation to delta, hand-computed multipliers,
unmodified linen and NNX models, and a clear refusal where the rule has no answer."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import linear_model, random_variables, weight_images
from tests.attribution._zoo import (
    GeluReluNet,
    NnxCNN,
    NnxResNet,
    build_nnx,
    linen_init,
    randomize_statistics,
)


def _logit(apply, variables, images, targets):
    return np.asarray(apply(variables, jnp.asarray(images)))[np.arange(len(targets)), targets]


@pytest.mark.parametrize("baseline", [0.0, 0.5])
def test_sums_to_the_logit_difference_on_a_trained_cnn(trained_cnn, digits, baseline):
    model, variables = trained_cnn
    images, labels = digits[0][:16], digits[1][:16]
    maps = attribution.explain("deeplift", model, variables, images, labels, baseline=baseline)
    reference = np.full_like(images, baseline)
    delta = (_logit(model.apply, variables, images, labels)
             - _logit(model.apply, variables, reference, labels))
    np.testing.assert_allclose(np.asarray(maps, np.float64).sum(axis=(1, 2, 3)), delta,
                               rtol=1e-4, atol=1e-4 * np.abs(delta).max())
    # Not the gradient times the difference: the ReLUs' secant slopes matter.
    gradient = attribution.explain("gradient", model, variables, images, labels)
    assert not np.allclose(maps, (images - baseline) * gradient, atol=1e-3)


def test_multipliers_equal_secant_slopes_by_hand():
    """One hidden ReLU layer: m = W1 diag(s) w2 with s = (relu(z) - relu(z0)) / (z - z0)."""

    class TwoLayer(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(7)(x.reshape(x.shape[0], -1)))
            return nn.Dense(3)(x)

    shape = (2, 3, 1)
    model = TwoLayer()
    variables = random_variables(model, shape, seed=0)
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(5, *shape)).astype(np.float32)
    baseline = rng.uniform(size=shape).astype(np.float32)
    targets = np.array([0, 1, 2, 1, 0])
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    w1, b1 = p["Dense_0"]["kernel"], p["Dense_0"]["bias"]
    w2 = p["Dense_1"]["kernel"]
    x, x0 = images.reshape(5, -1).astype(np.float64), baseline.reshape(1, -1)
    z, z0 = x @ w1 + b1, x0 @ w1 + b1
    slope = np.where(np.abs(z - z0) < 1e-10, z > 0,
                     (np.maximum(z, 0) - np.maximum(z0, 0)) / np.where(z == z0, 1, z - z0))
    expected = (x - x0) * ((slope * w2[:, targets].T) @ w1.T)
    maps = attribution.explain("deeplift", model, variables, images, targets, baseline=baseline)
    np.testing.assert_allclose(np.asarray(maps).reshape(5, -1), expected, rtol=1e-5, atol=1e-6)


def test_linear_model_gives_difference_times_weights():
    shape = (4, 4, 1)
    apply_fn, variables = linear_model(shape, 5)
    images = np.random.default_rng(2).uniform(size=(3, *shape)).astype(np.float32)
    targets = np.array([4, 0, 2])
    maps = attribution.explain("deeplift", apply_fn, variables, images, targets, baseline=0.25)
    np.testing.assert_allclose(maps, (images - 0.25) * weight_images(variables, shape, targets),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["nnx_bn_dropout", "nnx_resnet"])
def test_unmodified_nnx_models_with_batchnorm_and_residual_adds(kind):
    if kind == "nnx_bn_dropout":
        model, shape = build_nnx(NnxCNN, 0), (28, 28, 1)
        randomize_statistics(model)
    else:
        model, shape = build_nnx(NnxResNet, 1), (32, 32, 3)
    images = np.random.default_rng(3).uniform(size=(4, *shape)).astype(np.float32)
    targets = np.array([1, 7, 3, 0])
    maps = attribution.explain("deeplift", model, None, images, targets)
    model.eval()
    logits = np.asarray(model(jnp.asarray(images)))
    zero = np.asarray(model(jnp.zeros_like(jnp.asarray(images))))
    delta = (logits - zero)[np.arange(4), targets]
    np.testing.assert_allclose(np.asarray(maps, np.float64).sum(axis=(1, 2, 3)), delta,
                               rtol=1e-4, atol=1e-4 * np.abs(delta).max())


class MaxPoolNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.max_pool(nn.relu(nn.Conv(4, (3, 3))(x)), (2, 2), strides=(2, 2))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


@pytest.mark.slow
@pytest.mark.parametrize("model, names", [(MaxPoolNet(), "reduce_window_max"),
                                          (GeluReluNet(), "'mul' equation \\(inside gelu\\)")])
def test_operations_the_rule_cannot_handle_are_named_at_build(model, names):
    shape = (8, 8, 1)
    variables = linen_init(model, shape)
    with pytest.raises(attribution.NotApplicableError, match=names):
        attribution.build("deeplift", model, variables, shape)


@pytest.mark.slow
def test_deeplift_shap_is_the_mean_over_its_baselines(trained_cnn, digits):
    model, variables = trained_cnn
    images, labels = digits[0][:6], digits[1][:6]
    rng = np.random.default_rng(4)
    baselines = rng.uniform(size=(3, *images.shape[1:])).astype(np.float32)
    shap = attribution.explain("deeplift_shap", model, variables, images, labels,
                               baselines=baselines, chunk_size=5)
    each = [attribution.explain("deeplift", model, variables, images, labels, baseline=b)
            for b in baselines]
    np.testing.assert_allclose(shap, np.mean(each, axis=0), rtol=1e-5,
                               atol=1e-6 * np.abs(shap).max())
    expected = _logit(model.apply, variables, images, labels) - np.mean(
        [_logit(model.apply, variables, np.broadcast_to(b, images.shape), labels)
         for b in baselines], axis=0)
    np.testing.assert_allclose(np.asarray(shap, np.float64).sum(axis=(1, 2, 3)), expected,
                               rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_deeplift_shap_rejects_baselines_of_another_shape(trained_cnn):
    model, variables = trained_cnn
    with pytest.raises(ValueError, match=r"baselines must be images \[B, 28, 28, 1\]"):
        attribution.build("deeplift_shap", model, variables, (28, 28, 1),
                          baselines=np.zeros((2, 14, 14, 1)))
