"""Tiny cases the metric tests work by hand: a linear classifier on small images."""

import jax
import jax.numpy as jnp
import numpy as np

import attribution
import attribution.metrics as metrics
from tests.attribution._models import linear_model, weight_images

SHAPE = (4, 4, 1)


def linear_case(num_examples: int = 3, seed: int = 0, num_classes: int = 3):
    """(classifier, variables, images, targets): logits = flatten(x) @ w + b."""
    apply_fn, variables = linear_model(SHAPE, num_classes, seed=seed)
    images = np.random.default_rng(seed + 1).uniform(size=(num_examples, *SHAPE))
    targets = np.arange(num_examples) % num_classes
    classifier = attribution.as_classifier(apply_fn, variables, SHAPE)
    return classifier, variables, images.astype(np.float32), targets.astype(np.int32)


def score(name, classifier, variables, images, targets, maps, explain=None, key=0, **options):
    """The metric's per-example scores as float64 numpy (one jitted call)."""
    fn = metrics.build(name, classifier, **options)
    explain = explain or (lambda v, x, t, k: jnp.zeros_like(x))
    out = jax.jit(lambda v, x, t, m, k: metrics.evaluate({name: fn}, v, x, t, m, explain, k))(
        variables, jnp.asarray(images), jnp.asarray(targets), jnp.asarray(maps, jnp.float32),
        jax.random.key(key))
    return np.asarray(out[name], np.float64)


def gradient_x_input(variables, images, targets):
    return weight_images(variables, SHAPE, targets) * images


def probabilities(variables, images, targets):
    logits = images.reshape(len(images), -1).astype(np.float64) @ np.asarray(
        variables["w"], np.float64) + np.asarray(variables["b"], np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p[np.arange(len(targets)), targets]


def traced_weight_images(variables, targets):
    """`weight_images` for traced arguments: the gradient of each target's logit."""
    return variables["w"][:, targets].T.reshape(len(targets), *SHAPE)


def explain_gradient(variables, images, targets, key):
    return traced_weight_images(variables, targets) + 0.0 * images


def explain_gradient_x_input(variables, images, targets, key):
    return traced_weight_images(variables, targets) * images
