"""64-bit DCT perceptual hash, bit-for-bit the algorithm of imagehash.phash, without numpy or scipy.

Lambda package size matters more than the microseconds numpy would save on a 32x32 input.
"""

from __future__ import annotations

import math
from functools import cache

from PIL import Image

HASH_SIZE = 8
_SAMPLE = HASH_SIZE * 4  # imagehash's highfreq_factor = 4


@cache
def _cosines() -> tuple[tuple[float, ...], ...]:
    """cos(pi*k*(2n+1)/2N) for the first HASH_SIZE DCT-II frequencies k over N=_SAMPLE samples."""
    n = _SAMPLE
    return tuple(
        tuple(math.cos(math.pi * k * (2 * i + 1) / (2 * n)) for i in range(n)) for k in range(HASH_SIZE)
    )


def phash(image: Image.Image) -> str:
    """16 hex chars; near-identical pictures differ in few bits (compare with hamming_distance)."""
    small = image.convert("L").resize((_SAMPLE, _SAMPLE), Image.Resampling.LANCZOS)
    pixels = small.tobytes()
    rows = [pixels[r * _SAMPLE : (r + 1) * _SAMPLE] for r in range(_SAMPLE)]
    cos = _cosines()
    # DCT-II down the columns (axis 0), keeping the low frequencies only, then along the rows (axis 1).
    # scipy's unnormalised DCT-II has a factor 2 per axis; a constant factor does not move the median.
    columns = [
        [sum(c * rows[i][col] for i, c in enumerate(cos[u])) for col in range(_SAMPLE)] for u in range(HASH_SIZE)
    ]
    low = [sum(c * row[i] for i, c in enumerate(cos[v])) for row in columns for v in range(HASH_SIZE)]
    ordered = sorted(low)
    median = (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    value = 0
    for coefficient in low:
        value = (value << 1) | (coefficient > median)
    return f"{value:016x}"


def hamming_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
