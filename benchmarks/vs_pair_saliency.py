"""Our engine against PAIR saliency on the same model, the same digits, the same settings.

PAIR saliency (`pip install saliency`, the `bench` extra) explains one image at a time
through a `call_model_function`; here that function wraps the same trained Flax CNN, jitted,
so both sides run the same XLA code for the model. Per method and probe count N the script
prints: the peer's seconds at its default batch size (1) and at its best batch size (only
integrated gradients has one), ours (one jitted call for the whole batch), the speed-up, our
compile time, and how far the maps agree (max abs difference, relative to the largest map
value, and Pearson correlation over all pixels of all probes).

Settings (the same on both sides): integrated gradients 50 steps from a black baseline with
PAIR's path rule (`linspace(0, 1, 50)`, both ends; ours with `rule="linspace"`); SmoothGrad
50 samples of the gradient, noise 0.15 x the image's value range, plain mean (PAIR
`magnitude=False`); Grad-CAM at the last conv layer (PAIR timed with its default resize;
compared on the coarse map, upsampled by our bilinear rule); occlusion with a 4x4 black
window at stride 1 (PAIR's only stride; it sums the drops where we average them, so its map
is compared with ours times the number of windows covering each pixel); gradient x input is
PAIR's gradient times the input; Blur IG at PAIR's defaults (max_sigma 50, 100 steps,
grad_step 0.01); Guided IG at PAIR's defaults (200 steps, fraction 0.25, max_dist 0.02; PAIR
computes its path in float64, we in float32; numpy 2 renamed an argument PAIR passes, which the
script translates); XRAI with PAIR's IG (100 linspace steps, black and white baselines) and
`min_pixel_diff` 1, timed with PAIR's own Felzenszwalb segments but compared on ours (given to
PAIR as its `segments` argument), the correlation with PAIR on its own segments beside.
SmoothGrad draws different noise on each side, so its maps agree only up to sampling error:
the row also gives the correlation between two of our own runs with different keys, the
agreement to expect.

Run from the repository root:

    python benchmarks/vs_pair_saliency.py                 # N = 32 and 256, all six methods
    python benchmarks/vs_pair_saliency.py --quick         # N = 4, 2 repeats
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import saliency.core as pair  # noqa: E402

# PAIR's Guided IG calls np.quantile(..., interpolation=), which numpy 2 renamed `method`.
_quantile = np.quantile
np.quantile = lambda a, q, *args, interpolation=None, **kwargs: _quantile(  # noqa: E731
    a, q, *args, **({"method": interpolation} if interpolation else {}), **kwargs)

import attribution  # noqa: E402
from attribution import layers  # noqa: E402
from benchmarks.attribution import machine_lines, train  # noqa: E402
from trainer import data  # noqa: E402

IG_STEPS, SG_SAMPLES, NOISE, WINDOW = 50, 50, 0.15, 4
IG_BATCHES = (1, 10, 25, 50)  # Batch sizes tried for the peer's IG; 1 is its default.
OURS = {
    "gradient": ("gradient", {}),
    "gradient_x_input": ("gradient_x_input", {}),
    "integrated_gradients": ("integrated_gradients",
                             {"steps": IG_STEPS, "rule": "linspace", "baseline": 0.0}),
    "smoothgrad": ("smoothgrad", {"num_samples": SG_SAMPLES, "noise_scale": NOISE}),
    "grad_cam": ("grad_cam", {}),
    "occlusion": ("occlusion", {"window": WINDOW, "stride": 1, "fill": 0.0}),
    # PAIR's defaults.
    "blur_ig": ("blur_ig", {"max_sigma": 50.0, "steps": 100, "grad_step": 0.01}),
    "guided_ig": ("guided_ig", {"steps": 200, "fraction": 0.25, "max_dist": 0.02}),
    # PAIR's IG settings (100 linspace steps, black and white baselines); PAIR's region
    # thresholds scaled to 28 x 28 (our defaults; see attribution/methods/xrai.py).
    "xrai": ("xrai", {"steps": 100, "rule": "linspace", "baselines": (0.0, 1.0)}),
}
XRAI_SEGMENT_SIZES, XRAI_COMPACTNESS, XRAI_DILATION = (3, 5, 7, 10, 14), 0.3, 1


def xrai_segments(images: np.ndarray) -> list[list[np.ndarray]]:
    """Our XRAI's candidate regions per image, as PAIR's `segments` argument takes them."""
    from attribution import segmentation

    x = jnp.asarray(images)
    masks = jnp.concatenate([
        segmentation.segment_masks(segmentation.slic(x, size=s, compactness=XRAI_COMPACTNESS),
                                   segmentation.grid_size(images.shape[1:], s))
        for s in XRAI_SEGMENT_SIZES], axis=1)
    masks = np.asarray(segmentation.dilate(masks, XRAI_DILATION))
    return [list(m) for m in masks]


def call_model_function(model, variables, layer: str):
    """PAIR's model interface for our CNN; every model call is one jitted function."""
    classifier = attribution.as_classifier(model, variables, (28, 28, 1))

    @jax.jit
    def gradients(x, t):
        return jax.grad(lambda x: classifier.target_logit(variables, x, t).sum())(x)

    logit = jax.jit(lambda x, t: classifier.target_logit(variables, x, t))
    conv = jax.jit(lambda x, t: layers.layer_gradients(classifier, layer)(variables, x, t))

    def call(x_batch, call_model_args=None, expected_keys=None):
        x = jnp.asarray(x_batch, jnp.float32)
        t = jnp.full((x.shape[0],), call_model_args["target"], jnp.int32)
        out = {}
        if pair.INPUT_OUTPUT_GRADIENTS in expected_keys:
            out[pair.INPUT_OUTPUT_GRADIENTS] = np.asarray(gradients(x, t))
        if pair.OUTPUT_LAYER_VALUES in expected_keys:
            out[pair.OUTPUT_LAYER_VALUES] = np.asarray(logit(x, t))
        if pair.CONVOLUTION_LAYER_VALUES in expected_keys:
            activation, grads = conv(x, t)
            out[pair.CONVOLUTION_LAYER_VALUES] = np.asarray(activation)
            out[pair.CONVOLUTION_OUTPUT_GRADIENTS] = np.asarray(grads)
        return out

    return call


def peer_maps(method: str, images: np.ndarray, labels: np.ndarray, call, batch: int = 1,
              timing: bool = True, segments: list | None = None) -> np.ndarray:
    """PAIR's maps for every probe, one image at a time, as PAIR's API is used; XRAI with
    `segments` (one list of masks per image) instead of its own Felzenszwalb segments."""
    maps = []
    for i, (x, t) in enumerate(zip(images, labels, strict=True)):
        args = {"target": int(t)}
        if method in ("gradient", "gradient_x_input"):
            m = pair.GradientSaliency().GetMask(x, call, args)
            m = m * x if method == "gradient_x_input" else m
        elif method == "integrated_gradients":
            m = pair.IntegratedGradients().GetMask(x, call, args, x_baseline=np.zeros_like(x),
                                                   x_steps=IG_STEPS, batch_size=batch)
        elif method == "smoothgrad":
            m = pair.GradientSaliency().GetSmoothedMask(x, call, args, stdev_spread=NOISE,
                                                        nsamples=SG_SAMPLES, magnitude=False)
        elif method == "grad_cam":
            # Timed with PAIR's default resize; compared on the coarse map (see module doc).
            m = pair.GradCam().GetMask(x, call, args, should_resize=timing, three_dims=False)
        elif method == "guided_ig":
            m = pair.GuidedIG().GetMask(x, call, args, x_baseline=np.zeros_like(x),
                                        x_steps=200, fraction=0.25, max_dist=0.02)
        elif method == "blur_ig":
            m = pair.BlurIG().GetMask(x, call, args, max_sigma=50, steps=100, grad_step=0.01)
        elif method == "xrai":
            parameters = pair.XRAIParameters(steps=100)
            parameters.experimental_params["min_pixel_diff"] = 1
            m = pair.XRAI().GetMask(x, call, args, baselines=[np.zeros_like(x), np.ones_like(x)],
                                    segments=None if segments is None else segments[i],
                                    extra_parameters=parameters)[..., None]
        else:
            m = pair.Occlusion().GetMask(x, call, args, size=WINDOW, value=0)
        maps.append(np.asarray(m, np.float32))
    return np.stack(maps)


def timed(fn, repeats: int, budget_s: float) -> float:
    """Median seconds of `fn()` over `repeats` runs after one warm-up (at least 3 runs, fewer
    repeats once `budget_s` is spent)."""
    fn()
    times = []
    while len(times) < repeats and (len(times) < 3 or sum(times) < budget_s):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def agreement(ours: np.ndarray, peer: np.ndarray) -> tuple[float, float, float]:
    """(max abs difference, that / max |peer|, Pearson correlation) over all pixels."""
    diff = float(np.max(np.abs(ours - peer)))
    scale = float(np.max(np.abs(peer))) or 1.0
    return diff, diff / scale, float(np.corrcoef(ours.ravel(), peer.ravel())[0, 1])


def measure(method: str, model, variables, images: np.ndarray, labels: np.ndarray, call,
            repeats: int, budget: float) -> tuple[list[str], float]:
    """One table row (times and agreement of one method on one probe set) and our seconds."""
    name, options = OURS[method]
    x, t, key = jnp.asarray(images), jnp.asarray(labels), jax.random.key(0)
    fn = jax.jit(attribution.build(name, model, variables, (28, 28, 1), **options))
    start = time.perf_counter()
    compiled = fn.lower(variables, x, t, key).compile()
    compile_s = time.perf_counter() - start
    ours_s = timed(lambda: compiled(variables, x, t, key).block_until_ready(), repeats, budget)
    peer_s = timed(lambda: peer_maps(method, images, labels, call), repeats, budget)
    best, best_batch = peer_s, 1
    if method == "integrated_gradients":
        for batch in IG_BATCHES[1:]:
            s = timed(lambda b=batch: peer_maps(method, images, labels, call, b), repeats,
                      budget)
            best, best_batch = (s, batch) if s < best else (best, best_batch)
    ours = np.asarray(compiled(variables, x, t, key))
    note = ""
    if method == "xrai":  # Compared on our segments; PAIR's own are reported beside.
        own = peer_maps(method, images, labels, call, timing=False)
        note = f" (PAIR on its Felzenszwalb segments: {agreement(ours, own)[2]:.3f})"
        peer = peer_maps(method, images, labels, call, timing=False,
                         segments=xrai_segments(images))
    else:
        peer = peer_maps(method, images, labels, call, timing=False)
    if method == "grad_cam":
        peer = np.asarray(layers.upsample_to_input(jnp.asarray(peer), (28, 28, 1)))
    elif method == "occlusion":
        ours = ours * _coverage(28, WINDOW)[None, :, :, None]
    elif method == "smoothgrad":
        other = np.asarray(compiled(variables, x, t, jax.random.key(1)))
        note = f" (ours vs ours: {agreement(ours, other)[2]:.3f})"
    diff, rel, corr = agreement(ours, peer)
    best_text = f"{best:.3f} (batch {best_batch})" if method == "integrated_gradients" else "-"
    return [method, str(len(images)), f"{peer_s:.3f}", best_text, f"{ours_s:.4f}",
            f"{peer_s / ours_s:.1f}x / {best / ours_s:.1f}x", f"{compile_s:.2f}",
            f"{diff:.1e} ({rel:.1e})", f"{corr:.4f}{note}"], ours_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", default="32,256", help="comma-separated probe counts")
    parser.add_argument("--methods", default=",".join(OURS), help="comma-separated methods")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after a warm-up")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds per measurement after which no more repeats start")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 4, 2 repeats")
    args = parser.parse_args(argv)
    sizes = [4] if args.quick else [int(s) for s in args.probes.split(",") if s.strip()]
    repeats = 2 if args.quick else args.repeats
    methods = [m for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(OURS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; valid: {', '.join(OURS)}")

    splits = data.load_mnist("auto")
    epochs = 1 if args.quick else args.epochs
    model, params, accuracy, seconds = train("cnn", splits, epochs)
    variables = {"params": jax.device_put(params)}
    classifier = attribution.as_classifier(model, variables, (28, 28, 1))
    layer = layers.resolve_layer(classifier, None, "grad_cam")
    call = call_model_function(model, variables, layer)
    print("# Our engine vs PAIR saliency 0.2.1 (saliency.core), same model and digits\n")
    print("\n".join(machine_lines()))
    print(f"- Data: {splits.describe()}; probes: the first N eval digits, targets = labels")
    print(f"- Model: CNN, {epochs} epoch(s) Adam 1e-3 in {seconds:.0f} s, eval accuracy "
          f"{accuracy:.3f}; Grad-CAM layer {layer}")
    print(f"- Times: median of up to {repeats} runs after a warm-up, seconds for all N probes;"
          " speed-up = peer / ours\n")
    header = ["method", "N", "peer s (batch 1)", "peer s (best batch)", "ours s",
              "speed-up (default / best)", "our compile s", "max abs diff (rel.)",
              "correlation"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    ours = {}
    for n in sizes:
        images = np.asarray(splits.eval_images[:n])
        labels = np.asarray(splits.eval_labels[:n], np.int32)
        for method in methods:
            row, ours[method, n] = measure(method, model, variables, images, labels, call,
                                           repeats, args.budget)
            print("| " + " | ".join(row) + " |", flush=True)
    if "gradient" in methods:
        print("\nOur path and noise methods against S batched gradients of the probe set "
              "(S = steps or samples; target at most 1.2):")
        for n in sizes:
            for method, count in (("integrated_gradients", IG_STEPS),
                                  ("smoothgrad", SG_SAMPLES)):
                if (method, n) in ours:
                    ratio = ours[method, n] / (count * ours["gradient", n])
                    print(f"- {method}, N = {n}: {ratio:.2f} x {count} x gradient")
    print(f"\nload average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


def _coverage(size: int, window: int) -> np.ndarray:
    """How many stride-1 windows cover each pixel of a square image."""
    per_axis = np.array([min(i, size - window) - max(0, i - window + 1) + 1
                         for i in range(size)], np.float32)
    return per_axis[:, None] * per_axis[None, :]


if __name__ == "__main__":
    main()
