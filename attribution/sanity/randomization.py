"""Model parameter randomization test: do the maps change when the weights do?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency Maps",
NeurIPS 2018, Section 3. Layers are re-initialized from the logits downward, one more at
each stage ("cascading"), or one at a time with the others trained ("independent"); each
stage's maps (for the class that stage's model predicts, as in the paper) are compared with
the trained model's maps. A method whose maps barely change does not explain the model.

Re-initialization uses each layer's own initializer with a fixed seed: the model's `init`
with `jax.random.key(seed)`, jitted, from which the randomized layers' subtrees are taken.
So the random weights depend on the seed only (reproducible across epochs and runs), are
drawn once, and are passed to the jitted check as an argument while the trained weights
change each firing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from attribution.method import AttributionFn
from attribution.sanity.similarity import get_similarity

MODES = ("cascading", "independent")
DEFAULT_SIMILARITIES = ("spearman_abs", "spearman_signed", "ssim")


def layer_order(variables: Any, model: nn.Module | None = None,
                input_shape: tuple[int, int, int] | None = None) -> list[str]:
    """The parameterized top-level layers, from the input to the logits.

    With `model` and `input_shape`, the order is the order in which the model first calls
    each top-level submodule that holds parameters (found with `nn.intercept_methods` under
    `jax.eval_shape`, no compute). Without them it is the key order of `variables["params"]`:
    Flax's `init` inserts submodules in creation order, which for a compact model is call
    order, but JAX tree operations (an optimizer update) return dicts with sorted keys, so
    prefer passing the model.

    Args:
        variables: The model's variables `{"params": {layer: ...}, ...}`.
        model: Optional: the `flax.linen.Module`.
        input_shape: Per-example image shape `(H, W, C)`; required with `model`.

    Returns:
        Layer names such as `["Conv_0", "Conv_1", "Dense_0", "Dense_1"]`.

    Raises:
        ValueError: If `variables` has no "params", or `model` is given without `input_shape`.
    """
    raise NotImplementedError


def random_variables(model: nn.Module, variables: Any, seed: int,
                     input_shape: tuple[int, int, int]) -> Any:
    """The whole model freshly initialized: `jax.jit(model.init)(jax.random.key(seed), zeros)`.

    Args:
        model: A `flax.linen.Module` (it must have `init`).
        variables: The trained variables; only their "params" structure is checked against
            the fresh ones.
        seed: Integer seed; the same seed gives the same weights.
        input_shape: Per-example image shape `(H, W, C)`.

    Returns:
        Variables with the structure of `variables`, every parameter re-initialized.

    Raises:
        ValueError: If `model` is not a linen Module, or its params do not match `variables`.
    """
    raise NotImplementedError


def randomize_layers(model: nn.Module, variables: Any, layers: Sequence[str], seed: int,
                     input_shape: tuple[int, int, int]) -> Any:
    """`variables` with the named top-level layers re-initialized by their own initializers.

    Args:
        model: A `flax.linen.Module`.
        variables: The trained variables `{"params": ...}`.
        layers: Top-level layer names (see `layer_order`).
        seed: Integer seed for `model.init`.
        input_shape: Per-example image shape `(H, W, C)`.

    Returns:
        A new variables pytree; the other layers and collections are those of `variables`.

    Raises:
        ValueError: If `model` is not a linen Module or a layer name is unknown.
    """
    raise NotImplementedError


def cascading_stages(layers: Sequence[str]) -> list[list[str]]:
    """Randomized layers per cascading stage: the top layer, then one more each stage.

    Args:
        layers: Layer names from the input to the logits.

    Returns:
        `[[L_n], [L_n, L_n-1], ..., [L_n, ..., L_1]]`: the last stage has every layer random.
    """
    raise NotImplementedError


def independent_stages(layers: Sequence[str]) -> list[list[str]]:
    """One randomized layer per stage, from the logits down: `[[L_n], [L_n-1], ..., [L_1]]`."""
    raise NotImplementedError


def stages(mode: str, layers: Sequence[str]) -> list[list[str]]:
    """`cascading_stages` or `independent_stages` by name; ValueError for another mode."""
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class RandomizationCheck:
    """A randomization test built once for a model, run each firing with new trained weights.

    Attributes:
        mode: "cascading" or "independent".
        layers: Parameterized layers, input to logits.
        stages: Randomized layers per stage (see `cascading_stages`, `independent_stages`).
        stage_names: One label per stage: the layer randomized last (cascading: down to and
            including it; independent: only it).
        methods: Method names, in the order of `method_fns`.
        similarities: Similarity names (keys of `SIMILARITIES`).
        random_variables: The fully re-initialized variables (depend on the seed only).
        run: Pure, jittable `run(variables, random_variables, images [N, H, W, C], key) ->
            {"scores": {method: {similarity: float32 [S]}} (mean over the N probes),
            "maps": {method: float32 [S + 1, P, H, W, C]} (trained first, then each stage, for
            the first P = min(num_maps, N) probes), "targets": int32 [S + 1, N]}` (the predicted
            class of the trained model, then of each stage's model).
    """

    mode: str
    layers: tuple[str, ...]
    stages: tuple[tuple[str, ...], ...]
    stage_names: tuple[str, ...]
    methods: tuple[str, ...]
    similarities: tuple[str, ...]
    random_variables: Any
    run: Callable[[Any, Any, jax.Array, jax.Array], dict[str, Any]]


def make_randomization_check(
    method_fns: Mapping[str, AttributionFn], model: nn.Module, variables: Any,
    input_shape: tuple[int, int, int], *, mode: str = "cascading", seed: int = 0,
    similarities: Sequence[str] = DEFAULT_SIMILARITIES, num_maps: int = 2,
) -> RandomizationCheck:
    """Builds the randomization test for `model` (draws the random weights once).

    Args:
        method_fns: Method name -> `fn(variables, images, targets, key) -> maps`, built for
            this model (e.g. by `attribution.build`).
        model: The `flax.linen.Module` (its `init` draws the random weights).
        variables: Trained variables (or any with the same structure).
        input_shape: Per-example image shape `(H, W, C)`.
        mode: "cascading" or "independent".
        seed: Seed of the re-initialization.
        similarities: Names from `SIMILARITIES`.
        num_maps: Probes whose maps `run` returns, for figures.

    Returns:
        The check; `jax.jit(check.run)` compiles each method once for all stages.

    Raises:
        ValueError: For a bad mode, similarity, num_maps, or a model that is not a linen Module.
    """
    raise NotImplementedError


class RandomizationResult(NamedTuple):
    """Host-side (numpy) result of `randomization_scores`.

    Attributes:
        scores: `{method: {similarity: float32 [S]}}`, the mean over probes per stage.
        stage_names: `S` stage labels (see `RandomizationCheck.stage_names`).
        maps: `{method: float32 [S + 1, P, H, W, C]}`: trained, then each stage.
        targets: int32 `[S + 1, N]`: predicted classes of the trained and each stage's model.
    """

    scores: dict[str, dict[str, np.ndarray]]
    stage_names: list[str]
    maps: dict[str, np.ndarray]
    targets: np.ndarray


def randomization_scores(
    method_fns: Mapping[str, AttributionFn], model: nn.Module, variables: Any,
    images: jax.Array, *, mode: str = "cascading", seed: int = 0, key: jax.Array | None = None,
    similarities: Sequence[str] = DEFAULT_SIMILARITIES, num_maps: int = 2,
) -> RandomizationResult:
    """Runs the randomization test once (builds, jits and runs `make_randomization_check`).

    Args:
        method_fns, model, variables, mode, seed, similarities, num_maps: As for
            `make_randomization_check`.
        images: Probe images `[N, H, W, C]`.
        key: PRNG key for stochastic methods (the same for every stage); None uses key 0.

    Returns:
        The scores, stage names, maps and predicted targets as numpy arrays.
    """
    raise NotImplementedError
