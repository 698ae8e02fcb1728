"""Generate the upload test files under tests/data/good and tests/data/bad, and check cases.json against them.

Run: .venv/bin/python tests/data/make_test_images.py
Deterministic and idempotent: a file is rewritten only when its bytes would change, and the script says which.
Sources are the real photos in samples/ (see samples/SOURCES.md). The generated files are committed.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pillow_heif
from PIL import Image

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parents[1] / "samples"
CASES = HERE / "cases.json"

# What a camera would write, used by several files; GPS is Madison, WI (as in samples/coffee_exif_gps.jpg).
GPS_IFD = {1: "N", 2: (43.0, 4.0, 23.16), 3: "W", 4: (89.0, 24.0, 4.32), 5: 0, 6: 266.0}


def sample(name: str, long_edge: int | None = None) -> Image.Image:
    image = Image.open(SAMPLES / name)
    image.load()
    if long_edge:
        image.thumbnail((long_edge, long_edge), Image.Resampling.LANCZOS)
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def camera_exif(*, orientation: int | None = None, gps: bool = False) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Fujifilm\x00", " X-T4 "
    exif[0x8769] = {0x9003: "2023:08:14 18:30:05", 0x9011: "+02:00"}
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = GPS_IFD
    return exif.tobytes()


# ---- good files: accepted whatever the client declared ---------------------------------------------------


def upright_quadrants() -> Image.Image:
    """Top half red and bottom half blue, with a green top-right corner: any wrong turn or flip shows."""
    image = Image.new("RGB", (240, 160), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 240, 80))
    image.paste((0, 200, 0), (160, 0, 240, 80))
    return image


def orientation6_jpeg() -> bytes:
    # Orientation 6 means "rotate 90 degrees clockwise to view": store the picture turned the other way.
    stored = upright_quadrants().transpose(Image.Transpose.ROTATE_90)
    return encode(stored, "JPEG", quality=95, exif=camera_exif(orientation=6))


def gps_jpeg() -> bytes:
    return encode(sample("rocket.jpg", 480).convert("RGB"), "JPEG", quality=85, exif=camera_exif(gps=True))


def png_named_jpg() -> bytes:
    return encode(sample("chelsea.png", 200).convert("RGB"), "PNG", optimize=True)


def small_webp() -> bytes:
    return encode(sample("coffee.png", 300).convert("RGB"), "WEBP", quality=80, method=6)


def rgba_png() -> bytes:
    """A transparent PNG: alpha must be composited on white, not on black."""
    image = sample("astronaut.png", 160).convert("RGBA")
    alpha = Image.new("L", image.size, 0)
    alpha.paste(255, (0, 0, image.width // 2, image.height))
    image.putalpha(alpha)
    return encode(image, "PNG", optimize=True)


def palette_png() -> bytes:
    return encode(sample("coffee.png", 200).convert("RGB").quantize(64), "PNG", optimize=True)


def gray16_png() -> bytes:
    gray = sample("text.png", 200).convert("L")
    return encode(gray.point(lambda v: v * 256, "I").convert("I;16"), "PNG")


def small_heic() -> bytes:
    image = sample("coffee.png", 240).convert("RGB")
    heif = pillow_heif.from_pillow(image)
    out = io.BytesIO()
    heif.save(out, quality=60, exif=camera_exif(gps=True))
    return out.getvalue()


# ---- bad files --------------------------------------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def crafted_bomb_png() -> bytes:
    """IHDR says 30000x30000 (900 MP); the IDAT holds only a few rows, so only a header check can say
    too_many_pixels: a decode attempt would fail as corrupt instead (or exhaust memory first)."""
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)  # 8-bit grey
    rows = zlib.compress(b"\x00" * 30001 * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def valid_bomb_png() -> bytes:
    """A complete, valid 12000x12000 grey PNG (144 MP, 144 MB decoded) that compresses to ~140 KB."""
    width = height = 12000
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    whole = (SAMPLES / "obama2.jpg").read_bytes()
    return whole[: len(whole) // 2]


def garbage_idat_png() -> bytes:
    """A real PNG whose compressed pixel data was overwritten in the middle (CRC no longer matches)."""
    data = bytearray(encode(sample("coffee.png", 200).convert("RGB"), "PNG"))
    idat = data.index(b"IDAT") + 4
    middle = idat + 2000
    data[middle : middle + 64] = bytes((i * 37 + 11) % 256 for i in range(64))
    return bytes(data)


def bad_crc_png() -> bytes:
    """A real PNG whose IHDR checksum is wrong."""
    data = bytearray(encode(sample("chelsea.png", 120).convert("RGB"), "PNG"))
    crc_at = 8 + 8 + 13  # signature, IHDR length+type, IHDR payload
    data[crc_at] ^= 0xFF
    return bytes(data)


def jpeg_header_only() -> bytes:
    return encode(sample("rocket.jpg", 200), "JPEG", quality=80)[:400]


def fake_avif() -> bytes:
    ftyp = b"ftypavif" + b"\x00\x00\x00\x00" + b"avifmif1miaf"
    return struct.pack(">I", 4 + len(ftyp)) + ftyp + b"\x00" * 64


SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><script>alert(document.cookie)</script>
<rect width="100" height="100" fill="red"/></svg>
"""
HTML = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)>not a photo</body></html>\n"
TEXT = b"This is a plain text file that a client uploads as image/jpeg.\n"

GENERATORS: dict[str, Callable[[], bytes]] = {
    "good/orientation6.jpg": orientation6_jpeg,
    "good/gps_exif.jpg": gps_jpeg,
    "good/png_named.jpg": png_named_jpg,
    "good/coffee.webp": small_webp,
    "good/half_transparent.png": rgba_png,
    "good/palette.png": palette_png,
    "good/gray16.png": gray16_png,
    "good/coffee_gps.heic": small_heic,
    "bad/empty.jpg": lambda: b"",
    "bad/truncated_half.jpg": truncated_jpeg,
    "bad/jpeg_header_only.jpg": jpeg_header_only,
    "bad/plain.txt": lambda: TEXT,
    "bad/page.html": lambda: HTML,
    "bad/drawing.svg": lambda: SVG,
    "bad/bomb_30000x30000.png": crafted_bomb_png,
    "bad/bomb_144mp_valid.png": valid_bomb_png,
    "bad/rocket.gif": lambda: encode(sample("rocket.jpg", 160).convert("P"), "GIF"),
    "bad/rocket.tiff": lambda: encode(sample("rocket.jpg", 160), "TIFF"),
    "bad/fake.avif": fake_avif,
    "bad/garbage_idat.png": garbage_idat_png,
    "bad/bad_ihdr_crc.png": bad_crc_png,
}


def main() -> int:
    changed = 0
    for relative, make in GENERATORS.items():
        path = HERE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = make()
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            changed += 1
            print(f"wrote {relative} ({len(data)} bytes)")
    listed = {case["file"] for case in json.loads(CASES.read_text())["cases"] if case.get("file")}
    missing, unlisted = listed - GENERATORS.keys(), GENERATORS.keys() - listed
    if missing or unlisted:
        print(f"cases.json out of step: missing files {sorted(missing)}, unlisted files {sorted(unlisted)}")
        return 1
    print(f"{changed} file(s) changed, {len(GENERATORS)} generated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
