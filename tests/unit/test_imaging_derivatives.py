"""The preview and thumbnail: upright, stripped of metadata, within their size bounds, right colours."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from photo_organizer.imaging import DerivativeSpec, derive

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DATA = Path(__file__).resolve().parents[1] / "data"


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def colour_at(image: Image.Image, fx: float, fy: float) -> tuple[int, int, int]:
    return image.convert("RGB").getpixel((int(image.width * fx), int(image.height * fy)))


def is_close(rgb: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, expected))


def jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


@pytest.mark.parametrize(
    "spec", [DerivativeSpec(), DerivativeSpec(preview_edge=100, thumbnail_edge=40)], ids=["full", "dct-scaled"]
)
@pytest.mark.parametrize("which", ["preview_jpeg", "thumbnail_webp"])
def test_orientation_6_comes_out_upright_in_both_derivatives(which, spec):
    derived = derive((DATA / "good" / "orientation6.jpg").read_bytes(), spec)
    image = opened(getattr(derived, which))
    assert image.width > image.height  # stored portrait, displayed landscape
    assert is_close(colour_at(image, 0.25, 0.25), (255, 0, 0))  # red on the top left
    assert is_close(colour_at(image, 0.85, 0.2), (0, 200, 0))  # green on the top right
    assert is_close(colour_at(image, 0.5, 0.8), (0, 0, 255))  # blue at the bottom


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_same_upright_picture(orientation):
    upright = Image.new("RGB", (96, 64), (0, 0, 255))
    upright.paste((255, 0, 0), (0, 0, 48, 32))  # red top-left quadrant
    inverse = {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = upright.transpose(inverse) if inverse is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    derived = derive(jpeg(stored, quality=95, exif=exif.tobytes()))
    preview = opened(derived.preview_jpeg)
    assert (derived.metadata.width, derived.metadata.height) == preview.size == (96, 64)
    assert is_close(colour_at(preview, 0.2, 0.2), (255, 0, 0))
    assert is_close(colour_at(preview, 0.8, 0.2), (0, 0, 255))
    assert is_close(colour_at(preview, 0.2, 0.8), (0, 0, 255))


@pytest.mark.parametrize("source", ["good/gps_exif.jpg", "good/coffee_gps.heic", "samples/coffee_exif_gps.jpg"])
def test_derivatives_carry_no_exif_gps_xmp_or_comment(source):
    path = (SAMPLES.parent / source) if source.startswith("samples/") else (DATA / source)
    data = path.read_bytes()
    assert derive(data).metadata.gps is not None  # the original does have a place
    derived = derive(data)
    for blob in (derived.preview_jpeg, derived.thumbnail_webp):
        image = opened(blob)
        assert len(image.getexif()) == 0
        assert not {"exif", "xmp", "comment", "XML:com.adobe.xmp"} & image.info.keys()
        for marker in (b"Exif\x00\x00", b"EXIF", b"XMP", b"http://ns.adobe.com", b"GPS", b"Fujifilm", b"TestCam"):
            assert marker not in blob


def test_large_photo_preview_has_the_preview_edge_and_the_thumbnail_its_edge():
    derived = derive((SAMPLES / "obama3.jpg").read_bytes())  # 1434x2333
    preview, thumbnail = opened(derived.preview_jpeg), opened(derived.thumbnail_webp)
    assert preview.size == (round(1434 * 1600 / 2333), 1600)
    assert thumbnail.size == (round(1434 * 320 / 2333), 320)
    assert preview.format == "JPEG" and thumbnail.format == "WEBP"
    assert len(derived.preview_jpeg) < DerivativeSpec().preview_max_bytes


def test_small_photo_is_never_upscaled():
    derived = derive((SAMPLES / "rocket.jpg").read_bytes())  # 640x427
    assert opened(derived.preview_jpeg).size == (640, 427)
    assert opened(derived.thumbnail_webp).size == (320, 214)


def test_preview_over_the_byte_limit_is_reencoded_below_it():
    data = (SAMPLES / "obama3.jpg").read_bytes()
    normal = derive(data).preview_jpeg
    limit = len(normal) // 6
    squeezed = derive(data, DerivativeSpec(preview_max_bytes=limit)).preview_jpeg
    assert len(squeezed) < limit
    assert opened(squeezed).size[1] <= 1600


def test_custom_edges_are_honoured():
    spec = DerivativeSpec(preview_edge=800, thumbnail_edge=100)
    derived = derive((SAMPLES / "coffee_with_text.jpg").read_bytes(), spec)
    assert opened(derived.preview_jpeg).size == (800, 533)
    assert opened(derived.thumbnail_webp).size == (100, 67)


def test_transparent_area_becomes_white_not_black():
    preview = opened(derive((DATA / "good" / "half_transparent.png").read_bytes()).preview_jpeg)
    assert preview.mode == "RGB"
    assert is_close(colour_at(preview, 0.85, 0.5), (255, 255, 255), tolerance=6)


def test_sixteen_bit_grey_is_scaled_not_clipped_to_white():
    preview = opened(derive((DATA / "good" / "gray16.png").read_bytes()).preview_jpeg).convert("L")
    low, high = preview.getextrema()
    assert high - low > 100  # the chalk drawing survives; clipping at 255 would leave a blank page


def test_palette_png_keeps_its_colours():
    source = Image.open(DATA / "good" / "palette.png").convert("RGB")
    preview = opened(derive((DATA / "good" / "palette.png").read_bytes()).preview_jpeg)
    assert is_close(colour_at(preview, 0.5, 0.5), colour_at(source, 0.5, 0.5), tolerance=30)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (80, 60), (0, 255, 255, 0))  # red in CMYK
    preview = opened(derive(jpeg(cmyk, quality=95)).preview_jpeg)
    assert preview.mode == "RGB" and is_close(colour_at(preview, 0.5, 0.5), (255, 0, 0), tolerance=60)


def mean_abs_error(a: Image.Image, b: Image.Image) -> float:
    errors = [abs(x - y) for x, y in zip(a.convert("RGB").tobytes(), b.convert("RGB").tobytes())]
    return sum(errors) / len(errors)


@pytest.mark.parametrize("edge", [1200, 700, 750, 375])  # 750 and 375 are exact DCT scales of the 1500 px original
def test_downscaled_jpeg_preview_is_as_faithful_as_a_full_decode_resized(edge):
    # The JPEG fast path decodes at a DCT scale, resamples luma with LANCZOS and chroma with nearest-neighbour.
    data = (SAMPLES / "coffee_with_text.jpg").read_bytes()  # 1500x1000, with drawn text
    ours = opened(derive(data, DerivativeSpec(preview_edge=edge)).preview_jpeg)
    assert ours.size == (edge, round(1000 * edge / 1500))
    reference = opened(data).convert("RGB").resize(ours.size, Image.Resampling.LANCZOS)
    naive = opened(jpeg(reference, quality=DerivativeSpec().preview_quality))
    # Both pay the JPEG re-encode; ours may add a little for the cheaper scaling, never much.
    assert mean_abs_error(ours, reference) <= mean_abs_error(naive, reference) + 0.75


def test_heic_previews_are_made():
    derived = derive((SAMPLES / "obama3.heic").read_bytes())
    assert opened(derived.preview_jpeg).size == (round(1434 * 1600 / 2333), 1600)
    assert opened(derived.thumbnail_webp).size[1] == 320


def test_concurrent_derives_from_threads_give_the_same_results_as_serial_ones():
    files = [SAMPLES / "obama.jpg", SAMPLES / "astronaut.png", DATA / "good/orientation6.jpg", SAMPLES / "obama3.heic"]
    blobs = [path.read_bytes() for path in files] * 3
    serial = [derive(blob).metadata for blob in blobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = [derived.metadata for derived in pool.map(derive, blobs)]
    assert parallel == serial
