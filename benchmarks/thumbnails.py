"""Preview + thumbnail cost of photo_organizer.imaging.derive against naive Pillow and the decode/encode floor.

Run: .venv/bin/python benchmarks/thumbnails.py            (about a minute on 2 cores)

Every number is a ratio against baselines measured in the same run, on 12 MP and 24 MP JPEGs made from a
real photo (upscaled, with noise so that it does not compress trivially):
  naive: Image.open -> exif_transpose (full frame) -> LANCZOS from the full frame for each output -> save both.
  floor: draft() decode at the scale the preview needs, then encode a preview-sized and a thumbnail-sized crop
         of it with our encoder settings; no resampling, no metadata, no hashing. Nothing that makes both
         derivatives can be cheaper.
Peak RSS above idle is measured for one 24 MP image per method, each in its own subprocess.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambdas"))

from photo_organizer.errors import InvalidImageError, RejectionReason  # noqa: E402
from photo_organizer.imaging import DerivativeSpec, derive  # noqa: E402

from photo_organizer.imaging.derive import _WEBP_METHOD as WEBP_METHOD  # noqa: E402  the floor encodes as we do

SPEC = DerivativeSpec()
SOURCE = ROOT / "samples" / "coffee_with_text.jpg"
REPEATS = 5
SIZES = {"12MP": (4000, 3000), "24MP": (6000, 4000)}
TARGETS = {"vs_naive": 0.25, "vs_floor": 2.5, "rss_vs_naive": 0.3, "rss_mib": 64.0, "psnr_db": 0.3}


# ---- test images --------------------------------------------------------------------------------------------


def make_photo(size: tuple[int, int], *, orientation: int | None = None, gps: bool = False) -> bytes:
    """A camera-like JPEG: real photo content upscaled, plus sensor-like noise and fine detail."""
    base = Image.open(SOURCE).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    rng = np.random.default_rng(size[0])
    pixels = np.asarray(base, dtype=np.int16)
    pixels = pixels + rng.normal(0, 6, pixels.shape).astype(np.int16)
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "BenchCam", "B1"
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (43.0, 4.0, 23.16), 3: "W", 4: (89.0, 24.0, 4.32)}
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


# ---- the three methods -------------------------------------------------------------------------------------


def fitted(size: tuple[int, int], edge: int) -> tuple[int, int]:
    scale = min(1.0, edge / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def run_ours(data: bytes) -> bytes:
    return derive(data, SPEC).preview_jpeg


def run_naive(data: bytes) -> bytes:
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    preview = image.resize(fitted(image.size, SPEC.preview_edge), Image.Resampling.LANCZOS)
    thumbnail = image.resize(fitted(image.size, SPEC.thumbnail_edge), Image.Resampling.LANCZOS)
    preview_out, thumbnail_out = io.BytesIO(), io.BytesIO()
    preview.save(preview_out, "JPEG", quality=SPEC.preview_quality)
    thumbnail.save(thumbnail_out, "WEBP", quality=SPEC.thumbnail_quality)
    return preview_out.getvalue()


def run_floor(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", fitted(image.size, SPEC.preview_edge))
    image.load()
    preview_out, thumbnail_out = io.BytesIO(), io.BytesIO()
    image.crop((0, 0, *fitted(image.size, SPEC.preview_edge))).save(preview_out, "JPEG", quality=SPEC.preview_quality)
    image.crop((0, 0, *fitted(image.size, SPEC.thumbnail_edge))).save(
        thumbnail_out, "WEBP", quality=SPEC.thumbnail_quality, method=WEBP_METHOD
    )
    return preview_out.getvalue()


METHODS = {"ours": run_ours, "naive": run_naive, "floor": run_floor}


# ---- measurements ------------------------------------------------------------------------------------------


def median_seconds(data: bytes) -> dict[str, float]:
    """Median of REPEATS runs, methods interleaved so that load drift hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in METHODS}
    for name, method in METHODS.items():
        method(data)  # warm-up: codec tables, imports
    for _ in range(REPEATS):
        for name, method in METHODS.items():
            start = time.perf_counter()
            method(data)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def preview_psnr(data: bytes) -> dict[str, float]:
    """Preview quality against a full-resolution LANCZOS reference (no JPEG step in the reference)."""
    full = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    reference = full.resize(fitted(full.size, SPEC.preview_edge), Image.Resampling.LANCZOS)
    scores = {}
    for name in ("ours", "naive"):
        preview = Image.open(io.BytesIO(METHODS[name](data)))
        assert preview.size == reference.size, (name, preview.size, reference.size)
        scores[name] = psnr(preview, reference)
    return scores


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_child(method: str, path: str) -> None:
    """Runs in a subprocess: prints the peak RSS above idle, in KiB, of one call of `method`."""
    data = Path(path).read_bytes()
    METHODS[method](make_photo((64, 48)))  # load codecs and lazily-imported plugins before measuring idle
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    idle = _status_kib("VmRSS")
    METHODS[method](data)
    print(_status_kib("VmHWM") - idle)


def peak_rss_mib(path: Path) -> dict[str, float]:
    result = {}
    for method in METHODS:
        out = subprocess.run(
            [sys.executable, __file__, "--rss", method, str(path)], check=True, capture_output=True, text=True
        )
        result[method] = int(out.stdout.strip()) / 1024
    return result


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    started = time.perf_counter()
    misses = 0
    with tempfile.TemporaryDirectory() as tmp:
        photos = {label: make_photo(size) for label, size in SIZES.items()}
        photos["12MP-rot6-gps"] = make_photo(SIZES["12MP"], orientation=6, gps=True)
        print(f"derive() vs naive Pillow and the floor; median of {REPEATS}; {os.cpu_count()} cores")
        print(f"{'image':<15}{'MB':>6}{'ours ms':>9}{'naive ms':>9}{'floor ms':>9}{'ours/naive':>11}{'ours/floor':>11}")
        for label, data in photos.items():
            t = median_seconds(data)
            vs_naive, vs_floor = t["ours"] / t["naive"], t["ours"] / t["floor"]
            ok = vs_naive <= TARGETS["vs_naive"] and vs_floor <= TARGETS["vs_floor"]
            misses += not ok
            print(
                f"{label:<15}{len(data) / 1e6:>6.1f}{t['ours'] * 1e3:>9.0f}{t['naive'] * 1e3:>9.0f}"
                f"{t['floor'] * 1e3:>9.0f}{vs_naive:>10.2f}x{vs_floor:>10.2f}x  {verdict(ok)}"
                f" (targets <= {TARGETS['vs_naive']}x naive, <= {TARGETS['vs_floor']}x floor)"
            )

        rotated = derive(photos["12MP-rot6-gps"], SPEC)
        upright = (rotated.metadata.width, rotated.metadata.height) == (3000, 4000)
        print(f"orientation 6 -> {rotated.metadata.width}x{rotated.metadata.height} upright: {verdict(upright)}")
        misses += not upright

        path24 = Path(tmp) / "24mp.jpg"
        path24.write_bytes(photos["24MP"])
        rss = peak_rss_mib(path24)
        ratio = rss["ours"] / rss["naive"]
        ok = ratio <= TARGETS["rss_vs_naive"] and rss["ours"] <= TARGETS["rss_mib"]
        misses += not ok
        print(
            "peak RSS above idle, 24MP: "
            + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in rss.items())
            + f"; ours/naive {ratio:.2f}x  {verdict(ok)} (targets <= {TARGETS['rss_vs_naive']}x, "
            f"<= {TARGETS['rss_mib']:.0f} MiB)"
        )

        for label in SIZES:
            scores = preview_psnr(photos[label])
            gap = scores["naive"] - scores["ours"]
            ok = gap <= TARGETS["psnr_db"]
            misses += not ok
            print(
                f"preview PSNR {label} vs full-res LANCZOS: ours {scores['ours']:.2f} dB, naive "
                f"{scores['naive']:.2f} dB, gap {gap:+.2f} dB  {verdict(ok)} (target gap <= {TARGETS['psnr_db']} dB)"
            )

        truncated = photos["24MP"][: len(photos["24MP"]) // 2]
        try:
            derive(truncated, SPEC)
            rejected = False
        except InvalidImageError as exc:
            rejected = exc.reason is RejectionReason.CORRUPT_IMAGE
        misses += not rejected
        print(f"truncated 24MP JPEG rejected as corrupt_image: {verdict(rejected)}")
    print(f"{misses} target(s) missed; {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss":
        rss_child(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
