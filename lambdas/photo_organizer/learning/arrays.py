"""numpy arrays inside model JSON: little-endian float32, base64, with their shape (compact and exact; a model
never travels as a pickle, so loading one runs no code)."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import numpy as np

_FLOAT32 = np.dtype("float32").newbyteorder("<")


def array_to_json(array: np.ndarray) -> dict:
    values = np.asarray(array, dtype=_FLOAT32)
    return {"shape": list(values.shape), "float32": base64.b64encode(values.tobytes()).decode("ascii")}


def array_from_json(body: Mapping) -> np.ndarray:
    shape = tuple(int(n) for n in body["shape"])
    values = np.frombuffer(base64.b64decode(body["float32"]), dtype=_FLOAT32).astype(np.float64)
    if values.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"array data holds {values.size} values, its shape {shape} needs {int(np.prod(shape))}")
    return values.reshape(shape)
