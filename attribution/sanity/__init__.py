"""Sanity checks for attribution maps as numbers: pure, jitted, no I/O.

- `randomization`: model parameter randomization (Adebayo et al. 2018), cascading and
  independent, scored by `similarity` (Spearman of absolute / signed maps, SSIM, Spearman of
  HOG features).
  `reinit` re-initializes layers with their own initializers.
- `input_invariance`: a constant input shift compensated in the first layer (Kindermans
  et al. 2019).
- `faithfulness`: deletion and insertion curves and their areas (Petsiuk et al. 2018).
- `completeness`: integrated gradients' completeness gap (Sundararajan et al. 2017).
- `mprt`: efficient and smooth MPRT (Hedström et al. 2024), eMPRT from the cascade's maps.
- `drift`: how much maps changed between firings during training, and when they settled.
"""

from attribution.sanity.completeness import completeness_gap, make_completeness_gap
from attribution.sanity.drift import make_drift, settled_step
from attribution.sanity.faithfulness import (
    auc,
    deletion_auc,
    insertion_auc,
    make_faithfulness,
)
from attribution.sanity.hog import hog_features
from attribution.sanity.input_invariance import (
    first_linear_layer,
    input_invariance,
    make_input_invariance,
    make_shifted_maps,
    shifted_classifier,
)
from attribution.sanity.mprt import discrete_entropy, efficient_mprt, smoothed
from attribution.sanity.randomization import (
    DEFAULT_SIMILARITIES,
    MODES,
    RandomizationCheck,
    RandomizationResult,
    cascading_stages,
    constant_leaves,
    independent_stages,
    layer_order,
    make_randomization_check,
    random_variables,
    randomization_scores,
    randomize_layers,
    run_together,
    stages,
)
from attribution.sanity.similarity import (
    SIMILARITIES,
    get_similarity,
    hog_spearman,
    l1_similarity,
    spearman_abs,
    spearman_signed,
    ssim,
)

__all__ = [
    "DEFAULT_SIMILARITIES",
    "MODES",
    "SIMILARITIES",
    "RandomizationCheck",
    "RandomizationResult",
    "auc",
    "cascading_stages",
    "completeness_gap",
    "constant_leaves",
    "deletion_auc",
    "discrete_entropy",
    "efficient_mprt",
    "first_linear_layer",
    "hog_features",
    "get_similarity",
    "hog_spearman",
    "independent_stages",
    "input_invariance",
    "insertion_auc",
    "l1_similarity",
    "layer_order",
    "make_completeness_gap",
    "make_drift",
    "make_faithfulness",
    "make_input_invariance",
    "make_randomization_check",
    "make_shifted_maps",
    "random_variables",
    "randomization_scores",
    "run_together",
    "randomize_layers",
    "settled_step",
    "smoothed",
    "shifted_classifier",
    "spearman_abs",
    "spearman_signed",
    "ssim",
    "stages",
]
