"""Model parameter randomization test: do the maps change when the weights do?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency Maps",
NeurIPS 2018, Section 3. Layers are re-initialized from the logits downward, one more at
each stage ("cascading"), or one at a time with the others trained ("independent"); each
stage's maps (for the class that stage's model predicts, as in the paper) are compared with
the trained model's maps. A method whose maps barely change does not explain the model.

Layers are re-initialized by their own initializers with a fixed seed (see
`attribution.sanity.reinit`). The random weights depend on the seed only, so they are drawn
once and passed to the jitted check as an argument while the trained weights change each
firing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from attribution._conv_layout import canonical_convs
from attribution.classifier import as_classifier
from attribution.method import AttributionFn
from attribution.model_kinds import kind_of
from attribution.sanity.reinit import (
    constant_leaves,
    layer_order,
    leaf_layers,
    model_variables,
    random_variables,
    randomize_layers,
)
from attribution.sanity.similarity import get_similarity

__all__ = [
    "DEFAULT_SIMILARITIES",
    "MODES",
    "RandomizationCheck",
    "RandomizationResult",
    "cascading_stages",
    "constant_leaves",
    "independent_stages",
    "layer_order",
    "make_randomization_check",
    "random_variables",
    "randomization_scores",
    "randomize_layers",
    "run_together",
    "stages",
]

MODES = ("cascading", "independent")
DEFAULT_SIMILARITIES = ("spearman_abs", "spearman_signed", "ssim")


def cascading_stages(layers: Sequence[str]) -> list[list[str]]:
    """Randomized layers per cascading stage: the top layer, then one more each stage.

    Args:
        layers: Layer names from the input to the logits.

    Returns:
        `[[L_n], [L_n, L_n-1], ..., [L_n, ..., L_1]]`: the last stage has every layer random.
    """
    top_down = list(reversed(layers))
    return [top_down[: i + 1] for i in range(len(top_down))]


def independent_stages(layers: Sequence[str]) -> list[list[str]]:
    """One randomized layer per stage, from the logits down: `[[L_n], [L_n-1], ..., [L_1]]`."""
    return [[name] for name in reversed(layers)]


def stages(mode: str, layers: Sequence[str]) -> list[list[str]]:
    """`cascading_stages` or `independent_stages` by name; ValueError for another mode."""
    if mode == "cascading":
        return cascading_stages(layers)
    if mode == "independent":
        return independent_stages(layers)
    raise ValueError(f"Unknown randomization mode {mode!r}; valid modes: {', '.join(MODES)}.")


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
        mask: bool `[S + 1, L]`: row 0 the trained model, row s the layers random at stage s.
        staged_maps: Pure `staged_maps(variables, random_variables, images, key, rows)` ->
            `({method: maps [R, N, H, W, C]}, targets int32 [R, N])` for the models of the
            `R` mask rows `rows`, as one `lax.map` (see `run_together`).
        summarize: Pure `summarize(maps, targets)` for the rows of `mask`: `run`'s result.
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
    mask: np.ndarray
    staged_maps: Callable[..., tuple[dict[str, jax.Array], jax.Array]]
    summarize: Callable[[dict[str, jax.Array], jax.Array], dict[str, Any]]
    run: Callable[[Any, Any, jax.Array, jax.Array], dict[str, Any]]


def make_randomization_check(
    method_fns: Mapping[str, AttributionFn], model: Any, variables: Any,
    input_shape: tuple[int, int, int], *, mode: str = "cascading", seed: int = 0,
    similarities: Sequence[str] = DEFAULT_SIMILARITIES, num_maps: int = 2,
    keep_constant: bool = True,
) -> RandomizationCheck:
    """Builds the randomization test for `model` (draws the random weights once).

    Args:
        method_fns: Method name -> `fn(variables, images, targets, key) -> maps`, built for
            this model (e.g. by `attribution.build`).
        model: A linen or NNX module, or the `Classifier` the methods were built for (its
            model kind draws the random weights and runs the staged models).
        variables: Trained variables (or any with the same structure).
        input_shape: Per-example image shape `(H, W, C)`.
        mode: "cascading" or "independent".
        seed: Seed of the re-initialization.
        similarities: Names from `SIMILARITIES`.
        num_maps: Probes whose maps `run` returns, for figures.
        keep_constant: Keep the trained values of constant-initialized params (see
            `attribution.sanity.reinit`).

    Returns:
        The check; `jax.jit(check.run)` compiles each method once for all stages. Layers that
        re-initialization would not change (only constant-initialized parameters, such as
        BatchNorm's scale and bias with `keep_constant`) are not stages.

    Raises:
        ValueError: For a bad mode, similarity, num_maps, or a model whose layers cannot be
            re-initialized (a plain function).
    """
    if isinstance(num_maps, bool) or not isinstance(num_maps, int) or num_maps < 0:
        raise ValueError(f"num_maps must be an int >= 0; got {num_maps!r}.")
    if not method_fns:
        raise ValueError("method_fns is empty; pass at least one attribution method.")
    sims = {name: get_similarity(name) for name in similarities}
    classifier = as_classifier(model, variables, input_shape)
    # A hand-made Classifier has no kind: as a plain function it cannot be re-initialized.
    kind = classifier.kind or kind_of(classifier.apply_fn)
    variables = classifier.variables if variables is None else kind.variables_of(variables)
    owners = leaf_layers(classifier, variables, seed, input_shape, keep_constant)
    # Only layers that re-initialization changes are stages.
    layers = [name for name in layer_order(variables, classifier, input_shape)
              if name in owners]
    groups = stages(mode, layers)
    fresh = random_variables(classifier, variables, seed, input_shape)
    # Row 0 is the trained model; row s marks the layers random at stage s.
    mask = np.zeros((len(groups) + 1, len(layers)), bool)
    for s, group in enumerate(groups, start=1):
        mask[s, [layers.index(name) for name in group]] = True
    leaf_index = [layers.index(o) if o in layers else None for o in owners]
    fns = dict(method_fns)

    def staged_maps(variables: Any, random_variables: Any, images: jax.Array, key: jax.Array,
                    rows: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
        variables = kind.variables_of(variables)

        def stage(row: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
            trained, treedef = jax.tree.flatten(variables)
            random = jax.tree.leaves(random_variables)
            staged = jax.tree.unflatten(treedef, [
                t if i is None else jnp.where(row[i], r, t)
                for i, r, t in zip(leaf_index, random, trained, strict=True)])
            targets = classifier.predicted_targets(staged, images)
            return {m: fn(staged, images, targets, key) for m, fn in fns.items()}, targets

        # One traced body for all stages: each method compiles once, not once per stage. Its
        # convolutions in XLA:CPU's fast layouts, which it gives only outside loops
        # (`_conv_layout`): the default SanityCallback's firing 1.4 s instead of 2.1 s.
        return jax.lax.map(canonical_convs(stage), rows)

    def summarize(maps: dict[str, jax.Array], targets: jax.Array) -> dict[str, Any]:
        # All methods at once: each similarity compiles once, not once per method.
        stacked = jnp.stack([maps[m] for m in fns])  # [M, S + 1, N, H, W, C]
        per_stage = {s: jnp.mean(jax.vmap(jax.vmap(f, (None, 0)))(stacked[:, 0], stacked[:, 1:]),
                                 axis=-1) for s, f in sims.items()}  # [M, S]
        scores = {m: {s: v[i] for s, v in per_stage.items()} for i, m in enumerate(fns)}
        kept = {m: v[:, :num_maps] for m, v in maps.items()}
        return {"scores": scores, "maps": kept, "targets": targets}

    def run(variables: Any, random_variables: Any, images: jax.Array,
            key: jax.Array) -> dict[str, Any]:
        return summarize(*staged_maps(variables, random_variables, images, key,
                                      jnp.asarray(mask)))

    return RandomizationCheck(
        mode=mode, layers=tuple(layers), stages=tuple(tuple(g) for g in groups),
        stage_names=tuple(g[-1] for g in groups), methods=tuple(fns),
        similarities=tuple(sims), random_variables=fresh, mask=mask, staged_maps=staged_maps,
        summarize=summarize, run=run)


def run_together(checks: Sequence[RandomizationCheck], variables: Any, random_variables: Any,
                 images: jax.Array, key: jax.Array) -> dict[str, dict[str, Any]]:
    """Runs checks of one model and one set of methods (e.g. cascading and independent) as
    one `lax.map` over all their stages, the trained model once: each method is traced and
    compiled once for all of them, not once per check.

    Returns:
        `{check.mode: check.run(...)'s result}`, the same values as running each check alone.

    Raises:
        ValueError: If the checks differ in model layers or methods.
    """
    first = checks[0]
    for check in checks[1:]:
        if (check.layers, check.methods) != (first.layers, first.methods):
            raise ValueError("run_together needs checks built for the same model and methods.")
    rows = np.concatenate([first.mask[:1], *(check.mask[1:] for check in checks)])
    maps, targets = first.staged_maps(variables, random_variables, images, key,
                                      jnp.asarray(rows))
    out, start = {}, 1
    for check in checks:
        picked = np.concatenate([[0], np.arange(start, start + len(check.stages))])
        out[check.mode] = check.summarize({m: v[picked] for m, v in maps.items()},
                                          targets[picked])
        start += len(check.stages)
    return out


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
    method_fns: Mapping[str, AttributionFn], model: Any, variables: Any,
    images: jax.Array, *, mode: str = "cascading", seed: int = 0, key: jax.Array | None = None,
    similarities: Sequence[str] = DEFAULT_SIMILARITIES, num_maps: int = 2,
    keep_constant: bool = True,
) -> RandomizationResult:
    """Runs the randomization test once (builds, jits and runs `make_randomization_check`).

    Args:
        method_fns, model, variables, mode, seed, similarities, num_maps, keep_constant: As
            for `make_randomization_check`.
        images: Probe images `[N, H, W, C]`.
        key: PRNG key for stochastic methods (the same for every stage); None uses key 0.

    Returns:
        The scores, stage names, maps and predicted targets as numpy arrays.
    """
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C]; got shape {images.shape}.")
    variables = model_variables(model, variables)  # None: an NNX or Keras model's own.
    check = make_randomization_check(
        method_fns, model, variables, tuple(int(d) for d in images.shape[1:]), mode=mode,
        seed=seed, similarities=similarities, num_maps=num_maps, keep_constant=keep_constant)
    key = jax.random.key(0) if key is None else key
    out = jax.device_get(jax.jit(check.run)(variables, check.random_variables, images, key))
    return RandomizationResult(scores=out["scores"], stage_names=list(check.stage_names),
                               maps=out["maps"], targets=out["targets"])
