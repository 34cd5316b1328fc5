"""Reference sets for the methods that average over baselines (DeepLIFT-SHAP, GradientSHAP)."""

from __future__ import annotations

from typing import Any

import numpy as np

from attribution._checks import image_like

DEFAULT_COUNT = 16
DEFAULT_SEED = 0


def baseline_set(value: Any, input_shape: tuple[int, int, int], name: str = "baselines"
                 ) -> np.ndarray:
    """The baselines as float32 `[B, H, W, C]`.

    Args:
        value: An array of images `[B, H, W, C]`; one image, or a scalar (a set of one); or
            None for 16 images of uniform noise in [0, 1] drawn with seed 0 (pixel values of
            the project's images), the same at every call.
        input_shape: `(H, W, C)`.
        name: The option's name, for error messages.

    Raises:
        ValueError: If `value` is neither a set of images of that shape nor broadcastable to
            one image.
    """
    if value is None:
        rng = np.random.default_rng(DEFAULT_SEED)
        return rng.uniform(size=(DEFAULT_COUNT, *input_shape)).astype(np.float32)
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 4:
        if array.shape[1:] != tuple(input_shape) or array.shape[0] < 1:
            raise ValueError(f"{name} must be images [B, {', '.join(map(str, input_shape))}] "
                             f"with B >= 1, one image or a scalar; got shape {array.shape}.")
        return array
    return image_like(array, input_shape, name)[None]
