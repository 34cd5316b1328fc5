"""The newer methods against the peer libraries, on the same models and weights.

DeepLIFT, DeepLIFT-SHAP, GradientSHAP and VarGrad against Captum; Grad-CAM++, HiResCAM,
XGrad-CAM, LayerCAM, Eigen-CAM, Score-CAM and Ablation-CAM against pytorch-grad-cam; LRP's
three composites (EpsilonPlusFlat, EpsilonGammaBox with the box [0, 1], EpsilonAlpha2Beta1)
against zennit, both starting from the target logit's value. The torch
side runs the twins of `trainer.models.CNN` that `benchmarks/vs_captum.py` builds (the trained
Flax weights copied in). Each side runs in its own process (their thread pools fight), pinned
to the same cores; the script prints, per method, the peer's and our median time and how far
the maps agree.

Agreement. Exact methods: the largest absolute difference relative to the largest peer value
(DeepLIFT-SHAP and GradientSHAP use the same 16 baselines on both sides: our default set).
Stochastic methods (GradientSHAP, VarGrad), whose sides draw their own randomness: the Pearson
correlation of the maps and, for GradientSHAP, how far the mean completeness of each side
(sum of the map against f(x) - mean_b f(b)) is from exact. CAM family: pytorch-grad-cam's
layer-resolution map (`get_cam_image`, rectified) resized bilinearly (half-pixel centres, as
ours) before comparing; its own output is min-max normalized before resizing, which no
comparison could undo. Layers: the second conv's output (its pre-activation; Score-CAM the ReLU
module after it, which our Score-CAM applies itself). Eigen-CAM: the SVD's sign is arbitrary,
so pytorch-grad-cam's projection is compared after our orientation (along the mean activation),
and the images whose sign differed are counted. Grad-CAM++ and XGrad-CAM divide by sums that
can nearly cancel on a layer with signed outputs (2 g^2 + sum(A) g^3; sum(A)): there the
1e-7 by which the two sides' gradients differ moves the maps. The note gives each side's
distance to the same formula evaluated in float64 on its own activations and gradients, which
separates the arithmetic from that conditioning.

pytorch-grad-cam imports torchvision only for image helpers this script does not use; where
torchvision cannot load (a CUDA build beside a CPU-only torch), a stub stands in for it.

Run from the repository root (`pip install -e ".[bench]"`):

    python benchmarks/crosscheck_peers.py                 # N = 32
    python benchmarks/crosscheck_peers.py --probes 32,256 --repeats 3
    python benchmarks/crosscheck_peers.py --quick         # N = 8, one repeat
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import types

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402

from benchmarks.vs_captum import _cpu_name, _pin, _time_calls, prepare, torch_models  # noqa: E402

SAMPLES = 64  # GradientSHAP and VarGrad samples per image, both sides.
NOISE = 0.15  # VarGrad's noise, relative to the image's value range (the probes span [0, 1]).
LAYER = "Conv_1"
OPTIONS = {
    "deeplift": {"baseline": 0.0},
    "deeplift_shap": {},  # + baselines
    "gradient_shap": {"num_samples": SAMPLES, "stdevs": 0.0},  # + baselines
    "vargrad": {"num_samples": SAMPLES, "noise_scale": NOISE},
    "grad_cam_plus_plus": {"layer": LAYER},
    "hires_cam": {"layer": LAYER},
    "xgrad_cam": {"layer": LAYER},
    "layer_cam": {"layer": LAYER},
    "eigen_cam": {"layer": LAYER},
    "score_cam": {"layer": LAYER},
    "ablation_cam": {"layer": LAYER},
    "lrp_epsilon_plus_flat": {"composite": "epsilon_plus_flat"},
    "lrp_epsilon_gamma_box": {"composite": "epsilon_gamma_box", "low": 0.0, "high": 1.0},
    "lrp_epsilon_alpha2_beta1": {"composite": "epsilon_alpha2_beta1"},
}
ZENNIT = ("lrp_epsilon_plus_flat", "lrp_epsilon_gamma_box", "lrp_epsilon_alpha2_beta1")


def method_of(entry: str) -> str:
    return "lrp" if entry in ZENNIT else entry
STOCHASTIC = ("gradient_shap", "vargrad")


def _plus_plus_float64(a, g):
    """Grad-CAM++'s layer map before the ReLU, NHWC, as pytorch-grad-cam writes it."""
    alpha = g**2 / (2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3 + 1e-7)
    weights = (np.where(g != 0, alpha, 0) * np.maximum(g, 0)).sum(axis=(1, 2))
    return np.einsum("nhwk,nk->nhw", a, weights)


def _xgrad_float64(a, g):
    weights = (a * g).sum(axis=(1, 2)) / (a.sum(axis=(1, 2)) + 1e-7)
    return np.einsum("nhwk,nk->nhw", a, weights)


FLOAT64_FORMULAS = {"grad_cam_plus_plus": _plus_plus_float64, "xgrad_cam": _xgrad_float64}
CAPTUM = ("deeplift", "deeplift_shap", "gradient_shap", "vargrad")


def jax_child(spec: dict) -> dict:
    cores = _pin(spec["threads"])
    import jax
    import jax.numpy as jnp

    import attribution
    from attribution import layers
    from trainer import models

    weights = np.load(spec["weights"], allow_pickle=True)
    probes = np.load(spec["probes"])
    baselines = np.load(spec["baselines"])
    variables = {"params": weights["cnn"].item()}
    model = models.create_model("cnn")
    out = {"threads": len(cores), "version": f"jax {jax.__version__}", "times": {}}
    maps = {}
    for n in spec["probes_n"]:
        images = jnp.asarray(probes["images"][:n])
        targets = jnp.asarray(probes["targets_cnn"][:n], jnp.int32)
        for name in spec["methods"]:
            options = dict(OPTIONS[name])
            if name in ("deeplift_shap", "gradient_shap"):
                options["baselines"] = baselines
            fn = jax.jit(attribution.build(method_of(name), model, variables,
                                           tuple(images.shape[1:]), **options))
            result = {}

            def call(fn=fn, images=images, targets=targets, result=result):
                result["maps"] = fn(variables, images, targets, jax.random.key(0))
                result["maps"].block_until_ready()

            out["times"][f"{name}/{n}"] = _time_calls(call, spec["repeats"])
            maps[f"{name}@{n}"] = np.asarray(result["maps"])
        # The ill-conditioned members' formulas in float64 on our own activations and
        # gradients: how far float32 rounding alone moves our maps.
        classifier = attribution.as_classifier(model, variables, tuple(images.shape[1:]))
        acts, grads = (np.asarray(v, np.float64) for v in layers.layer_gradients(
            classifier, LAYER)(variables, images, targets))
        for name in set(spec["methods"]) & set(FLOAT64_FORMULAS):
            coarse = np.maximum(FLOAT64_FORMULAS[name](acts, grads), 0)
            up = jax.image.resize(jnp.asarray(coarse, jnp.float32), (n, 28, 28), "bilinear")
            maps[f"{name}@{n}@float64"] = np.asarray(up)[..., None]
        logits = np.asarray(model.apply(variables, images))
        base_logits = np.asarray(model.apply(variables, jnp.asarray(baselines)))
        maps[f"delta@{n}"] = (logits[np.arange(n), np.asarray(targets)]
                              - base_logits[:, np.asarray(targets)].mean(axis=0))
    np.savez(spec["maps_jax"], **maps)
    return out


def _torchvision_or_stub() -> None:
    """pytorch-grad-cam and zennit import torchvision for helpers this script does not use
    (image transforms; ResNet block classes for zennit's ResNet canonizer)."""
    try:
        import torchvision  # noqa: F401
        return
    except Exception:  # noqa: BLE001  (any failure to load: the stub below)
        pass
    names = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional",
             "torchvision.models", "torchvision.models.resnet")
    for name in names:
        sys.modules.pop(name, None)
    stubs = dict(zip(names, (types.ModuleType(name) for name in names), strict=True))
    for name, module in stubs.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(stubs[parent], child, module)
    for attr_name in ("Compose", "Normalize", "ToTensor"):
        setattr(stubs["torchvision.transforms"], attr_name, None)
    stubs["torchvision.transforms.functional"].resize = None
    for block in ("Bottleneck", "BasicBlock"):
        setattr(stubs["torchvision.models.resnet"], block, type(block, (), {}))
    sys.modules.update(stubs)


def _import_grad_cam():
    _torchvision_or_stub()
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    return pytorch_grad_cam, ClassifierOutputTarget, get_2d_projection


def torch_child(spec: dict) -> dict:
    cores = _pin(spec["threads"])
    import captum
    import torch
    import torch.nn.functional as F
    from captum import attr

    torch.set_num_threads(spec["threads"])
    torch.set_num_interop_threads(1)
    cams, ClassifierOutputTarget, get_2d_projection = _import_grad_cam()
    weights = {k: v.item() for k, v in np.load(spec["weights"], allow_pickle=True).items()}
    probes = np.load(spec["probes"])
    cnn, _ = torch_models(weights)
    baselines = torch.from_numpy(np.ascontiguousarray(
        np.transpose(np.load(spec["baselines"]), (0, 3, 1, 2))))
    grad_cam_classes = {
        "grad_cam_plus_plus": (cams.GradCAMPlusPlus, cnn.conv2),
        "hires_cam": (cams.HiResCAM, cnn.conv2), "xgrad_cam": (cams.XGradCAM, cnn.conv2),
        "layer_cam": (cams.LayerCAM, cnn.conv2), "eigen_cam": (cams.EigenCAM, cnn.conv2),
        "score_cam": (cams.ScoreCAM, cnn.relu2), "ablation_cam": (cams.AblationCAM, cnn.conv2),
    }
    noise = attr.NoiseTunnel(attr.Saliency(cnn))
    captum_fns = {
        "deeplift": lambda x, t: attr.DeepLift(cnn).attribute(x, baselines=x * 0, target=t),
        "deeplift_shap": lambda x, t: attr.DeepLiftShap(cnn).attribute(
            x, baselines=baselines, target=t),
        "gradient_shap": lambda x, t: attr.GradientShap(cnn).attribute(
            x, baselines=baselines, target=t, n_samples=SAMPLES, stdevs=0.0),
        # The probes span [0, 1], so NOISE is also the absolute standard deviation.
        "vargrad": lambda x, t: noise.attribute(x, target=t, nt_type="vargrad",
                                                nt_samples=SAMPLES, stdevs=NOISE, abs=False),
    }

    def layer_map(name, x, t):
        """pytorch-grad-cam's rectified layer-resolution map, resized like ours."""
        cls, layer = grad_cam_classes[name]
        cam = cls(model=cnn, target_layers=[layer])
        targets = [ClassifierOutputTarget(int(c)) for c in t]
        outputs = cam.activations_and_grads(x)
        grads = None
        if cam.uses_gradients:
            cnn.zero_grad()
            sum(target(o) for target, o in zip(targets, outputs, strict=True)).backward()
            grads = cam.activations_and_grads.gradients[0].detach().numpy()
        acts = cam.activations_and_grads.activations[0].detach().numpy()
        sign_flips = 0
        if name == "eigen_cam":
            raw = []
            for a, projection in zip(acts, get_2d_projection(acts), strict=True):
                mean = a.reshape(a.shape[0], -1).mean(axis=1)
                centred = a.reshape(a.shape[0], -1).T - mean
                # Our orientation: the component points along the mean activation.
                direction = np.linalg.lstsq(centred, projection.ravel(), rcond=None)[0]
                flip = float(direction @ mean) < 0
                sign_flips += flip
                raw.append(-projection if flip else projection)
            raw = np.stack(raw)
        else:
            raw = cam.get_cam_image(x, layer, targets, acts, grads, False)
            if grads is not None and name in FLOAT64_FORMULAS:  # Its formula, in float64.
                raw64 = cam.get_cam_image(x, layer, targets, acts.astype(np.float64),
                                          grads.astype(np.float64), False)
        cam.activations_and_grads.release()

        def resized(raw):
            coarse = torch.from_numpy(np.maximum(raw, 0).astype(np.float32))[:, None]
            return F.interpolate(coarse, size=x.shape[2:], mode="bilinear",
                                 align_corners=False).numpy()

        exact = resized(raw64) if grads is not None and name in FLOAT64_FORMULAS else None
        return resized(raw), exact, sign_flips

    _torchvision_or_stub()
    from zennit import composites as zennit_composites

    lrp_composites = {
        "lrp_epsilon_plus_flat": zennit_composites.EpsilonPlusFlat(),
        "lrp_epsilon_gamma_box": zennit_composites.EpsilonGammaBox(low=0.0, high=1.0),
        "lrp_epsilon_alpha2_beta1": zennit_composites.EpsilonAlpha2Beta1(),
    }

    def zennit_lrp(name, x, t):
        """zennit's relevance, starting from the target logit's value (as ours)."""
        with lrp_composites[name].context(cnn) as modified:
            x = x.clone().requires_grad_(True)
            out = modified(x)
            start = torch.zeros_like(out)
            rows = torch.arange(len(t))
            start[rows, t] = out[rows, t].detach()
            (relevance,) = torch.autograd.grad(out, x, grad_outputs=start)
        return relevance.numpy()

    def whole_call(name, x, t):
        cls, layer = grad_cam_classes[name]
        cam = cls(model=cnn, target_layers=[layer])
        if hasattr(cam, "batch_size"):
            cam.batch_size = 64
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in t])

    from importlib import metadata

    versions = (f"torch {torch.__version__}, captum {captum.__version__}, grad-cam "
                f"{metadata.version('grad-cam')}, zennit {metadata.version('zennit')}")
    out = {"threads": torch.get_num_threads(), "cores": len(cores), "version": versions,
           "times": {}, "sign_flips": {}}
    maps = {}
    for n in spec["probes_n"]:
        x = torch.from_numpy(np.ascontiguousarray(
            np.transpose(probes["images"][:n], (0, 3, 1, 2))))
        t = torch.from_numpy(probes["targets_cnn"][:n].astype(np.int64))
        for name in spec["methods"]:
            if name in ZENNIT:
                result = {}

                def call(name=name, result=result, x=x, t=t):
                    result["maps"] = zennit_lrp(name, x, t)

                out["times"][f"{name}/{n}"] = _time_calls(call, spec["repeats"])
                nchw = result["maps"]
            elif name in CAPTUM:
                result = {}

                def call(name=name, result=result, x=x, t=t):
                    result["maps"] = captum_fns[name](x, t).detach().numpy()

                out["times"][f"{name}/{n}"] = _time_calls(call, spec["repeats"])
                nchw = result["maps"]
            else:
                out["times"][f"{name}/{n}"] = _time_calls(
                    lambda name=name, x=x, t=t: whole_call(name, x, t), spec["repeats"])
                nchw, nchw64, flips = layer_map(name, x, t)
                out["sign_flips"][f"{name}/{n}"] = flips
                if nchw64 is not None:
                    maps[f"{name}@{n}@float64"] = np.transpose(nchw64, (0, 2, 3, 1))
            maps[f"{name}@{n}"] = np.transpose(nchw, (0, 2, 3, 1))
    np.savez(spec["maps_torch"], **maps)
    return out


def run_side(side: str, spec: dict, folder: str) -> dict:
    path = os.path.join(folder, f"spec_{side}.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", side, path],
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{side} child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "SPEC"), help=argparse.SUPPRESS)
    parser.add_argument("--probes", default="32", help="probe counts N, comma-separated")
    parser.add_argument("--methods", default=",".join(OPTIONS))
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after a warm-up")
    parser.add_argument("--threads", type=int, default=2, help="cores per side (pinned)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="N = 8, one repeat")
    args = parser.parse_args(argv)
    if args.child:
        side, path = args.child
        with open(path) as f:
            spec = json.load(f)
        print(json.dumps((jax_child if side == "jax" else torch_child)(spec)))
        return
    if args.quick:
        args.probes, args.repeats = "8", 1
    probes_n = [int(n) for n in args.probes.split(",")]
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(OPTIONS))
    if unknown:
        sys.exit(f"Unknown methods {unknown}; valid: {', '.join(OPTIONS)}.")

    from attribution.methods._baselines import baseline_set

    with tempfile.TemporaryDirectory() as folder:
        spec = {**prepare(folder, args.epochs, max(probes_n)), "probes_n": probes_n,
                "methods": methods, "repeats": args.repeats, "threads": args.threads,
                "baselines": os.path.join(folder, "baselines.npy"),
                "maps_jax": os.path.join(folder, "maps_jax.npz"),
                "maps_torch": os.path.join(folder, "maps_torch.npz")}
        np.save(spec["baselines"], baseline_set(None, (28, 28, 1)))
        runs = {side: run_side(side, spec, folder) for side in ("jax", "torch")}
        ours = dict(np.load(spec["maps_jax"]))
        peer = dict(np.load(spec["maps_torch"]))

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"- CPU: {_cpu_name()}; {os.cpu_count()} cores; load average {load}")
    print(f"- ours: {runs['jax']['version']}, {runs['jax']['threads']} pinned cores")
    print(f"- peers: {runs['torch']['version']}; torch threads {runs['torch']['threads']} "
          f"(interop 1) on {runs['torch']['cores']} pinned cores")
    print(f"- medians of {args.repeats} timed calls after a warm-up; ratio = peer / ours")
    print()
    print("| method | peer | N | peer ms | ours ms | ratio | max abs diff (rel.) | "
          "correlation | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in probes_n:
        delta = ours[f"delta@{n}"]
        for name in methods:
            key = f"{name}@{n}"
            a, b = ours[key], peer[key]
            scale = max(float(np.abs(b).max()), 1e-30)
            diff = float(np.abs(a - b).max()) / scale
            corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
            note = ""
            if name == "gradient_shap":
                gaps = [np.median(np.abs(m.sum(axis=(1, 2, 3)) - delta) / np.abs(delta))
                        for m in (a, b)]
                note = (f"completeness gap (median): ours {gaps[0]:.1%}, Captum {gaps[1]:.1%} "
                        f"({SAMPLES} samples)")
            if f"{key}@float64" in peer:
                errors = [float(np.abs(m - exact).max()) / max(float(np.abs(exact).max()), 1e-30)
                          for m, exact in ((a, ours[f"{key}@float64"]),
                                           (b, peer[f"{key}@float64"]))]
                note = (f"each against the formula in float64 on its own activations and "
                        f"gradients: ours {errors[0]:.1e}, pytorch-grad-cam {errors[1]:.1e}")
            flips = runs["torch"]["sign_flips"].get(f"{name}/{n}")
            if flips:
                note = f"SVD sign differed on {flips} of {n} images (reoriented)"
            times = {side: statistics.median(runs[side]["times"][f"{name}/{n}"])
                     for side in runs}
            diff_text = "(draws differ)" if name in STOCHASTIC else f"{diff:.1e}"
            peer_name = ("Captum" if name in CAPTUM else "zennit" if name in ZENNIT
                         else "pytorch-grad-cam")
            print(f"| {name} | {peer_name} | {n} | "
                  f"{times['torch']:.1f} | {times['jax']:.1f} | "
                  f"**{times['torch'] / times['jax']:.2f}x** | {diff_text} | {corr:.6f} | "
                  f"{note} |")


if __name__ == "__main__":
    main()
