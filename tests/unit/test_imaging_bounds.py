"""Bounded decoding work (security review, issue 13): 16-bit grey is scaled in strips, and a JPEG with too many
progressive scans is refused before decoding."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from photo_organizer.errors import InvalidImageError, RejectionReason
from photo_organizer.imaging.derive import derive
from photo_organizer.imaging.jpeg_scans import MAX_JPEG_SCANS, count_jpeg_scans
from photo_organizer.imaging.pixels import resizable


def _jpeg(**options) -> bytes:
    rng = np.random.default_rng(3)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(out, "JPEG", **options)
    return out.getvalue()


def _with_repeated_first_scan(data: bytes, copies: int) -> bytes:
    """The JPEG with its first scan (SOS header and entropy data) written `copies` more times."""
    start = data.index(b"\xff\xda")
    end = start + 2
    while True:  # the next marker that is not stuffing or a restart
        end = data.index(b"\xff", end)
        if data[end + 1] not in (0x00, *range(0xD0, 0xD8)):
            break
        end += 2
    return data[:end] + data[start:end] * copies + data[end:]


def test_scan_counts_of_ordinary_files():
    assert count_jpeg_scans(_jpeg()) == 1
    assert 2 <= count_jpeg_scans(_jpeg(progressive=True)) <= 20
    # SOS bytes inside a segment (a comment here, an EXIF thumbnail elsewhere) are not scans of the image.
    assert count_jpeg_scans(_jpeg(comment=b"\xff\xda" * 500)) == 1


def test_a_jpeg_with_too_many_scans_is_refused_before_decoding():
    hostile = _with_repeated_first_scan(_jpeg(progressive=True), MAX_JPEG_SCANS + 50)
    assert count_jpeg_scans(hostile) > MAX_JPEG_SCANS
    with pytest.raises(InvalidImageError) as refused:
        derive(hostile)
    assert refused.value.reason is RejectionReason.TOO_MANY_SCANS


def test_a_progressive_jpeg_within_the_limit_is_accepted():
    assert derive(_with_repeated_first_scan(_jpeg(progressive=True), 0)).metadata.format.value == "JPEG"


def test_sixteen_bit_grey_strips_give_the_whole_image_result():
    rng = np.random.default_rng(5)
    values = rng.integers(0, 65536, (700, 1500), dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    expected = (values.astype(np.uint32) >> 8).astype(np.uint8)
    import photo_organizer.imaging.pixels as pixels

    pixels.STRIP_PIXELS, saved = 100_000, pixels.STRIP_PIXELS  # many strips, including a short last one
    try:
        converted = resizable(image)
    finally:
        pixels.STRIP_PIXELS = saved
    assert converted.mode == "L" and converted.size == image.size
    assert np.abs(np.asarray(converted).astype(int) - expected).max() <= 1


def test_sixteen_bit_grey_conversion_holds_under_two_bytes_per_pixel_at_its_peak():
    """Peak RSS measured in a fresh process: the whole-image chain held ~8 extra bytes per pixel."""
    script = textwrap.dedent("""
        import resource, sys
        from PIL import Image
        from photo_organizer.imaging.pixels import resizable
        image = Image.new("I;16", (6000, 5000), 40000)
        image.load()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = resizable(image)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert out.mode == "L" and out.getpixel((10, 10)) == 156
        print((after - before) * 1024 / (6000 * 5000))
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                               env={"PYTHONPATH": "lambdas", "PATH": ""}, timeout=120)
    extra_bytes_per_pixel = float(completed.stdout.strip())
    print(f"16-bit grey -> L: {extra_bytes_per_pixel:.2f} extra bytes per pixel at the peak")
    assert extra_bytes_per_pixel < 2.0
