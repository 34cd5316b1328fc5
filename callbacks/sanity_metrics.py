"""The evaluation metrics a SanityCallback runs beside its checks, family by family.

Each metric family (`attribution.metric.FAMILIES`) present in the chosen metrics is one
function over every checked method, so a family can run on its own schedule: every
`every[family]`-th firing of the callback (0: never). Families that run at every firing (the
default) are traced into the callback's main program (`inline`: one program compiles faster
than several, and shares their forward passes); each other family compiles into a program of
its own. They take the trained maps the callback's main program made and return means over the
probes; the map-only metrics also score the callback's random maps, which the verdict compares
against. What the callback writes:

  sanity/<method>/<metric>     the metric's mean over the probes (also for <method> "random")
  sanity/verdict               markdown text: `attribution.verdict` on the latest scores
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import attribution
import attribution.metrics as metrics
from attribution import verdict
from attribution.metric import FAMILIES, always

# The verdict's headline metrics: enough for the table, cheap enough for every firing.
DEFAULT_METRICS = ("faithfulness_correlation", "max_sensitivity", "sparseness",
                   "relevance_mass_accuracy", "completeness")
RANDOM = "random"  # The scores of uniform-noise maps, as the sanity checks call them.


def _no_explain(*args: Any) -> jax.Array:
    raise TypeError("A metric that explains again cannot score random maps.")


class MetricFamilies:
    """Builds, schedules and runs the metric families; keeps their latest scores."""

    def __init__(self, chosen: Sequence[str] | Mapping[str, Mapping[str, Any]] = DEFAULT_METRICS,
                 every: Mapping[str, int] | None = None,
                 rules: Sequence[verdict.Rule] = verdict.RULES):
        """Args:
          chosen: metric or family names, or metric name -> options.
          every: family -> run at every n-th firing (0: never); families not named run at
            every firing.
          rules: the verdict's columns.
        """
        if isinstance(chosen, str):
            raise ValueError(f"metrics must be a list of names or a mapping; got {chosen!r}.")
        options = ({n: dict(o) for n, o in chosen.items()} if isinstance(chosen, Mapping)
                   else {n: {} for n in chosen})
        for name, opts in options.items():
            if name in FAMILIES and opts:
                raise ValueError(f"The family {name!r} takes no options; give its metrics' "
                                 "options by their names.")
        names = metrics.expand(list(options))  # Validates names; families become members.
        self.options = {n: dict(options.get(n, {})) for n in names}
        for name, opts in self.options.items():
            metrics.get(name).check_options(opts)
        self.every = {family: 1 for family in FAMILIES}
        for family, n in (every or {}).items():
            if family not in FAMILIES:
                raise ValueError(f"Unknown metric family {family!r} in every; valid families: "
                                 f"{', '.join(FAMILIES)}.")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"every[{family!r}] must be an int >= 0 (0: never); got {n!r}.")
            self.every[family] = n
        self.rules = tuple(rules)
        self.families = {f: [n for n in self.options if metrics.get(n).family == f]
                         for f in FAMILIES}
        self.families = {f: ns for f, ns in self.families.items() if ns and self.every[f]}
        self._functions: dict[str, Any] = {}  # family -> its pure function (see `build`)
        self._programs: dict[str, Any] = {}  # family -> compiled program (not inline ones)
        self._pending: dict[str, Any] = {}  # family -> its compile, run before it is first due
        self.latest: dict[str, dict[str, dict[str, float]]] = {}  # family -> method -> scores

    @property
    def inline(self) -> list[str]:
        """The families that run at every firing: traced into the caller's main program."""
        return [f for f in self.families if self.every[f] == 1]

    def build(self, classifier: Any, methods: Mapping[str, Mapping[str, Any]],
              explain: Mapping[str, Any]) -> None:
        """Builds every family's pure function `(variables, images, targets, trained,
        random_maps, key) -> method -> metric -> mean`.

        Args:
          methods: method name -> options; `explain`: name -> its built attribution function
            (the callback's own, not built again).
        """
        for family, names in self.families.items():
            # Metrics that read only the maps, for any method, run once for every method and
            # the random maps together (vmapped over the maps): the model's forward passes
            # that do not depend on the maps (faithfulness correlation's) are shared.
            shared = {n: metrics.build(n, classifier, **self.options[n]) for n in names
                      if _scores_any_map(metrics.get(n))}
            per_method = {m: {n: metrics.build(n, classifier, **self._options_for(n, opts))
                              for n in names if n not in shared and self._applies(n, m, opts)}
                          for m, opts in methods.items()}

            def family_means(variables, images, targets, trained, random_maps, key,
                             per_method=per_method, shared=shared):
                out = {m: _means(metrics.evaluate(fns, variables, images, targets, trained[m],
                                                  explain[m], key))
                       for m, fns in per_method.items()}
                out[RANDOM] = {}
                if shared:
                    names_in_order = [*per_method, RANDOM]
                    stacked = jnp.stack([*(trained[m] for m in per_method), random_maps])
                    scores = jax.vmap(lambda a: _means(metrics.evaluate(
                        shared, variables, images, targets, a, _no_explain, key)))(stacked)
                    for i, m in enumerate(names_in_order):
                        out[m].update({n: v[i] for n, v in scores.items()})
                return out

            self._functions[family] = family_means

    def inline_means(self, variables: Any, images: jax.Array, targets: jax.Array,
                     trained: Mapping[str, jax.Array], random_maps: jax.Array,
                     key: jax.Array) -> dict[str, Any]:
        """The `inline` families' means, traced inside the caller's jitted program."""
        return {f: self._functions[f](variables, images, targets, dict(trained), random_maps,
                                      key) for f in self.inline}

    def compile(self, variables: Any, methods: Sequence[str], images: jax.Array,
                random_maps: jax.Array, key: jax.Array) -> None:
        """Compiles the families that are not inline, one program each: those due at the first
        firing now, the others just before they are first due (their compile time spread over
        the run). Call `build` first."""
        targets = jax.ShapeDtypeStruct((images.shape[0],), jnp.int32)
        maps = {m: jax.ShapeDtypeStruct(images.shape, jnp.float32) for m in methods}
        for family in self.families:
            if family in self.inline:
                continue
            self._pending[family] = functools.partial(
                lambda fn: jax.jit(fn).lower(
                    variables, images, targets, maps, random_maps, key).compile(),
                self._functions[family])
        for family in self.due(0):
            if family not in self.inline:
                self._compile(family)

    def _compile(self, family: str) -> None:
        if family not in self._programs:
            self._programs[family] = self._pending.pop(family)()

    def _options_for(self, name: str, method_opts: Mapping[str, Any]) -> dict[str, Any]:
        opts = dict(self.options[name])
        if name == "completeness" and "baseline" not in opts:
            opts["baseline"] = float(method_opts.get("baseline", 0.0))
        return opts

    def _applies(self, name: str, method: str, method_opts: Mapping[str, Any]) -> bool:
        if not metrics.get(name).applies_to(attribution.get(method)):
            return False
        # Completeness against a scalar baseline only (the gap's reference image).
        return name != "completeness" or np.ndim(method_opts.get("baseline", 0.0)) == 0

    def due(self, firing: int) -> list[str]:
        """The families that run at the callback's `firing`-th firing (counted from 0): every
        n-th, starting with the n-th (a family run every 2nd firing first runs at the 2nd)."""
        return [f for f in self.families if firing % self.every[f] == self.every[f] - 1]

    def run(self, families: Sequence[str], variables: Any, images: jax.Array,
            targets: jax.Array, trained: Mapping[str, jax.Array], random_maps: jax.Array,
            key: jax.Array) -> dict[str, Any]:
        """The due families' means that are not inline, on the device: family -> method ->
        metric -> []."""
        families = [f for f in families if f not in self.inline]
        for family in families:
            self._compile(family)
        return {f: self._programs[f](variables, images, targets, dict(trained), random_maps, key)
                for f in families}

    def record(self, host: Mapping[str, Any]) -> dict[str, float]:
        """Keeps the host results as the latest; returns their scalar tags."""
        scalars = {}
        for family, by_method in host.items():
            self.latest[family] = {m: {n: float(v) for n, v in scores.items()}
                                   for m, scores in by_method.items()}
            for m, scores in self.latest[family].items():
                scalars.update({f"sanity/{m}/{n}": v for n, v in scores.items()})
        return scalars

    def verdict(self, methods: Sequence[str], sanity_scores: Mapping[str, Mapping[str, float]],
                step: int) -> str:
        """The verdict table on the latest scores of every family and this firing's checks."""
        scores = {m: dict(sanity_scores.get(m, {})) for m in methods}
        random_scores: dict[str, float] = {}
        for by_method in self.latest.values():
            for m in methods:
                scores[m].update(by_method.get(m, {}))
            random_scores.update(by_method.get(RANDOM, {}))
        title = f"Verdict at step {step}"
        stale = sorted(set(self.families) - set(self.latest))
        text = verdict.markdown(scores, random_scores, self.rules, title=title)
        if stale:
            text += f"\n\nNot yet run: {', '.join(stale)}."
        return text


def _scores_any_map(metric: Any) -> bool:
    """Whether a metric can score random maps: it reads only the maps, for any method."""
    return not metric.explains and metric.applies_to is always


def _means(scores: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Means over the probes a metric scored (SIC and AIC skip some, as NaN)."""
    return {n: jnp.nanmean(v) for n, v in scores.items()}
