"""Counting a JPEG's scans (SOS markers) from its bytes, before anything is decoded.

libjpeg decodes a progressive JPEG by refining its whole coefficient buffer once per scan, so the decode's work grows
with the scan count, and nothing in the format bounds it: a small file can hold thousands of tiny scans. Ordinary
encoders write 1 (baseline) or about 10 (progressive; mozjpeg's searched scripts stay under 20).

The walk follows the marker segments by their lengths (so a JPEG inside an APP1 EXIF thumbnail is skipped, not
counted), and after each SOS header skips the entropy-coded data, where 0xFF is always followed by a stuffed 0x00
or a restart marker.
"""

from __future__ import annotations

MAX_JPEG_SCANS = 100

_SOS, _EOI, _SOI = 0xDA, 0xD9, 0xD8
_STANDALONE = frozenset({0x01, _SOI, *range(0xD0, 0xD8)})  # TEM, SOI, RST0-7: no length field


def count_jpeg_scans(data: bytes, *, stop_after: int = MAX_JPEG_SCANS + 1) -> int:
    """The number of SOS markers of the JPEG's main image, counting up to `stop_after` (then it stops reading).
    Malformed structure ends the count early: the decoder reports corruption itself."""
    scans, i, size = 0, 2, len(data)
    while i + 1 < size and scans < stop_after:
        if data[i] != 0xFF:
            return scans
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == _EOI:
            return scans
        if marker in _STANDALONE:
            i += 2
            continue
        if i + 3 >= size:
            return scans
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return scans
        i += 2 + length
        if marker == _SOS:
            scans += 1
            i = _end_of_entropy_data(data, i)
    return scans


def _end_of_entropy_data(data: bytes, i: int) -> int:
    """The index of the first marker after the entropy-coded segment starting at `i`."""
    size = len(data)
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= size:
            return size
        following = data[i + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            i += 1 if following == 0xFF else 2
            continue
        return i
