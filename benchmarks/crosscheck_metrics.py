"""Our evaluation metrics against Quantus 0.6 and Captum's metrics, on the same model and maps.

The JAX side trains the project's CNN (as `benchmarks/vs_captum.py` does), explains N probes
with the gradient and integrated gradients, scores them with `attribution.metrics`, and saves
the maps, the stroke masks, our scores and every random draw our metrics made. The torch side
(its own process: the thread pools fight) runs the CNN's torch twin with the same weights and
calls Quantus and Captum on those same maps, replaying our draws where the peer accepts a
perturbation function (max / average sensitivity, the local Lipschitz estimate, infidelity,
Captum's `sensitivity_max`), so those scores can agree to float32 precision. Where a peer draws
its own randomness (faithfulness correlation's subsets), the means are compared. Where Quantus'
definition differs from ours or cannot run, the note says how (see also the README).

Per row: the metric, the maps, the peer, the mean score on each side, the largest difference
per probe relative to the peer's largest magnitude (or "-" where the draws differ), and each
side's time for all N probes (ours jitted, after compilation).

Run from the repository root (`pip install -e ".[bench]"`):

    python benchmarks/crosscheck_metrics.py              # N = 32
    python benchmarks/crosscheck_metrics.py --quick      # N = 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import numpy as np  # noqa: E402

from benchmarks.vs_captum import prepare, torch_models  # noqa: E402

SAMPLES = 8  # Noisy copies for the robustness metrics and infidelity, both sides.
RADIUS, LIPSCHITZ_STD, INFIDELITY_STD = 0.1, 0.1, 0.1
FLIP_STEP, PATCH = 8, 7


def _timed(call):
    call()  # Warm-up (compiles on the JAX side).
    start = time.perf_counter()
    out = call()
    return out, 1e3 * (time.perf_counter() - start)


# JAX side -----------------------------------------------------------------------------------


def jax_side(paths: dict, out_path: str) -> None:
    import jax
    import jax.numpy as jnp

    import attribution
    import attribution.metrics as metrics
    from attribution.method import example_keys
    from attribution.metrics import (
        _common,
        _robustness,
        infidelity,
        pixel_flipping,
        region_perturbation,
    )
    from trainer import models

    weights = np.load(paths["weights"], allow_pickle=True)["cnn"].item()
    probes = np.load(paths["probes"])
    images = jnp.asarray(probes["images"])
    targets = jnp.asarray(probes["targets_cnn"])
    n = images.shape[0]
    variables = {"params": weights}
    model = models.create_model("cnn")
    classifier = attribution.as_classifier(model, variables, (28, 28, 1))
    explain = {m: attribution.build(m, classifier, variables, (28, 28, 1))
               for m in ("gradient", "integrated_gradients")}
    maps = {m: np.asarray(jax.jit(f)(variables, images, targets, jax.random.key(0)))
            for m, f in explain.items()}
    key = jax.random.key(1)
    saved = {f"maps_{m}": v for m, v in maps.items()}
    saved["strokes"] = np.asarray(_common.stroke_masks(images, 0.5)).reshape(n, 28, 28)
    results = {}

    def ours(name, method, **options):
        fn = metrics.build(name, classifier, **options)
        run = jax.jit(lambda m: metrics.evaluate({name: fn}, variables, images, targets, m,
                                                 explain[method], key)[name])
        scores, ms = _timed(lambda: np.asarray(run(jnp.asarray(maps[method]))))
        results[f"{name}/{method}"] = {"scores": scores.tolist(), "ms": ms}

    for method in maps:
        for name in ("sparseness", "complexity", "relevance_rank_accuracy", "pointing_game",
                     "faithfulness_correlation", "monotonicity"):
            ours(name, method)
        ours("relevance_mass_accuracy", method, positive=False)
        ours("pixel_flipping", method, features_in_step=FLIP_STEP)
        ours("region_perturbation", method, patch_size=PATCH)
        ours("non_sensitivity", method, features_in_step=1)
        ours("infidelity", method, num_samples=SAMPLES, noise_scale=INFIDELITY_STD,
             normalize=False)
        ours("road", method)
        ours("irof", method)
    ours("completeness", "integrated_gradients")
    for name, options in (("max_sensitivity", dict(num_samples=SAMPLES, radius=RADIUS)),
                          ("avg_sensitivity", dict(num_samples=SAMPLES, radius=RADIUS)),
                          ("local_lipschitz_estimate", dict(num_samples=SAMPLES,
                                                            noise_scale=LIPSCHITZ_STD))):
        ours(name, "gradient", **options)
    # The curves, for the curve-by-curve comparison.
    for method, m in maps.items():
        curve = pixel_flipping.make_curve(classifier, features_in_step=FLIP_STEP)
        saved[f"flip_{method}"] = np.asarray(jax.jit(curve)(variables, images, targets, m))
        both = jax.jit(region_perturbation.make_curves(classifier, patch_size=PATCH))(
            variables, images, targets, m)
        saved[f"morf_{method}"], saved[f"lerf_{method}"] = (np.asarray(both["morf"]),
                                                            np.asarray(both["lerf"]))
    # The draws: metric i of `evaluate` draws from fold_in(key, 0) (one metric per call).
    keys = example_keys(jax.random.fold_in(key, 0), n)
    for name, draw in (("uniform", _robustness.uniform(RADIUS)),
                       ("gaussian", _robustness.gaussian(LIPSCHITZ_STD))):
        saved[f"noise_{name}"] = np.stack([np.asarray(jax.vmap(
            lambda k, s=s, draw=draw: draw(jax.random.fold_in(k, s), (28, 28, 1)))(keys))
            for s in range(SAMPLES)])
    saved["noise_infidelity"] = np.stack([np.asarray(infidelity.perturbations(
        keys, s, (28, 28, 1), INFIDELITY_STD)) for s in range(SAMPLES)])
    # ROAD's imputation without noise: the most relevant half of each probe's gradient map.
    from attribution.metrics import _imputation

    rank = np.argsort(np.argsort(-maps["gradient"].reshape(n, -1), axis=1, kind="stable"),
                      axis=1).reshape(n, 28, 28)
    saved["removed"] = rank < 392
    saved["imputed"] = np.asarray(_imputation.impute(images[..., 0],
                                                     jnp.asarray(saved["removed"])))
    np.savez(out_path, **saved)
    with open(out_path + ".json", "w") as f:
        json.dump(results, f)


# Torch side ---------------------------------------------------------------------------------


def torch_side(paths: dict, jax_out: str, out_path: str) -> None:
    import torch

    from benchmarks.crosscheck_peers import _torchvision_or_stub

    _torchvision_or_stub()
    import quantus
    from captum.metrics import infidelity, sensitivity_max

    # Quantus 0.6 computes areas with np.trapz, which numpy 2 removed.
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid
    probes = np.load(paths["probes"])
    saved = np.load(jax_out)
    weights_all = np.load(paths["weights"], allow_pickle=True)
    model, _ = torch_models({k: weights_all[k].item() for k in ("cnn", "cnn_gap")})
    x = np.transpose(probes["images"], (0, 3, 1, 2)).astype(np.float32)  # [N, 1, 28, 28]
    y = probes["targets_cnn"].astype(np.int64)
    s = saved["strokes"][:, None].astype(np.float32)
    results = {}

    def gradient(model, inputs, targets, **kwargs):
        """The plain gradient of the target logit, as our `gradient` method."""
        with torch.enable_grad():  # Captum's sensitivity_max calls it under no_grad.
            xt = torch.tensor(np.asarray(inputs), dtype=torch.float32, requires_grad=True)
            out = model(xt)
            out[torch.arange(len(xt)), torch.as_tensor(np.asarray(targets))].sum().backward()
        return xt.grad.numpy()

    def replay(noise_name):
        """A Quantus perturb_func adding our draws: the whole batch's sample i on the i-th call;
        with one probe per batch, probe i // S's sample i % S."""
        noise = np.transpose(saved[f"noise_{noise_name}"], (0, 1, 4, 2, 3))  # [S, N, 1, H, W]
        calls = {"i": 0}

        def perturb(arr, indices=None, indexed_axes=None, **kwargs):
            i = calls["i"]
            calls["i"] += 1
            if arr.shape[0] == noise.shape[1]:
                return arr + noise[i % len(noise)].reshape(arr.shape)
            return arr + noise[i % len(noise), i // len(noise)].reshape(arr.shape)

        return perturb

    def peer(key, call, *args, **kwargs):
        start = time.perf_counter()
        scores = call(*args, **kwargs)
        ms = 1e3 * (time.perf_counter() - start)
        results[key] = {"scores": np.asarray(scores, np.float64).ravel().tolist(), "ms": ms}

    def run_quantus(cls, a, init=None, **call):
        """A Quantus metric built with `init`, called on the probes and maps `a`."""
        metric = cls(disable_warnings=True, display_progressbar=False, **(init or {}))
        return metric(model=model, x_batch=x, y_batch=y, a_batch=a, channel_first=True, **call)

    for method in ("gradient", "integrated_gradients"):
        a = np.transpose(saved[f"maps_{method}"], (0, 3, 1, 2))
        peer(f"sparseness/{method}", run_quantus, quantus.Sparseness, a)
        peer(f"complexity/{method}", run_quantus, quantus.Complexity, a)
        for name, cls in (("relevance_mass_accuracy", quantus.RelevanceMassAccuracy),
                          ("relevance_rank_accuracy", quantus.RelevanceRankAccuracy),
                          ("pointing_game", quantus.PointingGame)):
            peer(f"{name}/{method}", run_quantus, cls, a, s_batch=s)
        peer(f"faithfulness_correlation/{method}", run_quantus,
             quantus.FaithfulnessCorrelation, a, {"return_aggregate": False})
        peer(f"monotonicity/{method}", run_quantus, quantus.Monotonicity, a)
        for order in ("morf", "lerf"):
            peer(f"region_{order}/{method}", run_quantus, quantus.RegionPerturbation, a,
                 {"patch_size": PATCH, "order": order})
        # Per-instance max normalization (ours): Quantus' batch-wide max is then 1.
        scaled = a / np.abs(a.reshape(len(a), -1)).max(1).reshape(-1, 1, 1, 1)
        peer(f"non_sensitivity/{method}", run_quantus, quantus.NonSensitivity, scaled,
             {"features_in_step": 1})
        peer(f"road/{method}", lambda a=a: np.mean(list(run_quantus(quantus.ROAD, a).values())))
        peer(f"irof/{method}", run_quantus, quantus.IROF, a, {"return_aggregate": False})

        def captum_infidelity(a, sample):
            """Captum's infidelity with one perturbation: our draw number `sample`."""
            noise = np.transpose(saved["noise_infidelity"][sample], (0, 3, 1, 2))

            def perturb(inputs):
                pert = torch.from_numpy(noise.copy())
                return pert, inputs - pert

            with torch.no_grad():
                return infidelity(model, perturb, torch.from_numpy(x), torch.from_numpy(a),
                                  target=torch.from_numpy(y), n_perturb_samples=1,
                                  normalize=False).numpy()

        # One draw per call (n_perturb_samples=1), so ours can be replayed in order; the mean
        # of the per-draw squared errors is the unnormalized infidelity over all draws.
        def infidelity_all(a=a):
            return np.stack([captum_infidelity(a, i) for i in range(SAMPLES)])

        peer(f"infidelity_raw/{method}", infidelity_all)

    a = np.transpose(saved["maps_gradient"], (0, 3, 1, 2))
    for name, cls in (("max_sensitivity", quantus.MaxSensitivity),
                      ("avg_sensitivity", quantus.AvgSensitivity)):
        peer(f"{name}/gradient", run_quantus, cls, a,
             {"nr_samples": SAMPLES, "perturb_func": replay("uniform")}, explain_func=gradient)
    scaled = a / np.abs(a.reshape(len(a), -1)).max(1).reshape(-1, 1, 1, 1)
    peer("local_lipschitz_estimate/gradient", run_quantus, quantus.LocalLipschitzEstimate,
         scaled, {"nr_samples": SAMPLES, "perturb_func": replay("gaussian")},
         explain_func=gradient, batch_size=1)
    uniform = np.transpose(saved["noise_uniform"], (0, 1, 4, 2, 3))

    def captum_gradient(inputs, target):
        """Returns a tuple for a tuple of inputs, as Captum's attribution methods do."""
        if isinstance(inputs, tuple):
            return (captum_gradient(inputs[0], target),)
        return torch.from_numpy(gradient(model, inputs.detach().numpy(), target.numpy()))

    def captum_sensitivity():
        """One sample per call (our draw replayed); the max over the calls."""
        per_sample = []
        for draw in uniform:
            def perturb(inputs, perturb_radius=None, draw=draw):
                inputs = inputs[0] if isinstance(inputs, tuple) else inputs
                return inputs + torch.from_numpy(draw.copy())

            per_sample.append(sensitivity_max(
                captum_gradient, torch.from_numpy(x), perturb_func=perturb, n_perturb_samples=1,
                target=torch.from_numpy(y)).numpy())
        return np.max(per_sample, axis=0)

    peer("sensitivity_max/gradient", captum_sensitivity)
    peer("completeness/integrated_gradients", run_quantus, quantus.Completeness,
         np.transpose(saved["maps_integrated_gradients"], (0, 3, 1, 2)))
    results["curves"] = {"flip_ms": {}}
    for method in ("gradient", "integrated_gradients"):
        a = np.transpose(saved[f"maps_{method}"], (0, 3, 1, 2))
        start = time.perf_counter()
        flip = run_quantus(quantus.PixelFlipping, a, {"features_in_step": FLIP_STEP})
        results["curves"]["flip_ms"][method] = 1e3 * (time.perf_counter() - start)
        results["curves"][f"flip_{method}"] = np.asarray(flip).tolist()
        for order in ("morf", "lerf"):
            curve = run_quantus(quantus.RegionPerturbation, a,
                                {"patch_size": PATCH, "order": order})
            results["curves"][f"{order}_{method}"] = np.asarray(curve).tolist()
    from quantus.functions.perturb_func import noisy_linear_imputation

    imputed = [noisy_linear_imputation(x[i], np.flatnonzero(saved["removed"][i].ravel()),
                                       noise=0.0)[0] for i in range(len(x))]
    results["imputation_diff"] = float(np.max(np.abs(np.asarray(imputed) - saved["imputed"])))
    with open(out_path, "w") as f:
        json.dump(results, f)


# Report -------------------------------------------------------------------------------------


def _diff(ours: np.ndarray, peer: np.ndarray) -> str:
    scale = float(np.max(np.abs(peer))) or 1.0
    return f"{float(np.max(np.abs(ours - peer))) / scale:.1e}"


def report(jax_results: dict, jax_saved, torch_results: dict, n: int) -> list[str]:
    lines = ["| metric | maps | peer | ours (mean) | peer (mean) | max diff / peer scale | "
             "ours ms | peer ms | note |", "|---|---|---|---|---|---|---|---|---|"]

    def row(name, method, peer_name, ours_scores, peer_scores, ours_ms, peer_ms, note="",
            exact=True):
        ours_scores, peer_scores = np.asarray(ours_scores), np.asarray(peer_scores, np.float64)
        diff = _diff(ours_scores, peer_scores) if exact else "-"
        lines.append(f"| {name} | {method} | {peer_name} | {ours_scores.mean():.4g} | "
                     f"{peer_scores.mean():.4g} | {diff} | {ours_ms:.1f} | {peer_ms:.1f} | "
                     f"{note} |")

    def plain(name, method, peer_name="Quantus", note="", exact=True, scale=1.0, key=None):
        ours = jax_results[f"{name}/{method}"]
        peer = torch_results[key or f"{name}/{method}"]
        row(name, method, peer_name, np.asarray(ours["scores"]) * scale, peer["scores"],
            ours["ms"], peer["ms"], note, exact)

    for method in ("gradient", "integrated_gradients"):
        plain("sparseness", method)
        plain("complexity", method, note="Quantus adds 1e-12 inside the log")
        plain("relevance_mass_accuracy", method, note="signed maps, as Quantus (ours: "
              "`positive=False`)")
        plain("relevance_rank_accuracy", method, note="ties: ours by pixel order, Quantus' "
              "sort is unstable")
        plain("pointing_game", method)
        plain("faithfulness_correlation", method, exact=False,
              note="each side draws its own 100 subsets")
        plain("monotonicity", method, exact=False,
              note="Quantus 0.6 never changes its image: always True (1.0)")
        flip = np.asarray(torch_results["curves"][f"flip_{method}"]).reshape(n, -1)
        ours = jax_results[f"pixel_flipping/{method}"]
        row("pixel_flipping", method, "Quantus", ours["scores"],
            np.trapezoid(flip, dx=1 / (flip.shape[1] - 1), axis=1), ours["ms"],
            torch_results["curves"]["flip_ms"][method], "area of Quantus' curve "
            "(its AUC needs np.trapz, gone in numpy 2); curves below")
        plain("non_sensitivity", method, scale=28 * 28,
              note="ours x 784 (Quantus counts pixels); maps scaled per probe")
        ours = jax_results[f"infidelity/{method}"]
        raw = np.asarray(torch_results[f"infidelity_raw/{method}"]["scores"]).reshape(-1, n)
        row("infidelity", method, "Captum", ours["scores"], raw.mean(0), ours["ms"],
            torch_results[f"infidelity_raw/{method}"]["ms"],
            "`normalize=False`, our draws replayed")
        ours = jax_results[f"road/{method}"]
        row("road", method, "Quantus", [np.mean(ours["scores"])],
            torch_results[f"road/{method}"]["scores"], ours["ms"],
            torch_results[f"road/{method}"]["ms"],
            "accuracy averaged over 50 percentages; each side draws its own noise",
            exact=False)
        plain("irof", method, exact=False, note="ours per segment on our SLIC; Quantus' "
              "area on scikit-image's SLIC (about 100 segments)")
        ours_region = np.asarray(jax_results[f"region_perturbation/{method}"]["scores"])
        morf = np.asarray(torch_results[f"region_morf/{method}"]["scores"]).reshape(n, -1)
        lerf = np.asarray(torch_results[f"region_lerf/{method}"]["scores"]).reshape(n, -1)
        row("region_perturbation", method, "Quantus", ours_region, morf.mean(1) - lerf.mean(1),
            jax_results[f"region_perturbation/{method}"]["ms"],
            torch_results[f"region_morf/{method}"]["ms"]
            + torch_results[f"region_lerf/{method}"]["ms"],
            "AOPC(MoRF) - AOPC(LeRF) from Quantus' two curves")
    plain("max_sensitivity", "gradient", note="our draws replayed")
    plain("max_sensitivity", "gradient", peer_name="Captum", key="sensitivity_max/gradient",
          note="`sensitivity_max`, our draws replayed")
    plain("avg_sensitivity", "gradient", note="our draws replayed")
    plain("local_lipschitz_estimate", "gradient", note="our draws replayed; maps scaled per "
          "probe, Quantus run with batch_size=1")
    ours = jax_results["completeness/integrated_gradients"]
    peer = torch_results["completeness/integrated_gradients"]
    row("completeness", "integrated_gradients", "Quantus", ours["scores"], peer["scores"],
        ours["ms"], peer["ms"], "ours: relative gap; Quantus: exact equality (True = 1)",
        exact=False)
    lines += ["", f"ROAD's noisy linear imputation without noise (Quantus' sparse direct solve "
              f"against our conjugate gradients), the most relevant half of each probe's "
              f"gradient removed: largest difference {torch_results['imputation_diff']:.1e} "
              f"(pixel values in [0, 1]).", "",
              "Curves, largest difference relative to the peer's largest value:"]
    for key, ours in (("flip", "pixel flipping"), ("morf", "region perturbation MoRF"),
                      ("lerf", "region perturbation LeRF")):
        for method in ("gradient", "integrated_gradients"):
            peer = np.asarray(torch_results["curves"][f"{key}_{method}"]).reshape(n, -1)
            lines.append(f"- {ours}, {method}: {_diff(jax_saved[f'{key}_{method}'], peer)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=32, help="probe digits")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--quick", action="store_true", help="8 probes, 1 epoch")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        side, weights, probes, out = args.child
        paths = {"weights": weights, "probes": probes}
        if side == "jax":
            jax_side(paths, out)
        else:
            torch_side(paths, out + ".jax.npz", out)
        return
    n, epochs = (8, 1) if args.quick else (args.probes, args.epochs)
    folder = tempfile.mkdtemp(prefix="crosscheck_metrics_")
    print("# Our metrics against Quantus 0.6 and Captum on the same CNN, maps and draws\n")
    paths = prepare(folder, epochs, n)
    out = os.path.join(folder, "results")
    for side, path in (("jax", out + ".jax.npz"), ("torch", out)):
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", side,
                               paths["weights"], paths["probes"], path],
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"The {side} side failed:\n{done.stderr[-3000:]}")
    with open(out + ".jax.npz.json") as f:
        jax_results = json.load(f)
    with open(out) as f:
        torch_results = json.load(f)
    print(f"- {n} probes (the first eval digits), targets the CNN's predictions; "
          f"{SAMPLES} noise draws where a metric draws noise\n")
    print("\n".join(report(jax_results, np.load(out + ".jax.npz"), torch_results, n)))


if __name__ == "__main__":
    main()
