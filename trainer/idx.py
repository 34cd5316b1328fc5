"""Reader for MNIST's IDX files (raw or gzip), with errors that name the file."""

import gzip
import os
import zlib

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxFormatError(ValueError):
    """An IDX file is truncated, has a wrong magic number or an unexpected shape."""


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None) -> np.ndarray:
    """Reads one IDX file into an array shaped by its header.

    The header's counts are authoritative: a file may hold fewer items than
    the original dataset (the offline training subset holds 5,000).

    Args:
      path: file path; a name ending in `.gz` is decompressed.
      expected_ndim: if given, the number of dimensions the header must declare
        (3 for images, 1 for labels).

    Returns:
      The data, shape as in the header, dtype as the header's type code says.

    Raises:
      FileNotFoundError: the file does not exist.
      IdxFormatError: bad magic number, unexpected rank, or fewer bytes than the
        header promises.
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise IdxFormatError(f"{path}: cannot be read ({e}); truncated or not gzip?") from e
    if len(raw) < 4:
        raise IdxFormatError(f"{path}: {len(raw)} bytes, too short for an IDX header.")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _DTYPES:
        magic = int.from_bytes(raw[:4], "big")
        raise IdxFormatError(
            f"{path}: wrong magic number 0x{magic:08x}; an IDX file starts with 0x0000TTDD "
            f"(TT a type code in {sorted(hex(t) for t in _DTYPES)}, DD the rank), "
            "e.g. 0x00000803 for images and 0x00000801 for labels."
        )
    if expected_ndim is not None and ndim != expected_ndim:
        raise IdxFormatError(
            f"{path}: header declares {ndim} dimensions, expected {expected_ndim}."
        )
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise IdxFormatError(f"{path}: truncated inside the header ({len(raw)} bytes).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[type_code])
    needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    available = len(raw) - header_end
    if available < needed:
        raise IdxFormatError(
            f"{path}: truncated: header {shape} needs {needed} data bytes, file has {available}."
        )
    data = np.frombuffer(raw, dtype=dtype, count=needed // dtype.itemsize, offset=header_end)
    return data.reshape(shape)
