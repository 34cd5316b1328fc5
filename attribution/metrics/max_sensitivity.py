"""Max-sensitivity: the largest relative change of the map under small input noise.

Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the (In)fidelity and Sensitivity of
Explanations", NeurIPS 2019 (as Quantus' `MaxSensitivity` and Captum's `sensitivity_max`).
Over `num_samples` draws of uniform noise in [-`radius`, `radius`] on every pixel,

    max_delta ||a(x + delta) - a(x)||_2 / ||a(x)||_2,

the map re-explained for the same target with the method's same key. Defaults: 10 samples
(Captum's; Quantus uses 200), radius 0.1 on [0, 1] pixels (Quantus 0.2, Captum 0.02). Lower
is better: 1 means the map changed by as much as its own size.
"""

from __future__ import annotations

import jax.numpy as jnp

from attribution.metric import Metric
from attribution.metrics._robustness import make_sensitivity

make = make_sensitivity(jnp.max)

METRIC = Metric(name="max_sensitivity", make=make, family="robustness",
                higher_is_better=False, explains=True,
                summary="largest ||a(x + noise) - a(x)|| / ||a(x)|| over uniform noise draws")
