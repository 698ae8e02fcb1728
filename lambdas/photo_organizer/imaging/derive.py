"""Validate an uploaded file and make its derivatives in one decode: a JPEG preview and a WebP thumbnail.

Order matters for safety: magic bytes, then the pixel count from the header, and only then a decode. The
decode that makes the preview reads every byte, so truncation and corruption fail it; there is no separate
verification pass (Pillow's verify() passes a truncated JPEG anyway).
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from photo_organizer.errors import ConfigurationError, InvalidImageError, RejectionReason
from photo_organizer.imaging.exif import SWAPS_AXES, TRANSPOSE_FOR_ORIENTATION, orientation_of, read_exif
from photo_organizer.imaging.heif_boxes import declared_heif_sizes
from photo_organizer.imaging.jpeg_scans import MAX_JPEG_SCANS, count_jpeg_scans
from photo_organizer.imaging.phash import phash
from photo_organizer.imaging.pixels import for_jpeg, resizable
from photo_organizer.imaging.sniff import SNIFF_BYTES, sniff_format
from photo_organizer.models import ImageFormat, ImageMetadata

pillow_heif.register_heif_opener()

# Each format's Pillow decoder, called directly rather than through Image.open: Image.open applies Pillow's
# own pixel limit (a global, warning at 89 MP), which would contradict DerivativeSpec.max_pixels. Ours is
# checked from the header right after this, before any pixel is decoded.
_OPENERS = {
    ImageFormat.JPEG: JpegImagePlugin.jpeg_factory,
    ImageFormat.PNG: PngImagePlugin.PngImageFile,
    ImageFormat.WEBP: WebPImagePlugin.WebPImageFile,
    ImageFormat.HEIF: pillow_heif.HeifImageFile,
}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error, RuntimeError)

# Measured in benchmarks/thumbnails.py: see the report there for speed and PSNR against full-frame LANCZOS.
_PREVIEW_RESAMPLE = Image.Resampling.LANCZOS
_REDUCING_GAP = 3.0
_THUMBNAIL_REDUCING_GAP = 1.0  # a box reduce to near size, then LANCZOS on a tiny image
_SMALLEST_PREVIEW_EDGE = 64
# libwebp effort 2 of 6: 2.5x faster than Pillow's default 4 for a 320 px thumbnail, about 2% larger.
_WEBP_METHOD = 2


@dataclass(frozen=True)
class DerivativeSpec:
    preview_edge: int = 1600  # long edge of the JPEG preview used for analysis
    preview_quality: int = 85
    preview_max_bytes: int = 5 * 1024 * 1024  # Rekognition's limit; re-encode smaller if above
    thumbnail_edge: int = 320  # long edge of the WebP thumbnail
    thumbnail_quality: int = 80
    max_pixels: int = 100_000_000  # checked from the header before decoding (decompression bombs)


@dataclass(frozen=True)
class DerivedImage:
    metadata: ImageMetadata
    preview_jpeg: bytes
    thumbnail_webp: bytes


def derive(data: bytes, spec: DerivativeSpec = DerivativeSpec()) -> DerivedImage:
    """Metadata, preview and thumbnail of an upload, or InvalidImageError with the reason to show the user."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone flipped Pillow's global: truncated uploads would be padded with grey and accepted.
        raise ConfigurationError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    if not data:
        raise InvalidImageError(RejectionReason.EMPTY_FILE)
    image_format = sniff_format(data[:SNIFF_BYTES])
    if image_format is None:
        raise InvalidImageError(RejectionReason.UNSUPPORTED_FORMAT, "not a JPEG, PNG, WebP or HEIC/HEIF file")

    if image_format is ImageFormat.JPEG and count_jpeg_scans(data) > MAX_JPEG_SCANS:
        # Each scan is a pass over the whole coefficient buffer: refused before any decoding.
        raise InvalidImageError(RejectionReason.TOO_MANY_SCANS, f"more than {MAX_JPEG_SCANS} scans")
    if image_format is ImageFormat.HEIF:
        # libheif would refuse one above its own limit as an allocation error, or start on one below it.
        for width, height in declared_heif_sizes(data):
            if width * height > spec.max_pixels:
                raise InvalidImageError(
                    RejectionReason.TOO_MANY_PIXELS, f"{width}x{height} is more than {spec.max_pixels} pixels"
                )
    with _rejecting_undecodable():
        image = _OPENERS[image_format](io.BytesIO(data))
        width, height = image.size
        if width <= 0 or height <= 0:
            raise InvalidImageError(RejectionReason.CORRUPT_IMAGE, f"header declares {width}x{height}")
        if width * height > spec.max_pixels:
            raise InvalidImageError(
                RejectionReason.TOO_MANY_PIXELS, f"{width}x{height} is more than {spec.max_pixels} pixels"
            )
        preview = _preview_pixels(image, spec.preview_edge)
    exif = _exif_of(image)
    icc_profile = image.info.get("icc_profile")
    if image_format is ImageFormat.HEIF:
        # libheif already applied the container's rotation and pillow-heif reset the EXIF tag to 1.
        orientation = image.info.get("original_orientation") or orientation_of(exif)
        transpose = None
    else:
        orientation = orientation_of(exif)
        transpose = TRANSPOSE_FOR_ORIENTATION.get(orientation or 1)
    preview = for_jpeg(preview, icc_profile)
    if transpose is not None:
        preview = preview.transpose(transpose)
    thumbnail = _fit(preview, spec.thumbnail_edge, Image.Resampling.LANCZOS, _THUMBNAIL_REDUCING_GAP)
    if thumbnail.mode != "RGB":
        thumbnail = thumbnail.convert("RGB")

    upright_w, upright_h = (height, width) if transpose is not None and orientation in SWAPS_AXES else (width, height)
    facts = read_exif(exif)
    metadata = ImageMetadata(
        format=image_format,
        width=upright_w,
        height=upright_h,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        phash=phash(thumbnail),
        taken_at=facts.taken_at,
        taken_at_offset=facts.taken_at_offset,
        gps=facts.gps,
        camera_make=facts.camera_make,
        camera_model=facts.camera_model,
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None,
    )
    return DerivedImage(
        metadata=metadata,
        preview_jpeg=_encode_preview(preview, spec),
        thumbnail_webp=_encode(thumbnail, "WEBP", quality=spec.thumbnail_quality, method=_WEBP_METHOD),
    )


def _exif_of(image: Image.Image) -> Image.Exif:
    """The EXIF block, read after the pixels decoded: a broken one costs the photo its metadata, not its upload."""
    try:
        return image.getexif()
    except Exception:  # Pillow's TIFF-structure parser has many failure modes on hostile input
        return Image.Exif()


@contextmanager
def _rejecting_undecodable() -> Iterator[None]:
    try:
        yield
    except Image.DecompressionBombError as exc:  # only reachable if a plugin checks on its own
        raise InvalidImageError(RejectionReason.TOO_MANY_PIXELS, str(exc)) from exc
    except MemoryError as exc:
        raise InvalidImageError(RejectionReason.TOO_MANY_PIXELS, "not enough memory to decode") from exc
    except _DECODE_ERRORS as exc:
        raise InvalidImageError(RejectionReason.CORRUPT_IMAGE, f"{type(exc).__name__}: {exc}"[:200]) from exc


def _preview_pixels(image: Image.Image, edge: int) -> Image.Image:
    """Decode once, at the smallest DCT scale that still covers the preview, then resample to size.

    Sizes are in the stored frame: the edge limit is symmetric, and orientation is applied to the small result.
    """
    target = _fitted_size(image.size, edge)
    if isinstance(image, JpegImagePlugin.JpegImageFile) and target != image.size:
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below target. YCbCr output skips the
        # colour conversion and lets luma alone pay for LANCZOS (see _resample_ycbcr).
        image.draft("YCbCr" if image.mode == "RGB" else None, target)
    image.load()
    if image.mode == "YCbCr":
        return _resample_ycbcr(image, target)
    return _resample(resizable(image), target)


def _resample_ycbcr(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """LANCZOS on luma, nearest-neighbour on chroma.

    The chroma planes were stored at half resolution and the preview's 4:2:0 encoding halves them again, so
    a sharper filter there costs a third of the resample time and buys nothing measurable (PSNR within
    0.05 dB of LANCZOS on all three planes in benchmarks/thumbnails.py).
    """
    if image.size == size:
        return image
    # Only luma is copied out at full size (split() would copy all three planes: +12 MiB at 24 MP).
    luma = image.getchannel("Y").resize(size, _PREVIEW_RESAMPLE, reducing_gap=_REDUCING_GAP)
    _, blue, red = image.resize(size, Image.Resampling.NEAREST).split()
    return Image.merge("YCbCr", (luma, blue, red))


def _fit(image: Image.Image, edge: int, resample: Image.Resampling, gap: float) -> Image.Image:
    return _resample(image, _fitted_size(image.size, edge), resample, gap)


def _resample(
    image: Image.Image,
    size: tuple[int, int],
    resample: Image.Resampling = _PREVIEW_RESAMPLE,
    gap: float = _REDUCING_GAP,
) -> Image.Image:
    if image.size == size:
        return image
    return image.resize(size, resample, reducing_gap=gap)


def _fitted_size(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """The size with its long edge at most `edge`, aspect kept; never larger than the original."""
    width, height = size
    long_edge = max(width, height)
    if long_edge <= edge:
        return size
    scale = edge / long_edge
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode_preview(preview: Image.Image, spec: DerivativeSpec) -> bytes:
    """The preview under the byte limit: lower the quality first, then the size."""
    quality = spec.preview_quality
    while True:
        encoded = _encode(preview, "JPEG", quality=quality)
        if len(encoded) < spec.preview_max_bytes:
            return encoded
        if quality > 60:
            quality = max(60, quality - 10)
            continue
        if max(preview.size) <= _SMALLEST_PREVIEW_EDGE:
            raise ConfigurationError(f"preview_max_bytes={spec.preview_max_bytes} is too small for any preview")
        preview = _fit(preview, max(_SMALLEST_PREVIEW_EDGE, int(max(preview.size) * 0.75)), _PREVIEW_RESAMPLE, 2.0)


def _encode(image: Image.Image, image_format: str, **options: int) -> bytes:
    image.info = {}  # resize copies info: never let EXIF, XMP, ICC or a comment ride into a derivative
    out = io.BytesIO()
    image.save(out, image_format, **options)
    return out.getvalue()
