"""Deletion and insertion curves: a numpy reference on a linear model, and a trained CNN."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from attribution import sanity
from tests.attribution._models import linear_model

SHAPE = (4, 4, 2)


def _reference(apply_fn, variables, images, targets, maps, steps, baseline):
    """Deletion and insertion curves, one image and one step at a time."""
    pixels = SHAPE[0] * SHAPE[1]
    deletion = np.zeros((len(images), steps + 1))
    insertion = np.zeros_like(deletion)
    for i, (image, target, m) in enumerate(zip(images, targets, maps, strict=True)):
        order = np.argsort(-m.sum(-1).ravel(), kind="stable")
        for k in range(steps + 1):
            gone = np.zeros(pixels, bool)
            gone[order[: round(k * pixels / steps)]] = True
            gone = gone.reshape(SHAPE[:2])[..., None]
            for curve, x in ((deletion, np.where(gone, baseline, image)),
                             (insertion, np.where(gone, image, baseline))):
                logits = np.asarray(apply_fn(variables, jnp.asarray(x[None], jnp.float32)))[0]
                p = np.exp(logits - logits.max())
                curve[i, k] = p[target] / p.sum()
    return deletion, insertion


def test_curves_match_a_per_image_reference():
    apply_fn, variables = linear_model(SHAPE, num_classes=3)
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, *SHAPE)).astype(np.float32)
    targets = np.array([0, 2, 1], np.int32)
    maps = np.round(rng.standard_normal((3, *SHAPE))).astype(np.float32)  # many ties
    # 5 points in chunks of 2: the last chunk is padded.
    fn = jax.jit(sanity.make_faithfulness(apply_fn, variables, SHAPE, steps=4, baseline=0.25,
                                          chunk_size=2))
    out = fn(variables, jnp.asarray(images), jnp.asarray(targets), jnp.asarray(maps))
    deletion, insertion = _reference(apply_fn, variables, images, targets, maps, 4, 0.25)
    np.testing.assert_allclose(out["deletion_curve"], deletion, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["insertion_curve"], insertion, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["deletion_auc"], np.trapezoid(deletion, dx=0.25, axis=1),
                               rtol=1e-5)
    np.testing.assert_allclose(out["insertion_auc"], np.trapezoid(insertion, dx=0.25, axis=1),
                               rtol=1e-5)


def test_auc_by_hand():
    curves = jnp.array([[1.0, 1.0, 1.0], [0.0, 0.5, 1.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(sanity.auc(curves), [1.0, 0.5, 0.25])


def test_bad_input_raises():
    apply_fn, variables = linear_model(SHAPE, num_classes=3)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        sanity.make_faithfulness(apply_fn, variables, SHAPE, steps=0)
    fn = sanity.make_faithfulness(apply_fn, variables, SHAPE)
    with pytest.raises(ValueError, match="must have the images' shape"):
        fn(variables, jnp.zeros((2, *SHAPE)), jnp.zeros(2, jnp.int32), jnp.zeros((2, 4, 4, 1)))


@pytest.mark.slow
def test_attributions_beat_random_maps_on_a_trained_cnn(trained_cnn, digits):
    model, variables = trained_cnn
    images, labels = jnp.asarray(digits[0][::4]), jnp.asarray(digits[1][::4])  # 16 digits
    fn = jax.jit(sanity.make_faithfulness(model, variables, images.shape[1:]))
    rng = np.random.default_rng(0)
    results = {"random": fn(variables, images, labels,
                            jnp.asarray(rng.uniform(size=images.shape), jnp.float32))}
    for name, options in (("gradient_x_input", {}), ("integrated_gradients", {"steps": 32})):
        maps = attribution.explain(name, model, variables, images, labels, **options)
        results[name] = fn(variables, images, labels, maps)
    print("\nfaithfulness, 16 digits, 20 steps: method, deletion AUC, insertion AUC")
    for name, r in results.items():
        print(f"  {name:22s} {float(r['deletion_auc'].mean()):.3f} "
              f"{float(r['insertion_auc'].mean()):.3f}")
    random = results["random"]
    for name in ("gradient_x_input", "integrated_gradients"):
        assert results[name]["deletion_auc"].mean() < random["deletion_auc"].mean() - 0.3
        assert results[name]["insertion_auc"].mean() > random["insertion_auc"].mean() + 0.1
    # Deletion starts where insertion ends (the digit) and ends where it starts (black).
    assert float(random["deletion_curve"][:, 0].mean()) > 0.8
    np.testing.assert_allclose(random["deletion_curve"][:, 0], random["insertion_curve"][:, -1])
    np.testing.assert_allclose(random["deletion_curve"][:, -1], random["insertion_curve"][:, 0])
