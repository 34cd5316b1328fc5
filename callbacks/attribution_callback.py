"""AttributionCallback: explain a fixed probe set at every firing and log it to TensorBoard.

Tags written (the interface; see README):
  attributions/overview               grid: probe digits x (input + each method)
  attributions/<method>               grid: probe digits x (input, map, overlay)
  attributions/evolution/<method>     at on_train_end: probe digits x firings
  attribution_time_ms/<method>        compute time of each method, per firing
  probes/confidence, probes/accuracy, probes/true_class_probability
  drift/<method>/to_previous          similarity of the maps to the previous firing's
  drift/<method>/to_first             ... and to the first firing's (from the 2nd firing)
  drift/curves                        image: to_previous per method against the step
"""

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import attribution
from attribution import render
from attribution.sanity import drift as drift_scores
from attribution.sanity.similarity import get_similarity
from callbacks.background import BackgroundJobs
from callbacks.base import Callback, Logs, checked_probes, method_options
from callbacks.drift_plot import drift_plot
from callbacks.model import CallbackModel
from callbacks.titles import METHOD_TITLES

TARGETS = ("label", "predicted")
GRADIENT_FAMILY = ("gradient", "gradient_x_input", "integrated_gradients", "smoothgrad")


def _shardings(mesh: Mesh) -> tuple[NamedSharding, NamedSharding]:
    """(axis 0 split over the mesh's first axis, replicated)."""
    return (NamedSharding(mesh, PartitionSpec(mesh.axis_names[0])),
            NamedSharding(mesh, PartitionSpec()))


def _mesh_jit(fn: Callable, mesh: Mesh | None, num_args: int, split_outs: tuple[bool, ...],
              split_key: bool = False) -> Any:
    """jax.jit of `fn(variables, images, targets[, key])`, the probe batch split over `mesh`.

    Each device runs `fn` on its own probes alone (shard_map): a probe's map does not depend on
    the rest of the batch. Variables are replicated; images and targets split along axis 0, and
    the key too with `split_key` (one key per probe, for stochastic methods), else replicated.
    Outputs are replicated, so that any process can copy them to its host, except where
    `split_outs` is True.
    """
    if mesh is None:
        return jax.jit(fn)
    split, whole = _shardings(mesh)
    in_shardings = (whole, split, split, split if split_key else whole)[:num_args]
    outs = tuple(split if s else whole for s in split_outs)
    # Every output of a device holds its own probes' rows; jit gathers the whole ones. No
    # collectives inside, so no replication typing (methods need not be written for it).
    out_specs = tuple(split.spec for _ in outs)
    fn = jax.shard_map(fn, mesh=mesh, in_specs=tuple(s.spec for s in in_shardings),
                       out_specs=out_specs if len(outs) > 1 else out_specs[0], check_vma=False)
    return jax.jit(fn, in_shardings=in_shardings,
                   out_shardings=outs if len(outs) > 1 else outs[0])


class AttributionCallback(Callback):
    """Computes attribution maps for fixed probe digits on a schedule and logs them.

    Every method is compiled once, ahead of time, at `on_train_begin` (where a
    method that does not apply to the model raises ValueError, before any
    training); firings reuse the compiled code with the current parameters.
    Each firing copies its results to the host once; rendering and writing then
    run on a background thread, so training waits only for the compute.

    TensorBoard step: the epoch (epoch 0 = the untrained model), or the global
    step when `every_n_steps` is set.

    With a `mesh`, the probe batch is split over its devices along axis 0 (padded
    with copies of the last probe to a multiple of the device count; the padding
    is dropped from the results), the parameters are replicated, and each device
    explains its own probes; a stochastic method (SmoothGrad) gets one key per
    probe (`attribution.example_keys`), split with the probes. The maps equal those
    computed on one device. Under
    `jax.distributed`, every process must fire (the computation spans all of
    them); give processes other than 0 a writer that writes nothing.
    """

    def __init__(
        self,
        model: Any,
        probe_images: np.ndarray,
        probe_labels: np.ndarray,
        writer: Any,
        methods: Sequence[str] | Mapping[str, Mapping[str, Any]] = GRADIENT_FAMILY,
        every_n_epochs: int = 1,
        every_n_steps: int = 0,
        at_start: bool = True,
        targets: str = "label",
        percentile: float = 99.0,
        seed: int = 0,
        evolution: bool = True,
        mesh: Mesh | None = None,
        *,
        model_kwargs: Mapping[str, Any] | None = None,
        logits: Any = None,
        preprocess: Callable[[jax.Array], jax.Array] | None = None,
        drift_similarity: str = drift_scores.DEFAULT_SIMILARITY,
        settle_threshold: float = drift_scores.DEFAULT_THRESHOLD,
    ):
        """Configures the callback; nothing is compiled until `on_train_begin`.

        Args:
          model: a flax.linen.Module, a flax.nnx.Module, or an apply function
            (variables, images) -> logits; run in evaluation mode.
          probe_images: float images [P, H, W, C], the same every firing: the pixels the
            model takes (after `preprocess`); shown in their own range if not in [0, 1].
          probe_labels: int labels [P].
          writer: anything with CLU's MetricWriter methods (write_images, write_scalars, flush).
          methods: method names, or a mapping name -> options (see attribution.names()).
          every_n_epochs: fire after every N-th epoch; 0 never.
          every_n_steps: also fire after every N-th optimizer step; 0 never.
          at_start: fire once at on_train_begin, on the untrained model (epoch 0).
          targets: explain the true "label" or the "predicted" class.
          percentile: per-map clipping percentile for colour scales.
          seed: PRNG seed for stochastic methods (the same noise every firing).
          evolution: at on_train_end, write one image per method with firings as columns.
          mesh: a 1-D device mesh to split the probe batch over; None: one device.
          model_kwargs: keywords for every model call (see attribution.as_classifier).
          logits: where the logits are in the model's output: an index, a key or a function.
          preprocess: a function applied to the images inside the model call (e.g. a
            mean / std standardization), so the probes stay displayable pixels.
          drift_similarity: how drift compares a firing's maps with the previous and the
            first firing's (a name from attribution.sanity.SIMILARITIES).
          settle_threshold: a method has settled once its similarity to the previous firing
            stays at or above this (marked in drift/curves).
        """
        probe_images, probe_labels = checked_probes(probe_images, probe_labels)
        self._range = render.display_range(probe_images)
        if targets not in TARGETS:
            raise ValueError(f"Unknown targets {targets!r}; valid: {', '.join(TARGETS)}.")
        if every_n_epochs < 0 or every_n_steps < 0:
            raise ValueError("every_n_epochs and every_n_steps must be >= 0.")
        self.methods = method_options(methods)
        get_similarity(drift_similarity)  # Fails here, before training.
        if not 0.0 <= float(settle_threshold) <= 1.0:
            raise ValueError(f"settle_threshold must be in [0, 1]; got {settle_threshold!r}.")
        self.drift_similarity = drift_similarity
        self.settle_threshold = float(settle_threshold)
        self.model = model
        self._model = CallbackModel(model, model_kwargs, logits, preprocess)
        self.images = probe_images
        self.labels = probe_labels
        self.writer = writer
        self.every_n_epochs = every_n_epochs
        self.every_n_steps = every_n_steps
        self.at_start = at_start
        self.targets = targets
        self.percentile = percentile
        self.evolution = evolution
        self.mesh = mesh
        self._key = jax.random.key(seed)
        self._compiled: dict[str, Any] | None = None
        self._signed = {name: attribution.get(name).signed for name in self.methods}
        self._history: list[tuple[int, dict[str, np.ndarray]]] = []
        # Maps of the first and the previous firing, on the device; drift per firing, host.
        self._first_maps: dict[str, jax.Array] | None = None
        self._previous_maps: dict[str, jax.Array] | None = None
        self.drift: list[tuple[int, dict[str, dict[str, float]]]] = []
        self._background = BackgroundJobs("attribution")
        self.last_step = 0
        self.compile_seconds = 0.0
        self.timings: list[dict[str, float]] = []

    # Hooks -------------------------------------------------------------------------------------

    def on_train_begin(self, state: Any) -> None:
        self.compile(self.variables_of(state))
        fresh = int(getattr(state, "step", 0)) == 0  # A resumed run has no epoch 0 to show.
        if self.at_start and fresh:
            self.fire(0, state)

    def on_train_batch_end(self, step: int, state: Any, logs: Logs = None) -> None:
        self.last_step = step
        if self.every_n_steps and step % self.every_n_steps == 0:
            self.fire(step, state)

    def on_epoch_end(self, epoch: int, state: Any, logs: Logs = None) -> None:
        if self.every_n_epochs and epoch % self.every_n_epochs == 0:
            self.fire(self.last_step if self.every_n_steps else epoch, state)

    def on_train_end(self, state: Any) -> None:
        self.wait()
        if self.evolution and self._history:
            self.writer.write_images(self._history[-1][0], self._evolution_images())
        self.writer.flush()

    # Work --------------------------------------------------------------------------------------

    def variables_of(self, state: Any) -> Any:
        """The model's variables in a hook's `state` (see `callbacks.model`)."""
        return self._model.variables_of(state)

    def compile(self, variables: Any) -> None:
        """Builds and compiles every method for the probe batch (once; later calls do nothing)."""
        if self._compiled is not None:
            return
        start = time.perf_counter()
        shape = self.images.shape[1:]
        classifier = self._model.classifier(variables, shape)
        images, targets = jnp.asarray(self.images), jnp.asarray(self.labels)
        if self.mesh is not None:
            split, whole = _shardings(self.mesh)
            pad = -len(self.labels) % self.mesh.size
            images, targets = (jax.device_put(np.concatenate([a, np.repeat(a[-1:], pad, 0)]),
                                              split) for a in (self.images, self.labels))
            variables = jax.device_put(variables, whole)
        compiled, self._keys = {}, {}
        for name, opts in self.methods.items():
            fn = attribution.build(name, classifier, variables, shape, **opts)
            # On a mesh, a stochastic method gets one key per probe, split with the probes, so
            # each device draws its probes' noise as one device would for the whole batch.
            split_key = self.mesh is not None and attribution.get(name).stochastic
            key = self._key
            if split_key:
                # Raw key data from the host, as the images: a device array held by one
                # process cannot be placed on a mesh spanning several.
                raw = np.asarray(jax.random.key_data(attribution.example_keys(key, len(targets))))
                key = jax.device_put(raw, _shardings(self.mesh)[0])
            self._keys[name] = key
            jitted = _mesh_jit(fn, self.mesh, 4, (False,), split_key)
            compiled[name] = jitted.lower(variables, images, targets, key).compile()

        def predict(variables, images, labels):
            probs = jax.nn.softmax(classifier.logits(variables, images))
            return probs, jnp.argmax(probs, axis=-1).astype(jnp.int32)

        # Predicted classes stay split: they are the methods' targets.
        jitted = _mesh_jit(predict, self.mesh, 3, (False, True))
        compiled["_predict"] = jitted.lower(variables, images, targets).compile()
        # Drift compares whole firings; the mesh's padding rows are dropped first.
        drift, count = drift_scores.make_drift(self.drift_similarity), len(self.labels)
        spec = jax.ShapeDtypeStruct(images.shape, jnp.float32,
                                    sharding=None if self.mesh is None else _shardings(
                                        self.mesh)[1])
        all_maps = {name: spec for name in self.methods}
        compiled["_drift"] = jax.jit(lambda first, previous, current: drift(
            *({n: m[:count] for n, m in maps.items()} for maps in (first, previous, current)))
        ).lower(all_maps, all_maps, all_maps).compile()
        self._compiled = compiled
        self._images, self._labels = images, targets
        self.compile_seconds = time.perf_counter() - start

    def fire(self, step: int, state: Any) -> dict[str, np.ndarray]:
        """Explains the probe set with the current parameters and logs it at `step`.

        Returns:
          The maps on the host: method name -> float32 [P, H, W, C].
        """
        self._background.raise_errors()
        variables = self.variables_of(state)
        if self._compiled is None:
            self.compile(variables)
        if self.mesh is not None:  # A no-op for parameters already replicated on the mesh.
            variables = jax.device_put(variables, _shardings(self.mesh)[1])
        probs, predicted = self._compiled["_predict"](variables, self._images, self._labels)
        targets = self._labels if self.targets == "label" else predicted
        maps, times = {}, {}
        for name in self.methods:
            start = time.perf_counter()
            maps[name] = self._compiled[name](variables, self._images, targets,
                                              self._keys[name])
            maps[name].block_until_ready()
            times[name] = 1000.0 * (time.perf_counter() - start)
        self.timings.append(times)
        drift = None
        if self._first_maps is None:
            self._first_maps = maps
        else:
            drift = self._compiled["_drift"](self._first_maps, self._previous_maps, maps)
        self._previous_maps = maps
        # The one copy per firing.
        host_maps, host_probs, drift = jax.device_get((maps, probs, drift))
        count = len(self.labels)  # Drops the mesh's padding.
        host_maps = {name: m[:count] for name, m in host_maps.items()}
        host_probs = host_probs[:count]
        if drift is not None:
            self.drift.append((step, {m: {k: float(v) for k, v in d.items()}
                                      for m, d in drift.items()}))
        self._background.submit(self._render_and_write, step, host_maps,
                                np.asarray(host_probs), times, list(self.drift))
        return host_maps

    def wait(self) -> None:
        """Blocks until every queued render-and-write is done; re-raises its error."""
        self._background.wait()

    # Rendering (background thread) -------------------------------------------------------------

    def _render_and_write(self, step: int, maps: dict[str, np.ndarray], probs: np.ndarray,
                          times: dict[str, float],
                          drift: list[tuple[int, dict[str, dict[str, float]]]]) -> None:
        predicted = probs.argmax(-1)
        confidence = probs.max(-1)
        row_labels = [f"{t}>{p} {c:.2f}" for t, p, c in zip(self.labels, predicted, confidence,
                                                             strict=True)]
        digits = render.digit_to_rgb(self.images, self._range)
        colored, overlays = {}, {}
        for name, m in maps.items():
            heat, normalized = render.heatmaps(m, "sum" if self._signed[name] else "abs_sum",
                                               self.percentile)
            colored[name] = heat
            overlays[name] = render.overlay(heat, self.images, weights=np.abs(normalized),
                                            value_range=self._range)
        names = list(self.methods)  # Config order; device_get returns dicts key-sorted.
        overview = np.stack([digits, *(colored[n] for n in names)], axis=1)
        images = {"attributions/overview": render.with_legend(render.grid(
            overview, row_labels, ["input", *(METHOD_TITLES.get(n, n[:10]) for n in names)]),
            self._legend(names))}
        for name in names:
            cells = np.stack([digits, colored[name], overlays[name]], axis=1)
            images[f"attributions/{name}"] = render.with_legend(render.grid(
                cells, row_labels, ["input", METHOD_TITLES.get(name, name[:10]), "overlay"]),
                self._legend([name]))
        self.writer.write_images(step, images)
        scalars = {f"attribution_time_ms/{name}": t for name, t in times.items()}
        scalars["probes/confidence"] = float(confidence.mean())
        scalars["probes/accuracy"] = float((predicted == self.labels).mean())
        scalars["probes/true_class_probability"] = float(
            np.take_along_axis(probs, self.labels[:, None], 1).mean())
        if drift and drift[-1][0] == step:
            for name, values in drift[-1][1].items():
                for key, value in values.items():
                    scalars[f"drift/{name}/{key}"] = value
            curves = {name: ([s for s, _ in drift], [d[name]["to_previous"] for _, d in drift])
                      for name in names}
            self.writer.write_images(step, {"drift/curves": drift_plot(
                curves, self.settle_threshold,
                title=f"{self.drift_similarity} to the previous firing, step {step}")})
        self.writer.write_scalars(step, scalars)
        if self.evolution:
            self._history.append((step, colored))

    def _legend(self, names: Sequence[str]) -> list[tuple[str, str]]:
        """Colour bars for the maps of `names`: signed and magnitude, as they occur."""
        bars = []
        for kind, signed in (("signed", True), ("magnitude", False)):
            titles = [METHOD_TITLES.get(n, n) for n in names if self._signed[n] == signed]
            if titles:
                bars.append((kind, f"{', '.join(titles)}: each map to its own "
                                   f"{self.percentile:g}th percentile"))
        return bars

    def _evolution_images(self) -> dict[str, np.ndarray]:
        unit = "step" if self.every_n_steps else "epoch"
        col_labels = [f"{unit} {step}" for step, _ in self._history]
        row_labels = [str(t) for t in self.labels]
        return {
            f"attributions/evolution/{name}": render.with_legend(render.grid(
                np.stack([colored[name] for _, colored in self._history], axis=1),
                row_labels, col_labels), self._legend([name]))
            for name in self.methods
        }
