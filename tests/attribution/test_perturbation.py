"""Feature ablation, RISE, KernelSHAP and LIME on models where the answer is known.

A linear model is linear in the patches too: with a patch on (the image) or off (the fill),
f = b + sum_p z_p c_p with c_p = sum over the patch's pixels of w (x - fill). Feature ablation
and KernelSHAP recover c_p exactly; LIME without its penalty as well; RISE converges to its
closed-form expectation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import linear_model

SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def linear():
    apply_fn, variables = linear_model(SHAPE, 3, seed=4)
    images = np.random.default_rng(5).uniform(size=(2, *SHAPE)).astype(np.float32)
    return apply_fn, variables, images, np.array([2, 0])


def _patch_contributions(variables, images, targets, patch, fill):
    """c_p for every pixel (its patch's value) [N, H, W, 1]."""
    w = np.asarray(variables["w"])[:, targets].T.reshape(len(targets), *SHAPE)
    contribution = w * (images - fill)
    index = (np.arange(8)[:, None] // patch) * (-(-8 // patch)) + np.arange(8)[None, :] // patch
    out = np.zeros_like(contribution)
    for p in np.unique(index):
        cell = index == p
        out[:, cell] = contribution[:, cell].sum(axis=1, keepdims=True)
    return out, index


@pytest.mark.parametrize("patch", [2, 3])  # 3: the last row and column of patches are cut.
def test_feature_ablation_gives_each_patch_its_contribution(linear, patch):
    apply_fn, variables, images, targets = linear
    maps = attribution.explain("feature_ablation", apply_fn, variables, images, targets,
                               patch=patch, fill=0.25, chunk_size=5)
    expected, _ = _patch_contributions(variables, images, targets, patch, 0.25)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)


def test_kernel_shap_is_exact_on_a_model_linear_in_the_patches(linear):
    apply_fn, variables, images, targets = linear
    maps = attribution.explain("kernel_shap", apply_fn, variables, images, targets,
                               key=jax.random.key(0), patch=2, num_samples=40)
    expected, _ = _patch_contributions(variables, images, targets, 2, 0.0)
    np.testing.assert_allclose(maps, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


@pytest.mark.slow
def test_lime_without_penalty_is_exact_and_its_penalty_shrinks(linear):
    apply_fn, variables, images, targets = linear
    expected, _ = _patch_contributions(variables, images, targets, 4, 0.0)
    exact = attribution.explain("lime", apply_fn, variables, images, targets,
                                key=jax.random.key(1), patch=4, num_samples=64, alpha=1e-6)
    np.testing.assert_allclose(exact, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    shrunk = attribution.explain("lime", apply_fn, variables, images, targets,
                                 key=jax.random.key(1), patch=4, num_samples=64, alpha=10.0)
    assert np.linalg.norm(shrunk) < 0.9 * np.linalg.norm(expected)


@pytest.mark.slow
def test_rise_converges_to_its_expectation_on_cell_masks():
    """Cells of 4x4 pixels on an 8x8 image: S = B + (1 - p) a_c + p sum_c' a_c'."""
    apply_fn, variables = linear_model(SHAPE, 2, seed=6)
    images = np.random.default_rng(7).uniform(size=(1, *SHAPE)).astype(np.float32)
    targets = np.array([1])
    p, fill = 0.5, 0.1
    a, index = _patch_contributions(variables, images, targets, 4, fill)
    w = np.asarray(variables["w"])[:, 1]
    base = float(np.asarray(variables["b"])[1] + fill * w.sum())
    per_cell = np.array([a[0, index == c][0, 0] for c in range(4)])
    expected = base + (1 - p) * a[0, ..., 0] + p * per_cell.sum()
    errors = {}
    for samples in (16, 8192):
        maps = attribution.explain("rise", apply_fn, variables, images, targets,
                                   key=jax.random.key(2), num_samples=samples, grid=2, p=p,
                                   mask="cells", fill=fill)
        errors[samples] = np.abs(np.asarray(maps)[0, ..., 0] - expected).max()
    bound = np.abs(base) + np.abs(per_cell).sum()  # |f| never exceeds it.
    assert errors[8192] < 5 * bound / (p * np.sqrt(8192))
    assert errors[8192] < errors[16]


@pytest.mark.slow
@pytest.mark.parametrize("mask", ["smooth", "cells"])
def test_rise_masks_average_to_p(mask):
    """On a model whose logit is always 1, the map is mean(M) / p: about 1 everywhere."""
    shape = (28, 28, 1)

    def ones(variables, images):
        return jnp.ones((images.shape[0], 2)) + 0.0 * variables["scale"]

    images = np.zeros((2, *shape), np.float32)
    maps = np.asarray(attribution.explain("rise", ones, {"scale": jnp.ones(())}, images,
                                          np.array([0, 1]), key=jax.random.key(3),
                                          num_samples=2048, mask=mask))
    assert abs(maps.mean() - 1.0) < 0.05
    assert maps.min() > 0.7 and maps.max() < 1.3


@pytest.mark.parametrize("method, options, message", [
    ("kernel_shap", {"patch": 8}, "KernelSHAP needs at least 2 patches"),
    ("feature_ablation", {"patch": 9}, r"patch \(9, 9\) must fit in the image \(8, 8\)"),
    ("rise", {"p": 0.0}, r"p must be a number in \(0, 1\]; got 0.0"),
    ("rise", {"mask": "blurry"}, "valid masks: smooth, cells"),
    ("lime", {"kernel_width": 0}, "kernel_width must be a number > 0; got 0"),
    ("lime", {"features": "pixels"}, "valid features: patches, superpixels"),
    ("kernel_shap", {"features": "superpixels", "patch": (2, 3)}, "one grid step"),
])
def test_bad_options_name_the_valid_values(linear, method, options, message):
    apply_fn, variables, _, _ = linear
    with pytest.raises(ValueError, match=message):
        attribution.build(method, apply_fn, variables, SHAPE, **options)


def test_surrogate_solve_matches_numpy_and_ignores_the_batch():
    from attribution.methods._surrogate import solve_symmetric

    rng = np.random.default_rng(0)
    factors = rng.normal(size=(6, 12, 12))
    systems = factors @ factors.transpose(0, 2, 1) + 0.5 * np.eye(12)
    rhs = rng.normal(size=(6, 12))
    expected = np.linalg.solve(systems, rhs[..., None])[..., 0]
    solve = jax.jit(solve_symmetric)
    got = np.asarray(solve(jnp.asarray(systems, jnp.float32), jnp.asarray(rhs, jnp.float32)))
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)
    alone = np.asarray(solve(jnp.asarray(systems[2:3], jnp.float32),
                             jnp.asarray(rhs[2:3], jnp.float32)))
    np.testing.assert_array_equal(alone[0], got[2])


@pytest.mark.slow
@pytest.mark.parametrize("method, options", [
    ("kernel_shap", {"num_samples": 40}), ("lime", {"num_samples": 64, "alpha": 1e-6})])
def test_on_superpixels_each_segment_gets_its_contribution(linear, method, options):
    """A model linear in the pixels is linear in any segments: each SLIC superpixel of each
    image gets the sum of its pixels' contributions, whatever shape SLIC gave it."""
    from attribution import segmentation

    apply_fn, variables, images, targets = linear
    maps = np.asarray(attribution.explain(method, apply_fn, variables, images, targets,
                                          key=jax.random.key(2), features="superpixels",
                                          patch=3, **options))
    labels = np.asarray(segmentation.slic(jnp.asarray(images), size=3))
    w = np.asarray(variables["w"])[:, targets].T.reshape(len(targets), *SHAPE)
    contribution = (w * images)[..., 0]
    for n in range(len(images)):
        assert len(np.unique(labels[n])) > 4
        for label in np.unique(labels[n]):
            segment = labels[n] == label
            np.testing.assert_allclose(maps[n, segment, 0], contribution[n][segment].sum(),
                                       rtol=1e-3, atol=1e-3 * np.abs(contribution).sum())
