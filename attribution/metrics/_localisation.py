"""What the localisation metrics share: the digit's strokes as the object mask.

MNIST has no annotated object masks. The metrics use each digit's own strokes instead: the
pixels brighter than `threshold` of the way from the image's darkest to its brightest value
(0.5 by default). It is a proxy: a model may rightly rely on background pixels that define a
digit (the empty middle of a 0), which the strokes do not include.
"""

from __future__ import annotations

from attribution.metrics._common import check_number

DEFAULT_THRESHOLD = 0.5


def check_threshold(value: float) -> float:
    return check_number(value, "threshold", low=0.0, high=1.0, low_open=False)
