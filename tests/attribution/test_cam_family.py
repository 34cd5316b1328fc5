"""The CAM family against hand computations, and where the papers say members coincide.

On a CNN-GAP model the target logit's gradient w.r.t. the last conv layer's pre-activation A
is known in closed form, w_{k,c} / (h w) where A_k > 0: every gradient-weighted member is
checked against its formula on those numbers, and the gradient-free ones (Score-CAM,
Ablation-CAM) against masked / ablated forward passes computed here.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

import attribution
from attribution.methods import grad_cam, grad_cam_plus_plus
from tests.attribution._models import random_variables
from trainer.models import CNNGAP

SHAPE = (8, 8, 1)
TARGETS = np.array([0, 3, 5, 9])


@pytest.fixture(scope="module")
def gap_model():
    model = CNNGAP(features=(4, 8))
    variables = random_variables(model, SHAPE, seed=0)
    images = np.random.default_rng(1).uniform(size=(4, *SHAPE)).astype(np.float32)
    return model, variables, images


def _activation_and_gradient(model, variables, images):
    """Last conv's pre-activation A [N, h, w, K] and d logit_target / dA, in closed form."""
    _, state = model.apply(variables, images, capture_intermediates=True)
    a = np.asarray(state["intermediates"]["Conv_1"]["__call__"][0], np.float64)
    w = np.asarray(variables["params"]["Dense_0"]["kernel"], np.float64)[:, TARGETS].T
    size = a.shape[1] * a.shape[2]
    return a, (a > 0) * w[:, None, None, :] / size


def _resized(coarse):
    n = coarse.shape[0]
    up = jax.image.resize(jnp.asarray(coarse, jnp.float32), (n, *SHAPE[:2]), method="bilinear")
    return np.asarray(up)[..., None]


def _relu(x):
    return np.maximum(x, 0)


def _weighted(a, weights):
    return _relu(np.einsum("nhwk,nk->nhw", a, weights))


def _eigen(a):
    n, h, w, k = a.shape
    out = []
    for acts in a.reshape(n, h * w, k):
        centred = acts - acts.mean(axis=0)
        v = np.linalg.svd(centred)[2][0]
        v = v if v @ acts.mean(axis=0) >= 0 else -v
        out.append(_relu(centred @ v).reshape(h, w))
    return np.stack(out)


def _plus_plus(a, g):
    g2, g3 = g**2, g**3
    alpha = g2 / (2 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3 + 1e-7)
    alpha = np.where(g != 0, alpha, 0)
    return _weighted(a, (alpha * _relu(g)).sum(axis=(1, 2)))


HAND = {
    "grad_cam": lambda a, g: _weighted(a, g.mean(axis=(1, 2))),
    "grad_cam_plus_plus": _plus_plus,
    "hires_cam": lambda a, g: _relu((a * g).sum(-1)),
    "xgrad_cam": lambda a, g: _weighted(a, (a * g).sum(axis=(1, 2))
                                        / (a.sum(axis=(1, 2)) + 1e-7)),
    "layer_cam": lambda a, g: _relu((_relu(g) * a).sum(-1)),
    "eigen_cam": lambda a, g: _eigen(a),
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_gradient_weighted_members_match_their_formulas(gap_model, name):
    model, variables, images = gap_model
    maps = jax.jit(attribution.build(name, model, variables, SHAPE))(
        variables, images, jnp.asarray(TARGETS), None)
    expected = _resized(HAND[name](*_activation_and_gradient(model, variables, images)))
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


@pytest.mark.slow
def test_score_cam_matches_masked_forward_passes(gap_model):
    model, variables, images = gap_model
    a = _relu(_activation_and_gradient(model, variables, images)[0])  # Activated maps.
    n, h, w, k = a.shape
    scores = np.zeros((n, k))
    for i in range(n):
        for c in range(k):
            # order=1 with grid_mode=False: bilinear with the corner samples aligned.
            mask = ndimage.zoom(a[i, :, :, c], (SHAPE[0] / h, SHAPE[1] / w), order=1,
                                grid_mode=False)
            mask = (mask - mask.min()) / (mask.max() - mask.min() + 1e-8)
            logits = model.apply(variables, (images[i] * mask[..., None])[None])
            scores[i, c] = logits[0, TARGETS[i]]
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    expected = _resized(_weighted(a, weights))
    fn = attribution.build("score_cam", model, variables, SHAPE, chunk_size=5)
    maps = jax.jit(fn)(variables, images, jnp.asarray(TARGETS), None)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5 * expected.max())


def test_ablation_cam_weights_are_each_channels_share_of_the_logit(gap_model):
    """Zeroing channel k of A (ReLU, then GAP, then dense) removes w_{k,c} mean(ReLU(A_k))."""
    model, variables, images = gap_model
    a, _ = _activation_and_gradient(model, variables, images)
    w = np.asarray(variables["params"]["Dense_0"]["kernel"], np.float64)[:, TARGETS].T
    logit = np.asarray(model.apply(variables, images))[np.arange(4), TARGETS]
    drop = w * _relu(a).mean(axis=(1, 2))  # [N, K]
    expected = _resized(_weighted(a, drop / logit[:, None]))
    fn = attribution.build("ablation_cam", model, variables, SHAPE, chunk_size=7)
    maps = jax.jit(fn)(variables, images, jnp.asarray(TARGETS), None)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-5 * expected.max())


class ConvReLU(nn.Module):
    """A block whose output is the activated map."""

    features: int

    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Conv(self.features, (3, 3))(x))


class ActivatedGapNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = ConvReLU(4)(x)
        x = ConvReLU(6)(x)
        return nn.Dense(10)(x.mean(axis=(1, 2)))


@pytest.mark.slow
def test_members_coincide_where_the_gradient_is_constant_over_space():
    """Before a GAP + dense head the gradient w.r.t. the activated maps is constant per channel:
    HiResCAM equals Grad-CAM (Draelos & Carin), and so do XGrad-CAM's weights; LayerCAM
    equals HiResCAM once every gradient is non-negative."""
    model = ActivatedGapNet()
    variables = random_variables(model, SHAPE, seed=3)
    images = jnp.asarray(np.random.default_rng(4).uniform(size=(4, *SHAPE)), jnp.float32)
    targets = jnp.asarray(TARGETS)

    def maps(name, params):
        return np.asarray(jax.jit(attribution.build(name, model, params, SHAPE))(
            params, images, targets, None))

    reference = maps("grad_cam", variables)
    assert reference.max() > 0
    for name in ("hires_cam", "xgrad_cam"):
        np.testing.assert_allclose(maps(name, variables), reference, rtol=1e-4,
                                   atol=1e-6 * reference.max(), err_msg=name)
    positive = jax.tree_util.tree_map_with_path(
        lambda p, x: jnp.abs(x) if "Dense_0" in jax.tree_util.keystr(p) else x, variables)
    np.testing.assert_allclose(maps("layer_cam", positive), maps("hires_cam", positive),
                               rtol=1e-5, atol=1e-7)
    assert not np.allclose(maps("layer_cam", variables), maps("hires_cam", variables))


def test_grad_cam_plus_plus_is_grad_cam_on_one_feature_map_with_positive_gradient():
    """With one channel of activations after a ReLU (the paper's setting) and a positive
    gradient, both weigh the channel by a positive number: the same map up to scale."""
    rng = np.random.default_rng(5)
    a = jnp.asarray(rng.uniform(0.0, 1.0, (3, 5, 5, 1)), jnp.float32)
    g = jnp.asarray(rng.uniform(0.1, 1.0, (3, 5, 5, 1)), jnp.float32)
    plus, plain = grad_cam_plus_plus.combine(a, g), grad_cam.combine(a, g)
    ratio = plus.max(axis=(1, 2)) / plain.max(axis=(1, 2))
    np.testing.assert_allclose(plus, plain * ratio[:, None, None], rtol=1e-5, atol=1e-7)
    # Not so with several channels: the position weights differ from Grad-CAM's 1 / (h w).
    a2 = jnp.asarray(rng.standard_normal((3, 5, 5, 4)), jnp.float32)
    g2 = jnp.asarray(rng.standard_normal((3, 5, 5, 4)), jnp.float32)
    plus, plain = grad_cam_plus_plus.combine(a2, g2), grad_cam.combine(a2, g2)
    assert not np.allclose(plus / plus.max(), plain / plain.max(), atol=1e-2)


def test_eigen_cam_is_the_first_principal_component_and_ignores_the_target(gap_model):
    model, variables, images = gap_model
    fn = jax.jit(attribution.build("eigen_cam", model, variables, SHAPE))
    first = fn(variables, images, jnp.asarray(TARGETS), None)
    np.testing.assert_array_equal(first, fn(variables, images, jnp.asarray(TARGETS[::-1]), None))
    # Rank-one activations u(i, j) v_k + c_k: the map is ReLU((u - mean u) |v|).
    from attribution.methods import eigen_cam
    rng = np.random.default_rng(6)
    u, v, c = rng.standard_normal((5, 5)), rng.uniform(0.5, 1, 4), rng.uniform(1, 2, 4)
    acts = u[None, :, :, None] * v + c
    out = eigen_cam.combine(jnp.asarray(acts, jnp.float32), None)
    np.testing.assert_allclose(out[0], _relu((u - u.mean()) * np.linalg.norm(v)), rtol=1e-4,
                               atol=1e-5)


@jax.jit  # One compile per shape for the three scales.
def _jitted_eigen(acts):
    from attribution.methods import eigen_cam
    return eigen_cam.combine(acts, None)


@pytest.mark.parametrize("shape", [(2, 5, 5, 4), (2, 3, 3, 16)])  # More, then fewer positions.
@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e12])
def test_eigen_cam_matches_the_svd_for_wide_layers_and_at_any_scale(shape, scale):
    rng = np.random.default_rng(8)
    n, h, w, k = shape
    planted = rng.standard_normal((n, h, w, 1)) * rng.uniform(0.5, 1, (n, 1, 1, k))
    acts = 3 * planted + 0.3 * rng.standard_normal(shape) + 1.0
    out = np.asarray(_jitted_eigen(jnp.asarray(scale * acts, jnp.float32)))
    expected = _eigen(acts)
    assert np.abs(expected).max() > 0.5
    np.testing.assert_allclose(out / scale, expected, rtol=1e-4, atol=1e-5)


# At a 0.1% gap float32 itself pins the eigenvector only to about 1e-4 (its rounding / the gap).
@pytest.mark.parametrize("second, tolerance", [(0.5, 1e-6), (0.99, 1e-6), (0.999, 3e-4)])
def test_eigen_cam_top_eigenvector_matches_lapack_down_to_a_small_eigenvalue_gap(second,
                                                                                 tolerance):
    from attribution.methods import eigen_cam
    rng = np.random.default_rng(7)
    basis = np.linalg.qr(rng.standard_normal((2, 64, 64)))[0]
    values = np.sort(rng.uniform(0, 0.4, (2, 64)))[:, ::-1].copy()
    values[:, :2] = [1.0, second]
    gram = np.einsum("nik,nk,njk->nij", basis, values, basis)
    top = np.asarray(eigen_cam._top_eigenvector(jnp.asarray(gram, jnp.float32)))
    expected = np.linalg.eigh(gram)[1][:, :, -1]
    expected *= np.sign(np.sum(top * expected, axis=-1, keepdims=True))
    np.testing.assert_allclose(top, expected, atol=tolerance)
    # A dead layer (all activations equal) has a zero Gram matrix: no direction, a zero map.
    assert not np.any(np.asarray(eigen_cam._top_eigenvector(jnp.zeros((1, 8, 8)))))


@pytest.mark.parametrize("name", ["grad_cam_plus_plus", "hires_cam", "xgrad_cam", "layer_cam",
                                  "eigen_cam", "score_cam", "ablation_cam"])
def test_unknown_layer_lists_the_valid_ones(gap_model, name):
    model, variables, _ = gap_model
    with pytest.raises(ValueError, match=r"valid layers: Conv_0, Conv_1"):
        attribution.build(name, model, variables, SHAPE, layer="Dense_0")
