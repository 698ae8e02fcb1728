"""Which allowed image format a file is, judged from its first bytes only.

The declared content type and the filename are never consulted: a client can lie about both.
"""

from __future__ import annotations

import struct

from photo_organizer.models import ImageFormat

# Bytes of the head that sniff_format needs to see; more is harmless.
SNIFF_BYTES = 256

_HEVC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
# AVIF shares the HEIF container (major brand often mif1) but is not in the allowlist.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def sniff_format(head: bytes) -> ImageFormat | None:
    """The format that the magic bytes announce, or None when it is not one we accept.

    Decoding can still fail later; this only decides which decoder is allowed to try.
    """
    head = bytes(head[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if _is_heif(head):
        return ImageFormat.HEIF
    return None


def _is_heif(head: bytes) -> bool:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    box_size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    # Compatible brands follow the major brand and its 4-byte minor version.
    end = min(box_size, len(head)) if box_size >= 16 else 16
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    if major in _HEVC_BRANDS:
        return True
    if major in _GENERIC_HEIF_BRANDS:
        return not (compatible & _AVIF_BRANDS) or bool(compatible & _HEVC_BRANDS)
    return False
