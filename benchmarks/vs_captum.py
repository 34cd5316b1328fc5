"""Our engine against Captum on the same models and weights, each side in its own process.

Captum (`pip install -e ".[bench]"`: torch and captum) runs on PyTorch models built layer for
layer like `trainer.models.CNN` and `CNNGAP`, with the trained Flax weights copied in (CAM,
which Captum lacks, against a hand-written torch CAM on the CNN-GAP model). For every method
both sides have and each probe count N, the script prints the median time of each side, the
ratio (Captum / ours: above 1 means we are faster) and how far the maps agree.

Timing: JAX and PyTorch never share a process (their thread pools fight over the cores). The
parent trains the models, then starts one child per side and round, alternating JAX, torch,
JAX, torch, ... so that any drift of the machine's load hits both; each child pins itself to
the same cores, warms every method up once, then times `--repeats` calls per method. A
side's figure is the median over all its calls in all rounds.

Settings (the same on both sides): gradient (Captum `Saliency(abs=False)`), gradient x input,
guided backprop, DeconvNet, Grad-CAM at the last conv layer with ReLU, upsampled bilinearly
(`LayerGradCam` + `LayerAttribution.interpolate`), guided Grad-CAM (bilinear), integrated
gradients 32 midpoint steps from black (`riemann_middle`), SmoothGrad 16 samples of the
gradient at noise 0.15 x the image's value range (each side draws its own noise: compared
by correlation), occlusion with a 4x4 black window at stride 4. Captum's batching options
are left at their defaults (every path point or sample in one batch).

Run from the repository root:

    python benchmarks/vs_captum.py                         # N = 32 and 256, all methods
    python benchmarks/vs_captum.py --quick                 # N = 8, one round
    python benchmarks/vs_captum.py --methods gradient,integrated_gradients --rounds 5
    python benchmarks/vs_captum.py --device gpu            # JAX's GPU against Captum on CUDA

On a GPU (`--device gpu`) both sides run at full float32 (JAX's matmul precision "highest",
torch's TF32 off for matmuls and cuDNN), each timed call ends when the device is done
(`block_until_ready`, `torch.cuda.synchronize`), and the table names the device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402

IG_STEPS, SG_SAMPLES, NOISE, WINDOW = 32, 16, 0.15, 4
OPTIONS = {
    "gradient": {},
    "gradient_x_input": {},
    "guided_backprop": {},
    "deconvnet": {},
    "grad_cam": {"layer": "Conv_1"},
    "guided_grad_cam": {"layer": "Conv_1"},
    "integrated_gradients": {"steps": IG_STEPS, "rule": "midpoint", "baseline": 0.0},
    "smoothgrad": {"num_samples": SG_SAMPLES, "noise_scale": NOISE},
    "occlusion": {"window": WINDOW, "stride": WINDOW, "fill": 0.0},
    "cam": {"layer": "Conv_2"},
}
GAP_ONLY = ("cam",)
STOCHASTIC = ("smoothgrad",)


def _pin(threads: int) -> list[int]:
    """Restricts this process to its first `threads` usable cores; returns them."""
    cores = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cores)
    return cores


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _time_calls(call, repeats: int) -> list[float]:
    call()  # Warm-up (compiles on the JAX side).
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1e3 * (time.perf_counter() - start))
    return times


# JAX side -----------------------------------------------------------------------------------


def jax_child(spec: dict) -> dict:
    cores = _pin(spec["threads"])
    import jax
    import jax.numpy as jnp

    if spec["device"] == "gpu":
        # Torch's float32 is full float32 once TF32 is off; JAX's GPU default is not.
        jax.config.update("jax_default_matmul_precision", "highest")

    import attribution
    from trainer import models

    weights = np.load(spec["weights"], allow_pickle=True)
    probes = np.load(spec["probes"])
    out = {"threads": len(cores), "version": f"jax {jax.__version__}", "times": {},
           "matmul_gflops": _matmul_gflops(), "gradient_gflop": {},
           "device": f"{jax.default_backend()} {jax.devices()[0].device_kind}"}
    maps = {}
    for n in spec["probes_n"]:
        images = jnp.asarray(probes["images"][:n])
        for name in spec["methods"]:
            model_name = "cnn_gap" if name in GAP_ONLY else "cnn"
            # On the device once, as a training loop's parameters are (not copied per call).
            variables = jax.device_put({"params": weights[model_name].item()})
            targets = jnp.asarray(probes[f"targets_{model_name}"][:n], jnp.int32)
            fn = jax.jit(attribution.build(name, models.create_model(model_name), variables,
                                           tuple(images.shape[1:]), **OPTIONS[name]))
            key = jax.random.key(0)
            result = {}

            def call(fn=fn, variables=variables, images=images, targets=targets, key=key,
                     result=result):
                result["maps"] = fn(variables, images, targets, key).block_until_ready()

            out["times"][f"{name}/{n}"] = _time_calls(call, spec["repeats"])
            maps[f"{name}/{n}"] = np.asarray(result["maps"])
            if name == "gradient":
                out["gradient_gflop"][str(n)] = _gradient_gflop(variables, images, targets)
    if spec.get("maps"):
        np.savez(spec["maps"], **{k.replace("/", "@"): v for k, v in maps.items()})
    return out


def _matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """The best rate of a float32 `size` x `size` matmul under XLA here, GFLOP/s."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((size, size), jnp.float32)
    product = jax.jit(lambda x: x @ x)
    times = _time_calls(lambda: product(a).block_until_ready(), repeats)
    return 2 * size**3 / (min(times) / 1e3) / 1e9


def _gradient_gflop(variables, images, targets) -> float:
    """XLA's FLOP count of one input-gradient pass of the CNN over `images` (unsplit: the
    cost analysis counts a loop's body once)."""
    import jax
    import jax.numpy as jnp

    from trainer import models

    model = models.create_model("cnn")

    def total(x):
        logits = model.apply(variables, x)
        return jnp.sum(jnp.take_along_axis(logits, targets[:, None], axis=1))

    compiled = jax.jit(jax.grad(total)).lower(images).compile()
    return compiled.cost_analysis()["flops"] / 1e9


# Torch side ---------------------------------------------------------------------------------


def torch_models(weights):
    """Torch twins of `trainer.models.CNN` and `CNNGAP` with the Flax weights copied in."""
    import torch
    from torch import nn

    def conv(p):
        layer = nn.Conv2d(p["kernel"].shape[2], p["kernel"].shape[3], 3, padding=1)
        layer.weight.data = torch.from_numpy(np.ascontiguousarray(
            np.transpose(p["kernel"], (3, 2, 0, 1))))
        layer.bias.data = torch.from_numpy(np.asarray(p["bias"]))
        return layer

    def dense(p):
        layer = nn.Linear(*p["kernel"].shape)
        layer.weight.data = torch.from_numpy(np.ascontiguousarray(p["kernel"].T))
        layer.bias.data = torch.from_numpy(np.asarray(p["bias"]))
        return layer

    class CNN(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.conv1, self.relu1, self.pool1 = conv(p["Conv_0"]), nn.ReLU(), nn.AvgPool2d(2)
            self.conv2, self.relu2, self.pool2 = conv(p["Conv_1"]), nn.ReLU(), nn.AvgPool2d(2)
            self.fc1, self.relu3, self.fc2 = dense(p["Dense_0"]), nn.ReLU(), dense(p["Dense_1"])

        def forward(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = x.permute(0, 2, 3, 1).flatten(1)  # Flax flattens height, width, channels.
            return self.fc2(self.relu3(self.fc1(x)))

    class CNNGAP(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.conv1, self.relu1, self.pool1 = conv(p["Conv_0"]), nn.ReLU(), nn.AvgPool2d(2)
            self.conv2, self.relu2, self.pool2 = conv(p["Conv_1"]), nn.ReLU(), nn.AvgPool2d(2)
            self.conv3, self.relu3 = conv(p["Conv_2"]), nn.ReLU()
            self.fc = dense(p["Dense_0"])

        def features(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            return self.relu3(self.conv3(x))

        def forward(self, x):
            return self.fc(self.features(x).mean(dim=(2, 3)))

    return CNN(weights["cnn"]).eval(), CNNGAP(weights["cnn_gap"]).eval()


def captum_methods(cnn, gap):
    """name -> (model, fn(images NCHW, targets) -> maps NCHW)."""
    import captum
    import torch
    import torch.nn.functional as F
    from captum import attr

    def upsampled(layer_map, like):
        return attr.LayerAttribution.interpolate(layer_map, like.shape[2:], "bilinear")

    grad_cam = attr.LayerGradCam(cnn, cnn.conv2)
    guided_grad_cam = attr.GuidedGradCam(cnn, cnn.conv2)
    smooth = attr.NoiseTunnel(attr.Saliency(cnn))

    def smoothgrad(x, t):
        spread = (x.amax(dim=(1, 2, 3)) - x.amin(dim=(1, 2, 3)))
        # Captum takes one noise level for the batch: the probes here all span [0, 1].
        return smooth.attribute(x, target=t, nt_type="smoothgrad", nt_samples=SG_SAMPLES,
                                stdevs=float(NOISE * spread.max()), abs=False)

    def cam(x, t):
        with torch.no_grad():
            features = gap.features(x)
            maps = torch.einsum("nkhw,nk->nhw", features, gap.fc.weight[t])[:, None]
            return F.interpolate(maps, size=x.shape[2:], mode="bilinear", align_corners=False)

    return captum.__version__, {
        "gradient": lambda x, t: attr.Saliency(cnn).attribute(x, target=t, abs=False),
        "gradient_x_input": lambda x, t: attr.InputXGradient(cnn).attribute(x, target=t),
        "guided_backprop": lambda x, t: attr.GuidedBackprop(cnn).attribute(x, target=t),
        "deconvnet": lambda x, t: attr.Deconvolution(cnn).attribute(x, target=t),
        "grad_cam": lambda x, t: upsampled(
            grad_cam.attribute(x, target=t, relu_attributions=True), x),
        "guided_grad_cam": lambda x, t: guided_grad_cam.attribute(
            x, target=t, interpolate_mode="bilinear"),
        "integrated_gradients": lambda x, t: attr.IntegratedGradients(cnn).attribute(
            x, baselines=0.0, target=t, n_steps=IG_STEPS, method="riemann_middle"),
        "smoothgrad": smoothgrad,
        "occlusion": lambda x, t: attr.Occlusion(cnn).attribute(
            x, target=t, sliding_window_shapes=(1, WINDOW, WINDOW),
            strides=(1, WINDOW, WINDOW), baselines=0.0),
        "cam": cam,
    }


def torch_child(spec: dict) -> dict:
    cores = _pin(spec["threads"])
    import torch

    torch.set_num_threads(spec["threads"])
    torch.set_num_interop_threads(1)
    on_gpu = spec["device"] == "gpu"
    device = torch.device("cuda" if on_gpu else "cpu")
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    weights = {k: v.item() for k, v in np.load(spec["weights"], allow_pickle=True).items()}
    probes = np.load(spec["probes"])
    cnn, gap = (model.to(device) for model in torch_models(weights))
    version, methods = captum_methods(cnn, gap)
    out = {"threads": torch.get_num_threads(), "cores": len(cores),
           "version": f"torch {torch.__version__}, captum {version}", "times": {},
           "device": torch.cuda.get_device_name() if on_gpu else "cpu"}
    maps = {}
    for n in spec["probes_n"]:
        images = torch.from_numpy(np.ascontiguousarray(
            np.transpose(probes["images"][:n], (0, 3, 1, 2)))).to(device)
        for name in spec["methods"]:
            model_name = "cnn_gap" if name in GAP_ONLY else "cnn"
            targets = torch.from_numpy(
                probes[f"targets_{model_name}"][:n].astype(np.int64)).to(device)
            result = {}

            def call(name=name, images=images, targets=targets, result=result):
                result["maps"] = methods[name](images, targets).detach()
                if on_gpu:
                    torch.cuda.synchronize()

            out["times"][f"{name}/{n}"] = _time_calls(call, spec["repeats"])
            nchw = result["maps"].cpu().numpy()
            maps[f"{name}/{n}"] = np.transpose(nchw, (0, 2, 3, 1))
    if spec.get("maps"):
        np.savez(spec["maps"], **{k.replace("/", "@"): v for k, v in maps.items()})
    return out


# Parent -------------------------------------------------------------------------------------


def prepare(folder: str, epochs: int, max_n: int) -> dict:
    """Trains both models, saves their weights, probes and predicted targets; returns paths."""
    import jax

    from benchmarks.attribution import train
    from trainer import data

    splits = data.load_mnist("auto")
    images = splits.eval_images[:max_n]
    weights, targets = {}, {}
    for name in ("cnn", "cnn_gap"):
        model, params, accuracy, seconds = train(name, splits, epochs)
        print(f"- trained {name}: {epochs} epochs, {accuracy:.2%} eval accuracy, {seconds:.0f} s")
        weights[name] = jax.tree.map(np.asarray, params)
        logits = model.apply({"params": params}, images)
        targets[f"targets_{name}"] = np.asarray(logits.argmax(-1), np.int32)
    paths = {"weights": os.path.join(folder, "weights.npz"),
             "probes": os.path.join(folder, "probes.npz")}
    np.savez(paths["weights"], **{k: np.array(v, dtype=object) for k, v in weights.items()})
    np.savez(paths["probes"], images=images, **targets)
    return paths


def run_side(side: str, spec: dict, folder: str, round_index: int) -> dict:
    spec = {**spec, "maps": os.path.join(folder, f"maps_{side}.npz") if round_index == 0 else ""}
    path = os.path.join(folder, f"spec_{side}.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", side, path],
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{side} child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def agreement(ours: np.ndarray, peer: np.ndarray) -> tuple[float, float]:
    """(max |difference| relative to the largest |map value|, Pearson correlation)."""
    scale = max(float(np.abs(peer).max()), 1e-30)
    corr = float(np.corrcoef(ours.ravel(), peer.ravel())[0, 1])
    return float(np.abs(ours - peer).max()) / scale, corr


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "SPEC"), help=argparse.SUPPRESS)
    parser.add_argument("--probes", default="32,256", help="probe counts N, comma-separated")
    parser.add_argument("--methods", default=",".join(OPTIONS))
    parser.add_argument("--rounds", type=int, default=3, help="child processes per side")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per child")
    parser.add_argument("--threads", type=int, default=2, help="cores per side (pinned)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="where both sides run (gpu: JAX's GPU backend and CUDA)")
    parser.add_argument("--quick", action="store_true", help="N = 8, one round, 2 repeats")
    args = parser.parse_args(argv)
    if args.child:
        side, path = args.child
        with open(path) as f:
            spec = json.load(f)
        print(json.dumps((jax_child if side == "jax" else torch_child)(spec)))
        return
    if args.quick:
        args.probes, args.rounds, args.repeats = "8", 1, 2
    probes_n = [int(n) for n in args.probes.split(",")]
    methods = args.methods.split(",")
    if args.device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"  # Children inherit it.
    else:
        # The parent keeps its training state while each child takes the GPU in turn.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    unknown = sorted(set(methods) - set(OPTIONS))
    if unknown:
        sys.exit(f"Unknown methods {unknown}; valid: {', '.join(OPTIONS)}.")

    with tempfile.TemporaryDirectory() as folder:
        spec = {**prepare(folder, args.epochs, max(probes_n)), "probes_n": probes_n,
                "methods": methods, "repeats": args.repeats, "threads": args.threads,
                "device": args.device}
        runs: dict[str, list[dict]] = {"jax": [], "torch": []}
        for r in range(args.rounds):
            for side in ("jax", "torch"):
                runs[side].append(run_side(side, spec, folder, r))
        ours_maps = dict(np.load(os.path.join(folder, "maps_jax.npz")))
        peer_maps = dict(np.load(os.path.join(folder, "maps_torch.npz")))

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"- CPU: {_cpu_name()}; {os.cpu_count()} cores; load average {load}")
    if args.device == "gpu":
        print(f"- GPU: ours on {runs['jax'][0]['device']}, Captum on "
              f"{runs['torch'][0]['device']}; both at full float32 (no TF32)")
    pool = "XLA:CPU's thread pool" if args.device == "cpu" else "the host side"
    print(f"- ours: {runs['jax'][0]['version']}, {runs['jax'][0]['threads']} pinned cores "
          f"({pool})")
    print(f"- peer: {runs['torch'][0]['version']}, torch threads "
          f"{runs['torch'][0]['threads']} (interop 1) on {runs['torch'][0]['cores']} pinned "
          f"cores")
    print(f"- {args.rounds} alternating processes per side x {args.repeats} timed calls after a "
          f"warm-up; medians; ratio = Captum / ours")
    rate = statistics.median(run["matmul_gflops"] for run in runs["jax"])
    for n in probes_n:
        if f"gradient/{n}" in runs["jax"][0]["times"]:
            ms = statistics.median(t for run in runs["jax"] for t in run["times"][f"gradient/{n}"])
            gflop = runs["jax"][0]["gradient_gflop"][str(n)]
            print(f"- one gradient pass, N = {n}: {gflop:.2f} GFLOP (XLA's count) in {ms:.1f} ms "
                  f"= {gflop / ms * 1e3:.0f} GFLOP/s, {100 * gflop / ms * 1e3 / rate:.0f}% of a "
                  f"2048x2048 float32 matmul's {rate:.0f} GFLOP/s in the same processes")
    print()
    print("| method | N | Captum ms | ours ms | ratio | max abs diff (rel.) | correlation |")
    print("|---|---|---|---|---|---|---|")
    for n in probes_n:
        for name in methods:
            key = f"{name}/{n}"
            peer = statistics.median(t for run in runs["torch"] for t in run["times"][key])
            ours = statistics.median(t for run in runs["jax"] for t in run["times"][key])
            diff, corr = agreement(ours_maps[key.replace("/", "@")],
                                   peer_maps[key.replace("/", "@")])
            diff_text = "(noise differs)" if name in STOCHASTIC else f"{diff:.1e}"
            peer_name = "torch CAM" if name == "cam" else "Captum"
            print(f"| {name} ({peer_name}) | {n} | {peer:.1f} | {ours:.1f} | "
                  f"**{peer / ours:.2f}x** | {diff_text} | {corr:.6f} |")


if __name__ == "__main__":
    main()
