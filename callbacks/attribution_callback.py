"""AttributionCallback: explain a fixed probe set at every firing and log it to TensorBoard.

Tags written at every firing, at the global optimizer step (the interface; see README):
  attributions/overview               grid: probe digits x (input + each method)
  evolution/<method>                  grid: probe digits x every firing so far
  methods/<method>                    grid: probe digits x (input, map, overlay)
  drift/<method>/to_previous          similarity of the maps to the previous firing's
  drift/<method>/to_first             ... and to the first firing's (from the 2nd firing)
  drift/curves                        image: to_previous per method against the step
  probes/confidence, probes/accuracy, probes/true_class_probability
  timing/attribution_ms               compute time of the firing (the prediction and every method)
  timing/attribution_ms/<method>      compute time of each method (with per_method_timing)
"""

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import attribution
from attribution import method_sets, render
from attribution.sanity import drift as drift_scores
from attribution.sanity.similarity import get_similarity
from callbacks import grids
from callbacks.background import BackgroundJobs
from callbacks.base import checked_probes, expand_sets, method_options
from callbacks.drift_plot import drift_plot
from callbacks.history import History, HistoryWriter
from callbacks.model import CallbackModel
from callbacks.schedule import Schedule
from callbacks.scheduled import ScheduledCallback

TARGETS = ("label", "predicted")
GRADIENT_FAMILY = ("gradient", "gradient_x_input", "integrated_gradients", "smoothgrad")


def overview_groups(names: Sequence[str], columns: int) -> dict[str, list[str]]:
    """Overview tag -> its methods: one grid if they fit in `columns`, else one per family
    (in the order families first appear), cut into grids of `columns`."""
    if len(names) <= columns:
        return {"attributions/overview": list(names)}
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(attribution.get(name).family, []).append(name)
    groups = {}
    for family, members in families.items():
        parts = [members[i:i + columns] for i in range(0, len(members), columns)]
        for k, part in enumerate(parts):
            suffix = f"_{k + 1}" if len(parts) > 1 else ""
            groups[f"attributions/overview/{family}{suffix}"] = part
    return groups


def finite_or_blank(maps: Mapping[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """`maps` with every map that holds NaN or inf replaced by zeros (drawn blank), warned.

    A model whose parameters diverged gives such maps; drawing them would show noise.
    """
    out = {}
    for name, m in maps.items():
        if np.isfinite(m).all():
            out[name] = m
            continue
        warnings.warn(f"{where}: the {name} maps hold NaN or inf values (did the parameters "
                      "diverge?); they are drawn blank.", RuntimeWarning, stacklevel=2)
        out[name] = np.zeros_like(m)
    return out


def _shardings(mesh: Mesh) -> tuple[NamedSharding, NamedSharding]:
    """(axis 0 split over the mesh's first axis, replicated)."""
    return (NamedSharding(mesh, PartitionSpec(mesh.axis_names[0])),
            NamedSharding(mesh, PartitionSpec()))


def _mesh_jit(fn: Callable, mesh: Mesh | None, num_args: int, split_outs: tuple[bool, ...],
              split_key: bool | Mapping[str, bool] = False) -> Any:
    """jax.jit of `fn(variables, images, targets[, key])`, the probe batch split over `mesh`.

    Each device runs `fn` on its own probes alone (shard_map): a probe's map does not depend on
    the rest of the batch. Variables are replicated; images and targets split along axis 0, and
    the key too where `split_key` is True (one key per probe, for stochastic methods), else
    replicated; `split_key` may be a mapping, for a mapping of keys (method -> key).
    Outputs are replicated, so that any process can copy them to its host, except where
    `split_outs` is True.
    """
    if mesh is None:
        return jax.jit(fn)
    split, whole = _shardings(mesh)
    keys = jax.tree.map(lambda s: split if s else whole, split_key)
    in_shardings = (whole, split, split, keys)[:num_args]
    outs = tuple(split if s else whole for s in split_outs)
    # Every output of a device holds its own probes' rows; jit gathers the whole ones. No
    # collectives inside, so no replication typing (methods need not be written for it).
    out_specs = tuple(split.spec for _ in outs)
    in_specs = jax.tree.map(lambda s: s.spec, in_shardings,
                            is_leaf=lambda s: isinstance(s, NamedSharding))
    fn = jax.shard_map(fn, mesh=mesh, in_specs=in_specs,
                       out_specs=out_specs if len(outs) > 1 else out_specs[0], check_vma=False)
    return jax.jit(fn, in_shardings=in_shardings,
                   out_shardings=outs if len(outs) > 1 else outs[0])


class AttributionCallback(ScheduledCallback):
    """Computes attribution maps for fixed probe digits on a schedule and logs them.

    Every method is compiled once, ahead of time, at `on_train_begin` (where a
    method that does not apply to the model raises ValueError, before any
    training); firings reuse the compiled code with the current parameters. All
    methods (and the probes' prediction) are one program: XLA compiles it in about
    half the time of one program per method (their forward passes are shared, and each
    program has a fixed cost), and runs independent methods side by side, so its peak
    memory can approach the sum of the methods' rather than the largest one's. With
    `per_method_timing`, each method is its own program, timed alone (and run one at a
    time).
    Each firing copies its results to the host once; rendering and writing then
    run on a background thread, so training waits only for the compute.

    TensorBoard step: the global optimizer step (0 = the untrained model), whatever the
    schedule. With a `history_dir`, every firing's maps are also kept there
    (`callbacks.history`), and a resumed run continues that history: the evolution images,
    rewritten at every firing, span every firing since the start.

    With a `mesh`, the probe batch is split over its devices along axis 0 (padded
    with copies of the last probe to a multiple of the device count; the padding
    is dropped from the results), the parameters are replicated, and each device
    explains its own probes; a stochastic method (SmoothGrad) gets one key per
    probe (`attribution.example_keys`), split with the probes. The maps equal those
    computed on one device. Under
    `jax.distributed`, every process must fire (the computation spans all of
    them); give processes other than 0 a writer that writes nothing (and no history_dir).
    """

    def __init__(
        self,
        model: Any,
        probe_images: np.ndarray,
        probe_labels: np.ndarray,
        writer: Any,
        methods: Sequence[str] | Mapping[str, Mapping[str, Any]] = GRADIENT_FAMILY,
        schedule: str | Schedule | Sequence[int] = "log",
        at_start: bool = True,
        targets: str = "label",
        percentile: float = 99.0,
        scale: str = "per_method",
        seed: int = 0,
        evolution: bool = True,
        overview_columns: int = 12,
        mesh: Mesh | None = None,
        *,
        history_dir: str | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        logits: Any = None,
        preprocess: Callable[[jax.Array], jax.Array] | None = None,
        drift_similarity: str = drift_scores.DEFAULT_SIMILARITY,
        settle_threshold: float = drift_scores.DEFAULT_THRESHOLD,
        per_method_timing: bool = False,
    ):
        """Configures the callback; nothing is compiled or written until `on_train_begin`.

        Args:
          model: a flax.linen.Module, a flax.nnx.Module, or an apply function
            (variables, images) -> logits; run in evaluation mode.
          probe_images: float images [P, H, W, C], the same every firing: the pixels the
            model takes (after `preprocess`); shown in their own range if not in [0, 1].
          probe_labels: int labels [P].
          writer: anything with CLU's MetricWriter methods (write_images, write_scalars, flush).
          methods: method names, or a mapping name -> options (see attribution.names()).
          schedule: when to fire (see `callbacks.schedule`): "log" (steps 0, 1, 2, 4, ...
            through the first epoch, then every epoch), "epochs:N", "steps:N",
            "at:S1,S2,..." or a list of global steps, "never".
          at_start: fire at on_train_begin on the untrained model (step 0), where the
            schedule includes step 0.
          targets: explain the true "label" or the "predicted" class.
          percentile: clipping percentile of the colour scales.
          scale: "per_method" (a probe's maps share one scale across firings, so growth and
            fading show) or "per_map" (each map to its own percentile); see callbacks.grids.
          seed: PRNG seed for stochastic methods (the same noise every firing).
          evolution: write one image per method with every firing as a column.
          overview_columns: at most this many methods per overview grid; with more, the
            overview is split by method family (`attributions/overview/<family>`, and
            `<family>_<k>` for a family that needs several grids).
          mesh: a 1-D device mesh to split the probe batch over; None: one device.
          history_dir: a folder to keep every firing's maps in (see callbacks.history);
            None: kept in memory only, for this run.
          model_kwargs: keywords for every model call (see attribution.as_classifier).
          logits: where the logits are in the model's output: an index, a key or a function.
          preprocess: a function applied to the images inside the model call (e.g. a
            mean / std standardization), so the probes stay displayable pixels.
          drift_similarity: how drift compares a firing's maps with the previous and the
            first firing's (a name from attribution.sanity.SIMILARITIES).
          settle_threshold: a method has settled once its similarity to the previous firing
            stays at or above this (marked in drift/curves).
          per_method_timing: compile each method as its own program and log its time
            (`timing/attribution_ms/<method>`, `method_timings`); the default compiles all
            methods as one program, faster to compile and to run, timed as a whole.
        """
        super().__init__(schedule, at_start)
        probe_images, probe_labels = checked_probes(probe_images, probe_labels)
        self._range = render.display_range(probe_images)
        if targets not in TARGETS:
            raise ValueError(f"Unknown targets {targets!r}; valid: {', '.join(TARGETS)}.")
        self.scale = grids.check_scale(scale)
        render.percentile_scales(np.zeros((1, 1, 1)), percentile)  # Fails here if out of range.
        self.methods = method_options(methods)
        get_similarity(drift_similarity)  # Fails here, before training.
        if not 0.0 <= float(settle_threshold) <= 1.0:
            raise ValueError(f"settle_threshold must be in [0, 1]; got {settle_threshold!r}.")
        self.drift_similarity = drift_similarity
        self.settle_threshold = float(settle_threshold)
        if not isinstance(per_method_timing, (bool, np.bool_)):
            raise ValueError(f"per_method_timing must be True or False; got {per_method_timing!r}.")
        self.per_method_timing = bool(per_method_timing)
        self.model = model
        self._model = CallbackModel(model, model_kwargs, logits, preprocess)
        self.images = probe_images
        self.labels = probe_labels
        self.writer = writer
        self.targets = targets
        self.percentile = percentile
        self.evolution = evolution
        if isinstance(overview_columns, bool) or not isinstance(overview_columns, int) or (
                overview_columns < 1):
            raise ValueError(f"overview_columns must be an int >= 1; got {overview_columns!r}.")
        self.overview_columns = overview_columns
        self.mesh = mesh
        self.history_dir = history_dir
        self._history_writer: HistoryWriter | None = None
        self._key = jax.random.key(seed)
        self._compiled: dict[str, Any] | None = None
        self._signed = {name: attribution.get(name).signed for name in self.methods
                        if name not in method_sets.SETS}
        # Every firing's host maps and clip values, in step order; owned by the background
        # thread once training runs.
        self._firings: list[dict[str, Any]] = []
        # Maps of the first and the previous firing, on the device; drift per firing, host.
        self._first_maps: dict[str, jax.Array] | None = None
        self._previous_maps: dict[str, jax.Array] | None = None
        self.drift: list[tuple[int, dict[str, dict[str, float]]]] = []
        self._background = BackgroundJobs("attribution")
        self.compile_seconds = 0.0
        self.timings: list[float] = []  # Milliseconds of compute per firing (every method).
        # Per firing, method -> milliseconds (with per_method_timing; else empty).
        self.method_timings: list[dict[str, float]] = []

    # Hooks -------------------------------------------------------------------------------------

    def on_train_begin(self, state: Any) -> None:
        """Compiles; continues the history (a resumed run); fires at step 0 on a fresh run."""
        self._expand_sets(self.variables_of(state))
        self.compile(self.variables_of(state))
        if self.history_dir is not None and self._history_writer is None:
            self._history_writer = HistoryWriter(
                self.history_dir, self.images, self.labels, list(self.methods), self._signed,
                {"scale": self.scale, "percentile": self.percentile,
                 "drift_similarity": self.drift_similarity,
                 "settle_threshold": self.settle_threshold})
            step = int(getattr(state, "step", 0) or 0)
            # A fresh run starts a new history; a resumed one keeps the firings up to its step.
            self._restore(self._history_writer.truncate(step if step else -1))
        super().on_train_begin(state)

    def on_train_end(self, state: Any) -> None:
        self.wait()
        self.writer.flush()

    # Work --------------------------------------------------------------------------------------

    def variables_of(self, state: Any) -> Any:
        """The model's variables in a hook's `state` (see `callbacks.model`)."""
        return self._model.variables_of(state)

    def _expand_sets(self, variables: Any) -> None:
        """Method sets become their members that apply to the model (once)."""
        if method_sets.has_sets(self.methods):
            classifier = self._model.classifier(variables, self.images.shape[1:])
            self.methods = expand_sets(self.methods, classifier)
            self._signed = {name: attribution.get(name).signed for name in self.methods}

    def compile(self, variables: Any) -> None:
        """Builds and compiles every method for the probe batch (once; later calls do nothing)."""
        if self._compiled is not None:
            return
        self._expand_sets(variables)
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
        fns, self._keys, split_keys = {}, {}, {}
        for name, opts in self.methods.items():
            fns[name] = attribution.build(name, classifier, variables, shape, **opts)
            # On a mesh, a stochastic method gets one key per probe, split with the probes, so
            # each device draws its probes' noise as one device would for the whole batch.
            split_keys[name] = self.mesh is not None and attribution.get(name).stochastic
            key = self._key
            if split_keys[name]:
                # Raw key data from the host, as the images: a device array held by one
                # process cannot be placed on a mesh spanning several.
                raw = np.asarray(jax.random.key_data(attribution.example_keys(key, len(targets))))
                key = jax.device_put(raw, _shardings(self.mesh)[0])
            self._keys[name] = key

        def predict(variables, images, labels):
            probs = jax.nn.softmax(classifier.logits(variables, images))
            return probs, jnp.argmax(probs, axis=-1).astype(jnp.int32)

        compiled = {}
        if self.per_method_timing:
            for name, fn in fns.items():
                jitted = _mesh_jit(fn, self.mesh, 4, (False,), split_keys[name])
                compiled[name] = jitted.lower(variables, images, targets,
                                              self._keys[name]).compile()
            # Predicted classes stay split: they are the methods' targets.
            jitted = _mesh_jit(predict, self.mesh, 3, (False, True))
            compiled["_predict"] = jitted.lower(variables, images, targets).compile()
        else:
            by_label = self.targets == "label"

            def firing(variables, images, labels, keys):
                probs, predicted = predict(variables, images, labels)
                targets = labels if by_label else predicted
                return probs, {name: fn(variables, images, targets, keys[name])
                               for name, fn in fns.items()}

            jitted = _mesh_jit(firing, self.mesh, 4, (False, False), split_keys)
            compiled["_firing"] = jitted.lower(variables, images, targets,
                                               self._keys).compile()
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
        start = time.perf_counter()
        if self.per_method_timing:
            probs, predicted = self._compiled["_predict"](variables, self._images, self._labels)
            targets = self._labels if self.targets == "label" else predicted
            maps, times = {}, {}
            for name in self.methods:
                method_start = time.perf_counter()
                maps[name] = self._compiled[name](variables, self._images, targets,
                                                  self._keys[name])
                maps[name].block_until_ready()
                times[name] = 1000.0 * (time.perf_counter() - method_start)
            self.method_timings.append(times)
        else:
            probs, maps = self._compiled["_firing"](variables, self._images, self._labels,
                                                    self._keys)
            times = {}
            jax.block_until_ready(maps)
        self.timings.append(1000.0 * (time.perf_counter() - start))
        drift = None
        if self._first_maps is None:
            self._first_maps = maps
        else:
            drift = self._compiled["_drift"](self._first_maps, self._previous_maps, maps)
        self._previous_maps = maps
        # The one copy per firing.
        host_maps, host_probs, drift = jax.device_get((maps, probs, drift))
        count = len(self.labels)  # Drops the mesh's padding.
        host_maps = {name: host_maps[name][:count] for name in self.methods}  # Config order.
        host_probs = np.asarray(host_probs[:count])
        # The targets as the methods got them: predictions are the argmax of the same probs.
        host_targets = self.labels if self.targets == "label" else host_probs.argmax(-1)
        if drift is not None:
            self.drift.append((step, {m: {k: float(v) for k, v in d.items()}
                                      for m, d in drift.items()}))
        self._background.submit(self._render_and_write, step, self.epoch_of(step), host_maps,
                                host_probs, host_targets, self.timings[-1], times,
                                list(self.drift))
        return host_maps

    def wait(self) -> None:
        """Blocks until every queued render-and-write is done; re-raises its error."""
        self._background.wait()

    def _restore(self, history: History) -> None:
        """Continues from a stored history: its firings, drift and first / previous maps."""
        if not len(history.steps):
            return
        for k, step in enumerate(history.steps):
            maps = {name: history.maps[name][k] for name in self.methods}
            epoch = None if np.isnan(history.epochs[k]) else float(history.epochs[k])
            self._firings.append(self._firing(int(step), epoch, maps,
                                              history.predicted[k], history.confidence[k]))
            drift = {m: {key: float(values[key][k]) for key in values}
                     for m, values in history.drift.items()}
            if k and not any(np.isnan(v) for d in drift.values() for v in d.values()):
                self.drift.append((int(step), drift))
        pad = 0 if self.mesh is None else -len(self.labels) % self.mesh.size
        whole = None if self.mesh is None else _shardings(self.mesh)[1]

        def on_device(k):
            return {name: jax.device_put(np.concatenate(
                [m[k], np.repeat(m[k][-1:], pad, 0)]), whole) for name, m in
                history.maps.items()}

        self._first_maps, self._previous_maps = on_device(0), on_device(-1)
        self.last_fired = int(history.steps[-1])

    def _firing(self, step: int, epoch: float | None, maps: dict[str, np.ndarray],
                predicted: np.ndarray, confidence: np.ndarray) -> dict[str, Any]:
        return {"step": step, "epoch": epoch, "maps": maps,
                "rows": grids.row_labels(self.labels, predicted, confidence),
                "clips": {name: grids.clip_values(m, self._signed[name], self.percentile)
                          for name, m in maps.items()}}

    # Rendering (background thread) -------------------------------------------------------------

    def _render_and_write(self, step: int, epoch: float | None, maps: dict[str, np.ndarray],
                          probs: np.ndarray, targets: np.ndarray, total_ms: float,
                          times: dict[str, float],
                          drift: list[tuple[int, dict[str, dict[str, float]]]]) -> None:
        maps = finite_or_blank(maps, f"AttributionCallback at step {step}")
        predicted, confidence = probs.argmax(-1), probs.max(-1)
        this_drift = drift[-1][1] if drift and drift[-1][0] == step else None
        if self._history_writer is not None:  # Kept before it is shown.
            self._history_writer.append(step, epoch, maps, targets, predicted, confidence,
                                        this_drift)
        firing = self._firing(step, epoch, maps, predicted, confidence)
        self._firings.append(firing)
        digits = render.digit_to_rgb(self.images, self._range)
        names = list(self.methods)
        coloured, normalized = {}, {}
        for name in names:
            clips = np.stack([f["clips"][name] for f in self._firings])
            scales = grids.firing_scales(clips, self.scale)[-1]
            coloured[name], normalized[name] = grids.colour(maps[name], self._signed[name],
                                                            scales)
        rows = firing["rows"]
        images = {tag: grids.overview(digits, {n: coloured[n] for n in group}, rows,
                                      self._legend(group))
                  for tag, group in overview_groups(names, self.overview_columns).items()}
        for name in names:
            images[f"methods/{name}"] = grids.method_grid(
                name, digits, coloured[name], normalized[name], self.images, self._range, rows,
                self._legend([name]))
        if self.evolution:
            images.update(self._evolution_images())
        if this_drift is not None:
            curves = {name: ([s for s, _ in drift], [d[name]["to_previous"] for _, d in drift])
                      for name in names}
            images["drift/curves"] = drift_plot(
                curves, self.settle_threshold,
                title=f"{self.drift_similarity} to the previous firing, step {step}")
        self.writer.write_images(step, images)
        scalars = {}
        if this_drift is not None:
            for name in names:
                for key, value in this_drift[name].items():
                    scalars[f"drift/{name}/{key}"] = value
        scalars["probes/confidence"] = float(confidence.mean())
        scalars["probes/accuracy"] = float((predicted == self.labels).mean())
        scalars["probes/true_class_probability"] = float(
            np.take_along_axis(probs, self.labels[:, None], 1).mean())
        scalars["timing/attribution_ms"] = total_ms
        scalars.update({f"timing/attribution_ms/{name}": t for name, t in times.items()})
        self.writer.write_scalars(step, scalars)

    def _legend(self, names: Sequence[str]) -> list[tuple[str, str]]:
        return grids.legend(names, self._signed, self.scale, self.percentile)

    def _evolution_images(self) -> dict[str, np.ndarray]:
        """Per method: probes x every firing so far (background thread)."""
        columns = [grids.column_label(f["step"], f["epoch"] if f["epoch"] is not None
                                      else self.epoch_of(f["step"])) for f in self._firings]
        return {
            f"evolution/{name}": grids.evolution(
                np.stack([f["maps"][name] for f in self._firings]), self._signed[name],
                np.stack([f["clips"][name] for f in self._firings]), self.scale, self.labels,
                columns, self._legend([name]))
            for name in self.methods
        }
