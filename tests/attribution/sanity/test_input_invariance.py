"""Input invariance (Kindermans et al. 2019): a shift compensated in the first layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from attribution import sanity
from tests.attribution._models import linear_model, random_variables
from trainer.models import MLP


@pytest.fixture(scope="module")
def probe(trained_cnn, digits):
    model, variables = trained_cnn
    return model, variables, jnp.asarray(digits[0][::8])


def test_shifted_model_has_the_same_logits(probe):
    model, variables, images = probe
    shifted = sanity.shifted_classifier(model, variables, (28, 28, 1), shift=-1.0)
    want = model.apply(variables, images)
    got = jax.jit(shifted.logits)(variables, images - 1.0)
    np.testing.assert_allclose(got, want, atol=1e-4 * float(jnp.max(jnp.abs(want))))


def test_a_bias_change_alone_is_not_exact_at_zero_padded_borders(probe):
    """Why the compensation subtracts a map: b - c * sum(W) misses the padded border."""
    model, variables, images = probe
    conv = variables["params"]["Conv_0"]
    shift = -1.0
    bias = conv["bias"] - shift * jnp.sum(conv["kernel"], axis=(0, 1, 2))
    params = {**variables["params"], "Conv_0": {**conv, "bias": bias}}
    want = model.apply(variables, images)
    by_bias = model.apply({"params": params}, images + shift)
    assert float(jnp.max(jnp.abs(by_bias - want))) > 1e-2


def test_compensation_through_a_reshape():
    model = MLP(hidden=(16,))
    variables = random_variables(model, (6, 6, 1), seed=0)
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(3, 6, 6, 1)), jnp.float32)
    shifted = sanity.shifted_classifier(model, variables, (6, 6, 1), shift=0.5)
    np.testing.assert_allclose(shifted.logits(variables, images + 0.5),
                               model.apply(variables, images), atol=1e-5)


@pytest.mark.slow
def test_gradient_is_invariant_and_gradient_x_input_is_not(probe):
    model, variables, images = probe
    grad = sanity.input_invariance("gradient", model, variables, images)
    np.testing.assert_allclose(grad, 1.0, atol=1e-5)
    times_input = sanity.input_invariance("gradient_x_input", model, variables, images)
    # Maps g * x and g * (x - 1) on [0, 1] digits share no mass: l1 similarity 0.
    assert np.all(times_input < 0.05)
    print(f"\ninput invariance (l1), 8 digits: gradient {grad.mean():.4f}, "
          f"gradient_x_input {times_input.mean():.4f}")


def test_factory_and_rank_similarity(probe):
    model, variables, images = probe

    def factory(classifier):
        return attribution.get("gradient_x_input").build(classifier)

    score = sanity.input_invariance(factory, model, variables, images,
                                    similarity="spearman_signed")
    assert score.shape == (8,) and np.all(score < 0.5)


def test_bad_input_raises(probe):
    model, variables, images = probe
    with pytest.raises(ValueError, match="shift must be a finite number"):
        sanity.shifted_classifier(model, variables, (28, 28, 1), shift=float("nan"))
    apply_fn, linear_variables = linear_model((4, 4, 1), 3)
    with pytest.raises(ValueError, match="Dense / Linear or Conv"):
        sanity.shifted_classifier(apply_fn, linear_variables, (4, 4, 1))
    with pytest.raises(ValueError, match="options apply to a registered method name"):
        sanity.make_input_invariance(lambda c: None, model, variables, (28, 28, 1),
                                     options={"steps": 4})
    with pytest.raises(ValueError, match="Unknown similarity"):
        sanity.make_input_invariance("gradient", model, variables, (28, 28, 1),
                                     similarity="mse")
