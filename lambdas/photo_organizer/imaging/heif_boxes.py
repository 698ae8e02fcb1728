"""The image sizes a HEIF file declares (its `ispe` properties), read from the box structure before libheif sees it.

libheif refuses an image above its own security limit (2^30 pixels) with a generic allocation error, which would
reach the user as "corrupt"; between our pixel limit and libheif's it would start decoding. Reading the declared
sizes first gives every HEIF above DerivativeSpec.max_pixels the same answer as any other format: too_many_pixels.

Path: top-level `meta` (a full box) → `iprp` → `ipco` → `ispe` (a full box: version/flags, width, height). Every
item's extents are returned (the primary image, grid tiles, thumbnails): a file that declares any huge image is
refused. Malformed structure ends the walk early; libheif reports corruption itself.
"""

from __future__ import annotations

import struct

_MAX_BOXES = 10_000  # per level: a real file has a handful; this bounds the work on a hostile one


def declared_heif_sizes(data: bytes) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    for meta_start, meta_end in _boxes(data, 0, len(data), b"meta"):
        for iprp in _boxes(data, meta_start + 4, meta_end, b"iprp"):  # meta is a full box: skip version/flags
            for ipco in _boxes(data, *iprp, b"ipco"):
                for start, end in _boxes(data, *ipco, b"ispe"):
                    if end - start >= 12:
                        sizes.append(struct.unpack_from(">II", data, start + 4))
    return sizes


def _boxes(data: bytes, start: int, end: int, wanted: bytes) -> list[tuple[int, int]]:
    """(payload start, payload end) of each `wanted` box directly inside data[start:end]."""
    found, at = [], start
    for _ in range(_MAX_BOXES):
        if at + 8 > end:
            break
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            if at + 16 > end:
                break
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:  # the box runs to the end of its container
            size = end - at
        if size < header or at + size > end:
            break
        if kind == wanted:
            found.append((at + header, at + size))
        at += size
    return found
