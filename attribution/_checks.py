"""Option checks shared by the method factories: clear ValueErrors at construction."""

from __future__ import annotations

from typing import Any

import numpy as np


def positive_int(value: Any, name: str) -> int:
    """Returns `value` if it is an int >= 1, else raises ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    return int(value)


def image_like(value: Any, input_shape: tuple[int, int, int], name: str) -> np.ndarray:
    """Returns `value` (a scalar or array broadcastable to one image) as float32 `[H, W, C]`."""
    array = np.asarray(value, dtype=np.float32)
    try:
        return np.broadcast_to(array, input_shape).copy()
    except ValueError:
        raise ValueError(f"{name} must be a scalar or an array broadcastable to one image "
                         f"{tuple(input_shape)}; got shape {array.shape}.") from None
