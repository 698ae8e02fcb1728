"""Decoding a preview JPEG into pixel arrays for the local models, with one translation of decode failures."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from photo_organizer.errors import InvalidImageError, RejectionReason


def preview_rgb(preview_jpeg: bytes, *, max_edge: int | None = None) -> np.ndarray:
    """(h, w, 3) uint8 RGB; with max_edge, a reduced decode (JPEG DCT scaling) fitted inside max_edge."""
    try:
        with Image.open(io.BytesIO(preview_jpeg)) as image:
            if max_edge is not None:
                image.draft("RGB", (max_edge, max_edge))
                small = image.convert("RGB")
                small.thumbnail((max_edge, max_edge))
                return np.asarray(small)
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImageError(RejectionReason.CORRUPT_IMAGE, f"preview: {type(exc).__name__}: {exc}"[:200]) from exc


def preview_bgr(preview_jpeg: bytes, *, max_edge: int | None = None) -> np.ndarray:
    """The same pixels in OpenCV's BGR order, contiguous (what RapidOCR and NudeNet take)."""
    return np.ascontiguousarray(preview_rgb(preview_jpeg, max_edge=max_edge)[:, :, ::-1])
