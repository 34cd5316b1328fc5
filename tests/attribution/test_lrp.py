"""LRP: the rules' defining properties, a layer-by-layer hand computation, BatchNorm folding,
and a clear refusal where no rule applies. (Agreement with zennit: benchmarks/crosscheck_peers.)
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import random_variables
from tests.attribution._zoo import GeluReluNet, NnxCNN, build_nnx, linen_init, randomize_statistics
from trainer.models import CNN

SHAPE = (12, 12, 1)


def _without_biases(variables):
    return jax.tree_util.tree_map_with_path(
        lambda p, a: jnp.zeros_like(a) if "bias" in jax.tree_util.keystr(p) else a, variables)


class MaxPoolNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.max_pool(nn.relu(nn.Conv(4, (3, 3))(x)), (2, 2), strides=(2, 2))
        return nn.Dense(5)(nn.relu(nn.Dense(8)(x.reshape(x.shape[0], -1))))


class ResidualNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Conv(4, (3, 3))(x))
        h = nn.relu(h + nn.Conv(4, (3, 3))(h))  # A residual add of two input-dependent values.
        return nn.Dense(5)(h.mean(axis=(1, 2)))


@pytest.mark.parametrize("model", [CNN(features=(4, 8), dense=16), MaxPoolNet(), ResidualNet()],
                         ids=["cnn_avgpool", "maxpool", "residual"])
def test_lrp_zero_is_gradient_times_input_without_biases(model):
    variables = _without_biases(random_variables(model, SHAPE, seed=0))
    images = np.random.default_rng(1).uniform(size=(3, *SHAPE)).astype(np.float32)
    targets = np.array([1, 2, 3])
    lrp = attribution.explain("lrp", model, variables, images, targets, rule="zero")
    reference = attribution.explain("gradient_x_input", model, variables, images, targets)
    # float32: dividing by pre-activations near zero amplifies rounding a little.
    np.testing.assert_allclose(lrp, reference, rtol=1e-3, atol=5e-4 * np.abs(reference).max())


def test_epsilon_rule_layer_by_layer_by_hand():
    """A dense ReLU net: each layer's relevance by hand, R_in = a * W^T (R / (z + eps sign z));
    what the biases and epsilon absorb is all that is not conserved."""

    class Mlp(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(nn.Dense(6)(x))
            x = nn.relu(nn.Dense(5)(x))
            return nn.Dense(3)(x)

    shape, eps = (2, 4, 1), 0.05
    model = Mlp()
    variables = random_variables(model, shape, seed=2)
    images = np.random.default_rng(3).uniform(size=(4, *shape)).astype(np.float32)
    targets = np.array([0, 1, 2, 0])
    maps = attribution.explain("lrp", model, variables, images, targets, rule="epsilon",
                               epsilon=eps)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    layers = [(p[f"Dense_{i}"]["kernel"], p[f"Dense_{i}"]["bias"]) for i in range(3)]
    activations = [images.reshape(4, -1).astype(np.float64)]
    for i, (w, b) in enumerate(layers):
        z = activations[-1] @ w + b
        activations.append(np.maximum(z, 0) if i < 2 else z)
    logits = activations[-1]
    relevance = np.zeros_like(logits)
    relevance[np.arange(4), targets] = logits[np.arange(4), targets]
    for (w, b), a in zip(reversed(layers), reversed(activations[:-1]), strict=True):
        z = a @ w + b
        stabilized = z + eps * np.where(z >= 0, 1.0, -1.0)
        incoming = relevance
        relevance = a * ((incoming / stabilized) @ w.T)
        # Conservation up to what the bias and epsilon take: sum_j R_j (b_j + eps sign) / z'.
        absorbed = ((b + eps * np.where(z >= 0, 1.0, -1.0)) * incoming / stabilized).sum(1)
        np.testing.assert_allclose(relevance.sum(1), incoming.sum(1) - absorbed, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(maps).reshape(4, -1), relevance, rtol=1e-4,
                               atol=1e-5 * np.abs(relevance).max())


@pytest.mark.slow
def test_z_plus_maps_are_non_negative_where_the_logit_is_positive():
    model = CNN(features=(4, 8), dense=16)
    variables = random_variables(model, SHAPE, seed=4)
    images = np.random.default_rng(5).uniform(size=(16, *SHAPE)).astype(np.float32)
    logits = np.asarray(model.apply(variables, images))
    targets = logits.argmax(axis=1)
    assert np.all(logits[np.arange(16), targets] > 0)
    maps = np.asarray(attribution.explain("lrp", model, variables, images, targets,
                                          rule="alpha1_beta0"))
    assert maps.min() >= 0 and maps.max() > 0
    # alpha2_beta1 subtracts negative contributions: signed maps.
    signed = np.asarray(attribution.explain("lrp", model, variables, images, targets,
                                            rule="alpha2_beta1"))
    assert signed.min() < 0 < signed.max()


def _folded_cnn_variables(model: NnxCNN, eps: float = 1e-5) -> dict:
    """The NNX model's convs with their BatchNorms folded in by hand, as `CNN` variables."""
    params = {}
    for i, (conv, bn) in enumerate(((model.conv1, model.batch_norm1),
                                    (model.conv2, model.batch_norm2))):
        factor = bn.scale[...] / jnp.sqrt(bn.var[...] + eps)
        params[f"Conv_{i}"] = {"kernel": conv.kernel[...] * factor,
                               "bias": (conv.bias[...] - bn.mean[...]) * factor + bn.bias[...]}
    for i, layer in enumerate((model.linear1, model.linear2)):
        params[f"Dense_{i}"] = {"kernel": layer.kernel[...], "bias": layer.bias[...]}
    return {"params": params}


@pytest.mark.slow
@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box",
                                       "epsilon_alpha2_beta1"])
def test_batchnorm_is_folded_into_the_conv_before_it(digits, composite):
    """The Flax MNIST example's NNX CNN (conv, BatchNorm, ReLU) explained as it is equals the
    same network with each BatchNorm folded into its conv by hand."""
    model = build_nnx(NnxCNN, 0)
    randomize_statistics(model)
    images, labels = digits[0][:6], digits[1][:6]
    with_bn = attribution.explain("lrp", model, None, images, labels, composite=composite)
    folded = attribution.explain("lrp", CNN(features=(8, 16), dense=32),
                                 _folded_cnn_variables(model), images, labels,
                                 composite=composite)
    scale = np.abs(np.asarray(folded)).max()
    assert scale > 0
    np.testing.assert_allclose(with_bn, folded, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.slow
def test_operations_without_a_rule_are_named_at_build():
    variables = linen_init(GeluReluNet(), (8, 8, 1))
    with pytest.raises(attribution.NotApplicableError, match=r"equation \(inside gelu\)"):
        attribution.build("lrp", GeluReluNet(), variables, (8, 8, 1))


@pytest.mark.parametrize("options, message", [
    ({"composite": "epsilon_plus"}, "valid composites: epsilon_plus_flat, epsilon_gamma_box, "
                                    "epsilon_alpha2_beta1"),
    ({"rule": "alpha3_beta2"}, "valid rules: zero, epsilon, gamma, alpha1_beta0, alpha2_beta1"),
    ({"first_rule": "box"}, "valid: flat, w_square, z_box or None"),
    ({"epsilon": -1.0}, "epsilon must be a number >= 0; got -1.0"),
])
def test_bad_options_name_the_valid_values(options, message):
    model = CNN(features=(4, 8), dense=16)
    variables = random_variables(model, SHAPE, seed=0)
    with pytest.raises(ValueError, match=message):
        attribution.build("lrp", model, variables, SHAPE, **options)
