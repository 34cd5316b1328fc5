"""SanityCallback: can the maps be trusted? Sanity-check scores logged while the model trains.

Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018: a method whose maps stay the
same when the model's weights are re-initialized does not explain the model. Kindermans et
al. (2019): a reliable method ignores a constant input shift the model compensates. Petsiuk
et al. (2018): removing the pixels a faithful map ranks first makes the class probability fall
fast. The computation lives in `attribution.sanity`; this callback schedules it, copies the
results once per firing and writes them on a background thread.

Tags written (the interface; see README), `<method>` for each checked method:
  sanity/<method>/cascading_spearman_abs      trained vs. all layers re-initialized (1 = same)
  sanity/<method>/cascading_spearman_signed
  sanity/<method>/cascading_ssim
  sanity/<method>/efficient_mprt              entropy rise of the all-random map (eMPRT)
  sanity/<method>/independent_<similarity>/<layer>   only <layer> re-initialized
  sanity/<method>/input_invariance            similarity before / after the shift (1 = invariant)
  sanity/<method>/deletion_auc                lower = more faithful; also for <method> "random"
  sanity/<method>/insertion_auc               higher = more faithful
  sanity/integrated_gradients/completeness_gap   |sum(map) - logit change| / |logit change|
  sanity/<method>/<metric>                    evaluation metrics (`callbacks.sanity_metrics`)
  sanity/verdict                              text: the verdict table (`attribution.verdict`)
  timing/sanity_ms                            compute time of the firing
  sanity/cascading_randomization              image: rows = probe x method, columns = stages
  sanity/similarity_vs_randomized_layers      image: similarity per cascading stage
"""

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import attribution
from attribution import method_sets, render, sanity
from attribution.sanity.input_invariance import DEFAULT_SHIFT, DEFAULT_SIMILARITY
from callbacks.attribution_callback import GRADIENT_FAMILY, finite_or_blank
from callbacks.background import BackgroundJobs
from callbacks.base import checked_probes, expand_sets, method_options
from callbacks.model import CallbackModel
from callbacks.sanity_metrics import DEFAULT_METRICS, MetricFamilies
from callbacks.schedule import Schedule
from callbacks.scheduled import ScheduledCallback
from callbacks.similarity_plot import cumulative_labels, similarity_plot
from callbacks.tags import VERDICT_TAG
from callbacks.titles import METHOD_TITLES

DONE_TAG = "timing/sanity_ms"  # A firing's last tag written, and its time.
RANDOM_BASELINE = "random"  # Faithfulness reference: a fixed uniform-random map per probe.


def probe_subset(total: int, count: int) -> np.ndarray:
    """`count` indices spread evenly over `range(total)`; all of them when `count` is 0 or at
    least `total`.

    Probe sets are ordered by class, so spreading the subset keeps it varied.
    """
    if count <= 0 or count >= total:
        return np.arange(total)
    return np.round(np.linspace(0, total - 1, count)).astype(np.int64)


class SanityCallback(ScheduledCallback):
    """Scores each attribution method's sanity checks on a schedule and logs them.

    Checked on the model's predicted classes (as the paper does), for a subset of the probe
    digits. Off the training path: `on_train_begin` queues the one compilation of every check
    on the callback's background thread and returns; a firing copies the parameters (a
    snapshot the next training steps cannot change) and queues the run, the one host copy of
    its results, the rendering and the writing on the same thread. Training never waits for
    them, only `wait` and `on_train_end` do; `timing/sanity_ms` logs each firing's time from
    the start of its run to its results on the host.

    TensorBoard step: the global optimizer step (0 = the untrained model).
    """

    # A loop saves an epoch's checkpoint without waiting for that epoch's firing (only for
    # earlier ones); given `resume_tags`, a resumed run redoes the firing if it was lost.
    checkpoint_waits = False

    def __init__(
        self,
        model: Any,
        probe_images: np.ndarray,
        probe_labels: np.ndarray,
        writer: Any,
        methods: Sequence[str] | Mapping[str, Mapping[str, Any]] = GRADIENT_FAMILY,
        *,
        num_probes: int = 4,
        schedule: str | Schedule | Sequence[int] = "epochs:2",
        at_start: bool = False,
        at_end: bool = True,
        independent: bool = True,
        figure_probes: int = 1,
        faithfulness_steps: int = 10,
        invariance_shift: float = DEFAULT_SHIFT,
        seed: int = 0,
        model_kwargs: Mapping[str, Any] | None = None,
        logits: Any = None,
        preprocess: Callable[[jax.Array], jax.Array] | None = None,
        resume_tags: Collection[str] | None = None,
        metrics: Sequence[str] | Mapping[str, Mapping[str, Any]] = DEFAULT_METRICS,
        metric_every: Mapping[str, int] | None = None,
    ):
        """Configures the callback; nothing is compiled until `on_train_begin`.

        Args:
          model: a flax.linen.Module or flax.nnx.Module (re-initializing layers needs its
            layers' initializers); run in evaluation mode.
          probe_images: float images [P, H, W, C] (shown in their own range if not in [0, 1]).
          probe_labels: int labels [P] (shown in the figure; targets are the predictions).
          writer: anything with CLU's MetricWriter methods (write_images, write_scalars, flush).
          methods: method names, or a mapping name -> options (see attribution.names()).
          num_probes: probes checked, spread over the probe set; 0: all of them.
          schedule: when to fire (see `callbacks.schedule`): "epochs:N", "steps:N", "log",
            "at:S1,S2,..." or a list of global steps, "never" (see `at_end`).
          at_start: fire at on_train_begin on the untrained model (step 0).
          at_end: at on_train_end, fire on the last step if the schedule skipped it.
          independent: also re-initialize one layer at a time (`independent_*` tags).
          figure_probes: probes shown in the cascading-randomization figure.
          faithfulness_steps: deletion / insertion steps.
          invariance_shift: constant added to the inputs by the input-invariance check.
          seed: seed of the re-initialized weights (never a model's initial weights, see
            `attribution.sanity.reinit`), stochastic methods' noise and the random faithfulness
            baseline; the same every firing, so scores compare across epochs.
          model_kwargs, logits, preprocess: how to call the model (see AttributionCallback).
          resume_tags: for a run resumed at step S (the state's `step`): the tags the event
            files already hold at S (`callbacks.event_files.tags_at_step`; a resumed writer
            hides only later steps). When S is a scheduled epoch end and its firing is not
            complete (its last tag, `timing/sanity_ms`, is missing: a killed run had not
            finished it), the callback fires at S again and writes only the missing tags, so
            no tag shows a step twice. None: no such redo.
          metrics: evaluation metrics (`attribution.metrics`) or families, or metric name ->
            options; the default is the verdict's headline metrics. Empty: none (the verdict
            then reads only the randomization column).
          metric_every: family -> run at every n-th firing (0: never); default every firing.
        """
        probe_images, probe_labels = checked_probes(probe_images, probe_labels)
        self._range = render.display_range(probe_images)
        super().__init__(schedule, at_start)
        for name, value, low in (("num_probes", num_probes, 0),
                                 ("figure_probes", figure_probes, 1),
                                 ("faithfulness_steps", faithfulness_steps, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}; got {value!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0; got {seed!r}.")
        if not np.isfinite(invariance_shift):
            raise ValueError(f"invariance_shift must be a finite number; got {invariance_shift!r}.")
        self._metrics = MetricFamilies(metrics, metric_every)
        self._firings = 0  # Firings queued so far: the metric families' schedule counts them.
        self.methods = method_options(methods)
        if not self.methods:
            raise ValueError("methods is empty; pass at least one attribution method.")
        chosen = probe_subset(len(probe_labels), num_probes)
        self.model = model
        self._model = CallbackModel(model, model_kwargs, logits, preprocess)
        self.images = probe_images[chosen]
        self.labels = probe_labels[chosen]
        self.writer = writer
        self.at_end = at_end
        self.independent = independent
        self.figure_probes = min(figure_probes, len(chosen))
        self.faithfulness_steps = faithfulness_steps
        self.invariance_shift = float(invariance_shift)
        self.seed = seed
        self._signed = {name: attribution.get(name).signed for name in self.methods
                        if name not in method_sets.SETS}
        self._compiled: Any = None
        self._stage_names: dict[str, tuple[str, ...]] = {}
        self._background = BackgroundJobs("sanity")
        self._queued: list[tuple[int, Any]] = []  # (step, future) of each queued firing.
        self.resume_tags = None if resume_tags is None else frozenset(resume_tags)
        self._skip: dict[int, frozenset[str]] = {}  # Tags already written, by step.
        self.compile_seconds = 0.0
        self.timings: list[float] = []  # Milliseconds of compute per firing.

    # Hooks -------------------------------------------------------------------------------------

    def on_train_begin(self, state: Any) -> None:
        self._expand_sets(self.variables_of(state))  # Before the figures need the names.
        self._background.submit(self.compile, snapshot(self.variables_of(state)))
        step = int(getattr(state, "step", 0) or 0)
        if self.resume_tags is not None and step:
            complete = DONE_TAG in self.resume_tags
            self.last_fired = step if complete else step - 1
            self._skip[step] = self.resume_tags
        super().on_train_begin(state)

    def on_train_end(self, state: Any) -> None:
        if self.at_end and self.last_step and self._is_new(self.last_step):
            self._fire_once(self.last_step, state)
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
        """Builds every check and compiles them as one function (once; later calls do nothing)."""
        if self._compiled is not None:
            return
        self._expand_sets(variables)
        start = time.perf_counter()
        shape = self.images.shape[1:]
        n = len(self.labels)
        classifier = model = self._model.classifier(variables, shape)
        fns = {name: attribution.build(name, classifier, variables, shape, **opts)
               for name, opts in self.methods.items()}
        checks = {"cascading": sanity.make_randomization_check(
            fns, model, variables, shape, mode="cascading", seed=self.seed,
            num_maps=n)}
        if self.independent:
            checks["independent"] = sanity.make_randomization_check(
                fns, model, variables, shape, mode="independent", seed=self.seed,
                num_maps=0)
        self._stage_names = {mode: check.stage_names for mode, check in checks.items()}
        # The unshifted side of input invariance is the trained model's maps of the cascade.
        shifted = {name: sanity.make_shifted_maps(
            name, model, variables, shape, shift=self.invariance_shift, options=opts)
            for name, opts in self.methods.items()}
        invariance_similarity = sanity.get_similarity(DEFAULT_SIMILARITY)
        faithfulness = sanity.make_faithfulness(model, variables, shape,
                                                steps=self.faithfulness_steps)
        gap = None
        baseline = self.methods.get("integrated_gradients", {}).get("baseline", 0.0)
        if "integrated_gradients" in self.methods and np.ndim(baseline) == 0:
            gap = sanity.make_completeness_gap(model, variables, shape, baseline=float(baseline))
        shown = self.figure_probes
        self._metrics.build(classifier, self.methods, fns)

        def kernel(variables, random_variables, random_maps, images, key):
            # Both randomization modes in one loop over their stages: each method compiles
            # once for both (a second loop cost a third of the compile time).
            together = sanity.run_together(list(checks.values()), variables, random_variables,
                                           images, key)
            cascading = together["cascading"]
            targets = cascading["targets"][0]  # The trained model's predictions.
            trained = {m: v[0] for m, v in cascading["maps"].items()}
            out = {
                "cascading": cascading["scores"],
                "maps": {m: v[:, :shown] for m, v in cascading["maps"].items()},
                "targets": cascading["targets"][:, :shown],
                "input_invariance": {m: jnp.mean(invariance_similarity(
                    trained[m], fn(variables, images, targets, key)))
                    for m, fn in shifted.items()},
                "efficient_mprt": {m: jnp.mean(sanity.efficient_mprt(v[0], v[-1]))
                                   for m, v in cascading["maps"].items()},
                "faithfulness": {},
            }
            if "independent" in together:
                out["independent"] = together["independent"]["scores"]
            # Every method's maps and the random ones at once: one copy of the curves' passes.
            scored = {**trained, RANDOM_BASELINE: random_maps}
            curves = jax.vmap(faithfulness, (None, None, None, 0))(
                variables, images, targets, jnp.stack(list(scored.values())))
            for i, m in enumerate(scored):
                out["faithfulness"][m] = {k: jnp.mean(curves[k][i])
                                          for k in ("deletion_auc", "insertion_auc")}
            if gap is not None:
                out["completeness_gap"] = jnp.mean(
                    gap(variables, images, targets, trained["integrated_gradients"]))
            # The metric families of every firing, here; the others in programs of their own,
            # on the trained maps and predictions (popped before the host copy).
            out["metrics"] = self._metrics.inline_means(variables, images, targets, trained,
                                                        random_maps, key)
            out["trained"], out["predicted"] = trained, targets
            return out

        rng = np.random.default_rng(self.seed)
        self._args = (checks["cascading"].random_variables,
                      jnp.asarray(rng.uniform(size=self.images.shape).astype(np.float32)),
                      jnp.asarray(self.images), jax.random.key(self.seed))
        self._compiled = jax.jit(kernel).lower(variables, *self._args).compile()
        _, random_maps, images, key = self._args
        self._metrics.compile(variables, list(self.methods), images, random_maps, key)
        self.compile_seconds = time.perf_counter() - start

    def fire(self, step: int, state: Any) -> None:
        """Queues every check on the current parameters; the scores are logged at `step`."""
        self._background.raise_errors()
        self._queued.append((step, self._background.submit(
            self._run_and_write, step, snapshot(self.variables_of(state)), self._firings)))
        self._firings += 1

    def wait(self, before_step: int | None = None) -> None:
        """Blocks until every queued firing (only those at steps before `before_step`, if
        given) is written; re-raises the first error."""
        if before_step is None:
            self._background.wait()
            self._queued.clear()
            return
        for step, future in [q for q in self._queued if q[0] < before_step]:
            future.result()
            self._queued.remove((step, future))

    # Background thread -------------------------------------------------------------------------

    def _run_and_write(self, step: int, variables: Any, firing: int = 0) -> None:
        self.compile(variables)  # Already done unless fired without on_train_begin.
        start = time.perf_counter()
        out = self._compiled(variables, *self._args)
        trained, predicted = out.pop("trained"), out.pop("predicted")
        _, random_maps, images, key = self._args
        out["metrics"].update(self._metrics.run(self._metrics.due(firing), variables, images,
                                                predicted, trained, random_maps, key))
        host = jax.device_get(out)  # The one host copy.
        self.timings.append(1000.0 * (time.perf_counter() - start))
        self._render_and_write(step, host, self.timings[-1])

    def _render_and_write(self, step: int, out: dict[str, Any], time_ms: float) -> None:
        out = {**out, "maps": finite_or_blank(out["maps"], f"SanityCallback at step {step}")}
        skip = self._skip.pop(step, frozenset())
        scalars = self.scalars(out, time_ms)
        done = {DONE_TAG: scalars.pop(DONE_TAG)}
        images = {
            "sanity/cascading_randomization": self._cascading_figure(out),
            "sanity/similarity_vs_randomized_layers": similarity_plot(
                {m: out["cascading"][m] for m in self.methods},
                self._stage_names["cascading"], title=f"cascading randomization, step {step}"),
        }
        self.writer.write_scalars(step, {k: v for k, v in scalars.items() if k not in skip})
        self.writer.write_images(step, {k: v for k, v in images.items() if k not in skip})
        if VERDICT_TAG not in skip:
            self.writer.write_texts(step, {VERDICT_TAG: self.verdict(out, step)})
        # Last: its presence in the event files marks the firing complete (see `resume_tags`).
        self.writer.write_scalars(step, done)

    def scalars(self, out: dict[str, Any], time_ms: float = 0.0) -> dict[str, float]:
        """The scalar tags of one firing's host results."""
        scalars = {DONE_TAG: time_ms}
        for m in self.methods:
            for s, values in out["cascading"][m].items():
                scalars[f"sanity/{m}/cascading_{s}"] = float(values[-1])
            for s, values in out.get("independent", {}).get(m, {}).items():
                for layer, value in zip(self._stage_names["independent"], values, strict=True):
                    scalars[f"sanity/{m}/independent_{s}/{layer}"] = float(value)
            scalars[f"sanity/{m}/input_invariance"] = float(out["input_invariance"][m])
            scalars[f"sanity/{m}/efficient_mprt"] = float(out["efficient_mprt"][m])
        for m, areas in out["faithfulness"].items():
            for k, value in areas.items():
                scalars[f"sanity/{m}/{k}"] = float(value)
        if "completeness_gap" in out:
            scalars["sanity/integrated_gradients/completeness_gap"] = float(
                out["completeness_gap"])
        scalars.update(self._metrics.record(out.get("metrics", {})))
        return scalars

    def verdict(self, out: dict[str, Any], step: int) -> str:
        """The verdict table (markdown) of one firing's host results and the latest metrics."""
        checks = {m: {f"cascading_{s}": float(v[-1]) for s, v in out["cascading"][m].items()}
                  for m in self.methods}
        return self._metrics.verdict(list(self.methods), checks, step)

    def _cascading_figure(self, out: dict[str, Any]) -> np.ndarray:
        """Rows: each shown probe x each method; columns: input, trained, each stage."""
        rows, row_labels = [], []
        digits = render.digit_to_rgb(self.images[:self.figure_probes], self._range)
        for p in range(self.figure_probes):
            for m in self.methods:
                maps = out["maps"][m][:, p]  # [S + 1, H, W, C]
                heat, _ = render.heatmaps(maps, "sum" if self._signed[m] else "abs_sum")
                rows.append(np.concatenate([digits[p:p + 1], heat]))
                row_labels.append(f"{METHOD_TITLES.get(m, m[:10])}\ndigit {self.labels[p]}")
        col_labels = ["input", "trained", *cumulative_labels(self._stage_names["cascading"])]
        bars = []
        for kind, signed in (("signed", True), ("magnitude", False)):
            titles = [METHOD_TITLES.get(m, m) for m in self.methods if self._signed[m] == signed]
            if titles:
                bars.append((kind, f"{', '.join(titles)}: each map to its own 99th percentile"))
        return render.with_legend(render.grid(np.stack(rows), row_labels, col_labels), bars)


def snapshot(variables: Any) -> Any:
    """A copy of every array leaf (dispatched asynchronously): training steps that donate or
    replace the originals leave it intact while a background firing reads it."""
    leaves, treedef = jax.tree.flatten(variables)
    copies = iter(_copy_all([leaf for leaf in leaves if isinstance(leaf, jax.Array)]))
    return jax.tree.unflatten(treedef, [next(copies) if isinstance(leaf, jax.Array) else leaf
                                        for leaf in leaves])


# One program for the whole tree: eager copies compile one program per parameter shape.
_copy_all = jax.jit(lambda leaves: [jnp.copy(leaf) for leaf in leaves])
