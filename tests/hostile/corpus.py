"""The hostile upload corpus: files made in memory at run time (nothing is committed), each with the outcome the
product must give it — READY or a RejectionReason code, as in tests/data/cases.json — and why.

Builders write bytes by hand where a library would refuse to (headers that lie, loops, bombs) and start from small
images Pillow makes where the file must be otherwise valid. Sizes stay small: a bomb is a few bytes that *declare*
a huge image or decompress to a huge one, never a huge file.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()  # the HEIC builders save through Pillow

READY = "READY"
SCRIPT = "<script>alert(document.cookie)</script>"


@dataclass(frozen=True)
class HostileFile:
    name: str
    build: Callable[[], bytes]
    expected: str  # READY or a RejectionReason value
    declared_content_type: str  # what the (lying) client declares; never consulted by validation
    note: str
    # For accepted files: what the stored record must (not) say, checked against PhotoMetadata fields.
    metadata: dict[str, object] | None = None


# ---- byte-level builders ------------------------------------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_ihdr(width: int, height: int, bit_depth: int = 8, colour_type: int = 0, interlace: int = 0) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_of_zero_rows(width: int, height: int) -> bytes:
    """A complete, valid 8-bit grey PNG of black rows, compressed row by row (never held whole in memory)."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return PNG_SIGNATURE + png_ihdr(width, height) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def png_declaring(width: int, height: int) -> bytes:
    """An IHDR that declares the size, followed by a few rows of data only: just the header is a bomb."""
    rows = zlib.compress(b"\x00" * 64)
    return PNG_SIGNATURE + png_ihdr(width, height) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def small_rgb(size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.new("RGB", size, (200, 40, 40))
    image.paste((40, 40, 200), (0, size[1] // 2, size[0], size[1]))
    return image


def png_with_chunks_before_idat(*chunks: bytes) -> bytes:
    data = encode(small_rgb(), "PNG")
    at = data.index(b"IDAT") - 4
    return data[:at] + b"".join(chunks) + data[at:]


def jpeg_with_frame_size(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 header is rewritten to declare another size (the entropy data stays small)."""
    data = bytearray(encode(small_rgb(), "JPEG", quality=80))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def exif_block(ifd0: list[tuple[int, int, int, bytes]], *, next_ifd: int = 0, tail: bytes = b"") -> bytes:
    """A little-endian TIFF-structured EXIF block ('Exif\\0\\0' + header + IFD0 at offset 8), entries given raw as
    (tag, type, count, 4-byte value or offset), then `tail` (data that offsets point into, from 8 + 2 + 12n + 4)."""
    body = struct.pack("<H", len(ifd0))
    for tag, kind, count, value in ifd0:
        body += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
    body += struct.pack("<I", next_ifd)
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + body + tail


def _ifd_tail_offset(entries: int) -> int:
    return 8 + 2 + 12 * entries + 4


def _ifd(entries: list[tuple[int, int, bytes]], at: int) -> bytes:
    """One IFD written at offset `at` with its out-of-line values right after it; entries are (tag, type, bytes)."""
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 10: 8}
    data_at = at + 2 + 12 * len(entries) + 4
    head, data = struct.pack("<H", len(entries)), b""
    for tag, kind, payload in entries:
        count = len(payload) // sizes[kind]
        if len(payload) <= 4:
            head += struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\x00")
        else:
            head += struct.pack("<HHII", tag, kind, count, data_at + len(data))
            data += payload + b"\x00" * (len(payload) & 1)
    return head + struct.pack("<I", 0) + data


def raw_exif(ifd0: list[tuple[int, int, bytes]], gps: list[tuple[int, int, bytes]]) -> bytes:
    """EXIF with IFD0 and a GPS IFD whose values are written byte for byte (NaN rationals, raw UTF-8 text)."""
    first = _ifd([*ifd0, (0x8825, 4, b"\x00" * 4)], 8)
    gps_at = 8 + len(first)
    first = _ifd([*ifd0, (0x8825, 4, struct.pack("<I", gps_at))], 8)
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + first + _ifd(gps, gps_at)


def rationals(*pairs: tuple[int, int]) -> bytes:
    return b"".join(struct.pack("<II", n, d) for n, d in pairs)


def looping_exif() -> bytes:
    """IFD0 whose Exif and GPS sub-IFD pointers and next-IFD pointer all point back at IFD0 itself."""
    self_pointer = struct.pack("<I", 8)
    return exif_block(
        [(0x010F, 2, 4, b"Cam\x00"), (0x8769, 4, 1, self_pointer), (0x8825, 4, 1, self_pointer)], next_ifd=8
    )


def exif_with_text(tags: dict[int, str], sub_ifd: dict[int, str] | None = None, gps: dict | None = None) -> bytes:
    exif = Image.Exif()
    for tag, text in tags.items():
        exif[tag] = text
    if sub_ifd:
        exif[0x8769] = sub_ifd
    if gps:
        exif[0x8825] = gps
    return exif.tobytes()


def jpeg_with_exif(exif: bytes) -> bytes:
    return encode(small_rgb(), "JPEG", quality=80, exif=exif)


def exif_with_huge_counts() -> bytes:
    """Entries that claim 2^31 values stored past the end of the block, and an IFD that claims 65535 entries."""
    return exif_block([(0x010F, 2, 0x7FFFFFFF, struct.pack("<I", 64)), (0x9286, 7, 0x7FFFFFFF, struct.pack("<I", 8)),
                       (0x8769, 4, 1, struct.pack("<I", _ifd_tail_offset(3)))], tail=struct.pack("<H", 0xFFFF))


def jpeg_with_many_app_segments(count: int, segment: int = 65533) -> bytes:
    """A valid JPEG carrying `count` maximal APP2 ICC_PROFILE segments (Pillow joins them) before the image."""
    data = encode(small_rgb(), "JPEG", quality=80)
    chunk = b"ICC_PROFILE\x00"
    payload = b"\x00" * (segment - 2 - len(chunk) - 2)
    segments = b"".join(
        b"\xff\xe2" + struct.pack(">H", segment) + chunk + bytes([i % 255 + 1, count % 256]) + payload
        for i in range(count)
    )
    return data[:2] + segments + data[2:]


def progressive_jpeg_with_scans(copies: int) -> bytes:
    data = encode(small_rgb((96, 64)), "JPEG", progressive=True, quality=80)
    start = data.index(b"\xff\xda")
    end = start + 2
    while True:
        end = data.index(b"\xff", end)
        if data[end + 1] not in (0x00, *range(0xD0, 0xD8)):
            break
        end += 2
    return data[:end] + data[start:end] * copies + data[end:]


def cmyk_jpeg() -> bytes:
    return encode(small_rgb().convert("CMYK"), "JPEG", quality=85)  # Pillow writes Adobe APP14 (inverted)


def riff(form: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = form + b"".join(kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
                           for kind, data in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.append((kind, data[at + 8 : at + 8 + size]))
        at += 8 + size + (size & 1)
    return chunks


def _vp8x(flags: int, width: int, height: int) -> tuple[bytes, bytes]:
    return b"VP8X", bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")


def animated_webp(frames: int, canvas: tuple[int, int] = (16, 16)) -> bytes:
    """An animated WebP: one 16x16 lossless frame repeated `frames` times, on a canvas of the given size."""
    still = _webp_chunks(encode(Image.new("RGB", (16, 16), (0, 120, 0)), "WEBP", lossless=True))
    bitstream = next(data for kind, data in still if kind == b"VP8L")
    frame = struct.pack("<I", 0)[:3] * 2 + (15).to_bytes(3, "little") * 2 + (100).to_bytes(3, "little") + b"\x00"
    anmf = frame + b"VP8L" + struct.pack("<I", len(bitstream)) + bitstream + (b"\x00" if len(bitstream) % 2 else b"")
    return riff(b"WEBP", [_vp8x(0x02, *canvas), (b"ANIM", b"\x00" * 4 + struct.pack("<H", 0)), *[(b"ANMF", anmf)] * frames])


def still_webp_declaring(width: int, height: int) -> bytes:
    """A VP8X still whose canvas declares the size, holding a 16x16 bitstream."""
    still = _webp_chunks(encode(Image.new("RGB", (16, 16), (0, 120, 0)), "WEBP", lossless=True))
    return riff(b"WEBP", [_vp8x(0, width, height), *still])


def apng(frames: int, declared_frames: int | None = None) -> bytes:
    """An APNG of 8x8 grey frames written chunk by chunk (acTL may declare more frames than are present)."""
    raw = zlib.compress(b"".join(b"\x00" + bytes([i * 30 % 256]) * 8 for i in range(8)))
    out = [PNG_SIGNATURE, png_ihdr(8, 8), png_chunk(b"acTL", struct.pack(">II", declared_frames or frames, 0))]
    sequence = 0
    for index in range(frames):
        out.append(png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, 8, 8, 0, 0, 1, 100, 0, 0)))
        sequence += 1
        if index == 0:
            out.append(png_chunk(b"IDAT", raw))
        else:
            out.append(png_chunk(b"fdAT", struct.pack(">I", sequence) + raw))
            sequence += 1
    out.append(png_chunk(b"IEND", b""))
    return b"".join(out)


def mpo(frames: int) -> bytes:
    """A multi-picture JPEG (MPF in APP2, as phones write for depth and bursts) of `frames` 8x8 grey pictures."""
    pictures = [Image.new("L", (8, 8), index % 256) for index in range(frames)]
    return encode(pictures[0], "MPO", save_all=True, append_images=pictures[1:])


def mpo_declaring_frames(count: int) -> bytes:
    """A two-picture MPO whose MPF NumberOfImages (tag 0xB001, LONG) is rewritten to `count`."""
    data = bytearray(mpo(2))
    at = data.index(b"\x01\xb0\x04\x00\x01\x00\x00\x00")  # little-endian entry: tag, type 4, count 1
    struct.pack_into("<I", data, at + 8, count)
    return bytes(data)


def gif_declaring(width: int, height: int, frames: int = 1) -> bytes:
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x21\xf9\x04\x04\x0a\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    frame += b"\x02\x02\x44\x01\x00"
    return screen + frame * frames + b"\x3b"


def heic(image: Image.Image | None = None) -> bytes:
    return encode(image or small_rgb(), "HEIF", quality=60)


def heic_declaring(width: int, height: int) -> bytes:
    """A real HEIC whose every `ispe` (image spatial extents) box is rewritten to declare the size."""
    data = bytearray(heic())
    at = data.find(b"ispe")
    while at >= 0:
        struct.pack_into(">II", data, at + 8, width, height)  # after the box type: version/flags, then w, h
        at = data.find(b"ispe", at + 4)
    return bytes(data)


def truncated(build: Callable[[], bytes], keep: float) -> Callable[[], bytes]:
    def cut() -> bytes:
        data = build()
        return data[: max(1, int(len(data) * keep))]

    return cut


def zip_archive() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.html", f"<html><body>{SCRIPT}</body></html>")
    return out.getvalue()


def html_polyglot_jpeg() -> bytes:
    """A valid JPEG whose comment segment is an HTML page and which ends with a ZIP archive (JPEG+HTML+ZIP)."""
    return encode(small_rgb(), "JPEG", quality=80, comment=f"<html><body>{SCRIPT}</body></html>".encode()) + zip_archive()


def png_then_html() -> bytes:
    return encode(small_rgb(), "PNG") + f"<html>{SCRIPT}</html>".encode()


def svg_with_jpeg_extension() -> bytes:
    return f'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>{SCRIPT}</script></svg>'.encode()


def html_starting_with_jpeg_magic() -> bytes:
    return b"\xff\xd8\xff\xe0" + f"<html><body>{SCRIPT}</body></html>".encode()


def sixteen_bit(mode: str) -> Callable[[], bytes]:
    def build() -> bytes:
        if mode == "I;16":
            return encode(Image.linear_gradient("L").resize((64, 48)).convert("I;16"), "PNG")
        # Pillow cannot write 16-bit RGB(A): write the PNG by hand (colour type 2 or 6, bit depth 16).
        channels, colour_type = (3, 2) if mode == "RGB16" else (4, 6)
        row = b"\x00" + b"".join(struct.pack(">H", (x * 1000) % 65536) * channels for x in range(32))
        return PNG_SIGNATURE + png_ihdr(32, 16, 16, colour_type) + png_chunk(b"IDAT", zlib.compress(row * 16)) + \
            png_chunk(b"IEND", b"")

    return build


def palette_png(bits: int, *, out_of_range: bool = False, transparency: bool = False) -> Callable[[], bytes]:
    """A palette PNG of the given bit depth, written by hand: two palette entries only, so an index above 1
    (out_of_range) points past the palette."""
    def build() -> bytes:
        width, height = 16, 4
        per_byte = 8 // bits
        value = (1 << bits) - 1 if out_of_range else 1
        packed = 0
        for i in range(per_byte):
            packed = (packed << bits) | value
        row = b"\x00" + bytes([packed]) * ((width + per_byte - 1) // per_byte)
        chunks = [png_ihdr(width, height, bits, 3), png_chunk(b"PLTE", b"\xff\x00\x00\x00\x00\xff")]
        if transparency:
            chunks.append(png_chunk(b"tRNS", b"\x00\x80\xff\xff\xff"))  # longer than the palette
        return PNG_SIGNATURE + b"".join(chunks) + png_chunk(b"IDAT", zlib.compress(row * height)) + png_chunk(b"IEND", b"")

    return build


def zlib_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    return b"".join(packer.compress(block) for _ in range(size >> 20)) + packer.flush()


# ---- the corpus -----------------------------------------------------------------------------------------------------

CORPUS: list[HostileFile] = [
    # Decompression bombs: the header declares more pixels than the limit; refused before a pixel is decoded.
    HostileFile("png_declares_65535x65535", lambda: png_declaring(65535, 65535), "too_many_pixels", "image/png",
                "IHDR declares 4.3 G pixels; a few rows of data follow"),
    HostileFile("png_declares_2147483647x1", lambda: png_declaring(2**31 - 1, 1), "too_many_pixels", "image/png",
                "the widest row PNG allows"),
    HostileFile("png_zero_width", lambda: png_declaring(0, 16), "corrupt_image", "image/png", "IHDR width 0"),
    HostileFile("png_101mp_complete", lambda: png_of_zero_rows(10050, 10050), "too_many_pixels", "image/png",
                "a complete, valid 101 MP grey PNG of ~100 KB (zlib ratio ~1000:1)"),
    HostileFile("png_81mp_under_the_limit", lambda: png_of_zero_rows(9000, 9000), READY, "image/png",
                "a complete 81 MP grey PNG of ~80 KB: under the limit, so decoded whole (the memory bound's test)"),
    HostileFile("jpeg_declares_65535x65535", lambda: jpeg_with_frame_size(65535, 65535), "too_many_pixels",
                "image/jpeg", "SOF0 rewritten to 65535x65535 over 64x48 of entropy data"),
    HostileFile("jpeg_declares_zero_height", lambda: jpeg_with_frame_size(64, 0), "corrupt_image", "image/jpeg",
                "SOF0 height 0 (a DNL-deferred height, which libjpeg refuses)"),
    HostileFile("webp_still_declares_16384x16384", lambda: still_webp_declaring(16384, 16384), "too_many_pixels",
                "image/webp", "VP8X canvas 268 MP around a 16x16 bitstream"),
    HostileFile("webp_animation_canvas_65535x65535", lambda: animated_webp(1, (65535, 65535)), "too_many_pixels",
                "image/webp", "an animated WebP whose canvas is 4.3 G pixels (libwebp would allocate it whole)"),
    HostileFile("heic_declares_65535x65535", lambda: heic_declaring(65535, 65535), "too_many_pixels",
                "image/heic", "a real HEIC whose ispe boxes declare 65535x65535"),
    HostileFile("heic_declares_12000x12000", lambda: heic_declaring(12000, 12000), "too_many_pixels",
                "image/heic", "144 MP: above our limit, below libheif's own (which would start decoding)"),
    HostileFile("webp_animation_canvas_12000x12000", lambda: animated_webp(1, (12000, 12000)), "too_many_pixels",
                "image/webp", "144 MP: below Pillow's own WebP check (179 MP), so libwebp allocates the canvas"),
    HostileFile("gif_declares_65535x65535", lambda: gif_declaring(65535, 65535), "unsupported_format", "image/jpeg",
                "GIF is not in the allowlist: refused from its magic bytes, never decoded"),
    # Many frames: only the first frame of an accepted format is ever decoded.
    HostileFile("apng_10k_frames", lambda: apng(10_000), READY, "image/png", "10,000 8x8 APNG frames"),
    HostileFile("apng_declares_2g_frames", lambda: apng(2, declared_frames=2**31 - 1), READY, "image/png",
                "acTL declares 2^31-1 frames; two are present"),
    HostileFile("webp_animation_10k_frames", lambda: animated_webp(10_000), READY, "image/webp",
                "10,000 16x16 lossless ANMF frames"),
    HostileFile("mpo_1000_frames", lambda: mpo(1000), READY, "image/jpeg",
                "a multi-picture JPEG with 1,000 pictures: only the first is decoded"),
    HostileFile("mpo_declares_4g_frames", lambda: mpo_declaring_frames(0xFFFFFFFF), READY, "image/jpeg",
                "MPF NumberOfImages 2^32-1 over two pictures: read as the base JPEG"),
    HostileFile("gif_10k_frames", lambda: gif_declaring(16, 16, 10_000), "unsupported_format", "image/png",
                "a 10,000-frame GIF animation declared as PNG"),
    # Truncated and corrupt.
    HostileFile("png_truncated_in_idat", truncated(lambda: encode(small_rgb((256, 256)), "PNG"), 0.6),
                "corrupt_image", "image/png", "60% of a PNG"),
    HostileFile("png_signature_only", lambda: PNG_SIGNATURE, "corrupt_image", "image/png", "8 bytes"),
    HostileFile("jpeg_truncated_progressive", truncated(
        lambda: encode(small_rgb((512, 384)), "JPEG", progressive=True, quality=90), 0.5), "corrupt_image",
        "image/jpeg", "half of a progressive JPEG (libjpeg would show the early scans)"),
    HostileFile("jpeg_soi_only", lambda: b"\xff\xd8\xff", "corrupt_image", "image/jpeg", "the three magic bytes"),
    HostileFile("webp_truncated", truncated(lambda: encode(small_rgb((256, 256)), "WEBP", quality=80), 0.5),
                "corrupt_image", "image/webp", "half of a lossy WebP"),
    HostileFile("heic_truncated", truncated(lambda: heic(small_rgb((256, 256))), 0.5), "corrupt_image",
                "image/heic", "half of a HEIC"),
    HostileFile("jpeg_200_scans", lambda: progressive_jpeg_with_scans(200), "too_many_scans", "image/jpeg",
                "a progressive JPEG with its first scan repeated 200 times"),
    # Not images, or images wrapped around other things.
    HostileFile("svg_declared_jpeg", svg_with_jpeg_extension, "unsupported_format", "image/jpeg", "SVG with script"),
    HostileFile("html_declared_png", lambda: f"<!DOCTYPE html><html>{SCRIPT}</html>".encode(), "unsupported_format",
                "image/png", "an HTML page"),
    HostileFile("html_behind_jpeg_magic", html_starting_with_jpeg_magic, "corrupt_image", "image/jpeg",
                "JPEG magic bytes then an HTML page: sniffed as JPEG, fails to decode"),
    HostileFile("zip_declared_jpeg", zip_archive, "unsupported_format", "image/jpeg", "a ZIP archive"),
    HostileFile("pdf_declared_png", lambda: b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "unsupported_format",
                "image/png", "a PDF"),
    HostileFile("jpeg_html_zip_polyglot", html_polyglot_jpeg, READY, "image/jpeg",
                "a valid JPEG with an HTML comment and a ZIP appended: the picture is real, derivatives are "
                "re-encoded without the comment, the original is only ever served as image/jpeg with nosniff"),
    HostileFile("png_with_html_appended", png_then_html, READY, "image/png", "bytes after IEND are ignored"),
    # Metadata: oversized, looping or absurd; it costs the photo its metadata at most, never the upload.
    HostileFile("png_ztxt_bomb_64mb", lambda: png_with_chunks_before_idat(
        png_chunk(b"zTXt", b"Comment\x00\x00" + zlib_bomb(16 << 20))), "corrupt_image", "image/png",
        "a zTXt chunk that inflates to 16 MiB: Pillow stops inflating at MAX_TEXT_CHUNK (1 MiB) and refuses the file"),
    HostileFile("png_itxt_4mb_plain", lambda: png_with_chunks_before_idat(
        png_chunk(b"iTXt", b"Description\x00\x00\x00\x00\x00" + SCRIPT.encode() * ((4 << 20) // len(SCRIPT)))),
        READY, "image/png", "a 4 MiB uncompressed iTXt of script tags"),
    HostileFile("png_20k_text_chunks", lambda: png_with_chunks_before_idat(
        *[png_chunk(b"tEXt", b"k%d\x00%s" % (i, SCRIPT.encode())) for i in range(20_000)]), READY, "image/png",
        "20,000 tEXt chunks"),
    HostileFile("png_iccp_bomb", lambda: png_with_chunks_before_idat(
        png_chunk(b"iCCP", b"icc\x00\x00" + zlib_bomb(16 << 20))), "corrupt_image", "image/png",
        "an iCCP profile that inflates to 16 MiB: refused like the zTXt bomb, at 1 MiB inflated"),
    HostileFile("jpeg_looping_exif_ifds", lambda: jpeg_with_exif(looping_exif()), READY, "image/jpeg",
                "IFD0's Exif, GPS and next-IFD pointers all point at IFD0", {"camera_make": "Cam"}),
    HostileFile("jpeg_exif_huge_counts", lambda: jpeg_with_exif(exif_with_huge_counts()), READY, "image/jpeg",
                "EXIF entries claiming 2^31 values past the block's end"),
    HostileFile("jpeg_255_icc_segments", lambda: jpeg_with_many_app_segments(255), READY, "image/jpeg",
                "255 maximal APP2 ICC segments (16 MiB of profile)"),
    HostileFile("jpeg_exif_script_text", lambda: jpeg_with_exif(raw_exif([
        (0x010E, 2, SCRIPT.encode() + b"\x00"), (0x013B, 2, b'"><img src=x onerror=alert(1)>\x00'),
        (0x010F, 2, SCRIPT.encode() + b"\x00"), (0x0110, 2, "\u202egnp.exe\u200b\x07".encode() + b"M" * 500 + b"\x00"),
    ], [])), READY, "image/jpeg",
        "script in ImageDescription, Artist and Make; a UTF-8 bidi override, zero-width space, BEL and 500 chars "
        "in Model (EXIF ASCII is read as Latin-1: the override arrives as 'â\\x80®')",
        {"camera_make": SCRIPT, "camera_model": "â®gnp.exeâ" + "M" * 118}),
    HostileFile("jpeg_exif_year_9999_minus_12h", lambda: jpeg_with_exif(exif_with_text(
        {}, {0x9003: "9999:12:31 23:59:59", 0x9011: "-12:00"})), READY, "image/jpeg",
        "DateTimeOriginal 9999-12-31 23:59:59 at UTC-12 (in UTC it is past year 9999)", {"taken_at": None}),
    HostileFile("jpeg_exif_year_9999_local", lambda: jpeg_with_exif(exif_with_text(
        {}, {0x9003: "9999:12:31 23:59:59"})), READY, "image/jpeg",
        "DateTimeOriginal 9999-12-31 23:59:59 without an offset", {"taken_at": None}),
    HostileFile("jpeg_exif_year_2500", lambda: jpeg_with_exif(exif_with_text(
        {}, {0x9003: "2500:06:01 12:00:00", 0x9011: "+01:00"})), READY, "image/jpeg",
        "DateTimeOriginal in 2500: a clock never set", {"taken_at": None}),
    HostileFile("jpeg_exif_year_0001_plus_14h", lambda: jpeg_with_exif(exif_with_text(
        {}, {0x9003: "0001:01:01 00:00:00", 0x9011: "+14:00"})), READY, "image/jpeg",
        "DateTimeOriginal in year 1 at UTC+14", {"taken_at": None}),
    HostileFile("jpeg_exif_impossible_dates", lambda: jpeg_with_exif(exif_with_text(
        {0x0132: "2023:02:30 25:61:61"}, {0x9003: "0000:00:00 00:00:00", 0x9004: "\x00" * 20, 0x9011: "+99:99"})),
        READY, "image/jpeg", "February 30th, hour 25, all-zero and NUL dates, offset +99:99", {"taken_at": None}),
    HostileFile("jpeg_exif_absurd_gps", lambda: jpeg_with_exif(exif_with_text({}, None, {
        1: "N", 2: (91.0, 0.0, 0.0), 3: "E", 4: (181.0, 0.0, 0.0), 5: 0, 6: 1e12})), READY, "image/jpeg",
        "latitude 91, longitude 181, altitude 10^12 m", {"gps": None}),
    HostileFile("jpeg_exif_nan_gps", lambda: jpeg_with_exif(raw_exif([], [
        (1, 2, b"S\x00"), (2, 5, rationals((0, 0), (0, 0), (0, 0))), (3, 2, b"W\x00"),
        (4, 5, rationals((10, 1), (75, 1), (0, 1))), (6, 5, rationals((1, 0),))])), READY, "image/jpeg",
        "latitude 0/0 (NaN), 75 minutes of longitude, altitude 1/0", {"gps": None}),
    # Pixel formats that are legal and odd: accepted, as the 8-bit RGB they mean.
    HostileFile("png_16bit_grey", sixteen_bit("I;16"), READY, "image/png", "16-bit greyscale"),
    HostileFile("png_16bit_rgb", sixteen_bit("RGB16"), READY, "image/png", "16-bit RGB, hand-written"),
    HostileFile("png_16bit_rgba", sixteen_bit("RGBA16"), READY, "image/png", "16-bit RGBA, hand-written"),
    HostileFile("jpeg_cmyk_adobe", cmyk_jpeg, READY, "image/jpeg", "CMYK JPEG with Adobe APP14 (inverted)"),
    HostileFile("png_palette_1bit", palette_png(1), READY, "image/png", "1-bit palette"),
    HostileFile("png_palette_index_past_end", palette_png(4, out_of_range=True), READY, "image/png",
                "4-bit indices 15 into a two-entry palette"),
    HostileFile("png_palette_long_trns", palette_png(2, transparency=True), READY, "image/png",
                "tRNS longer than the palette"),
    HostileFile("png_palette_without_plte", lambda: PNG_SIGNATURE + png_ihdr(8, 8, 8, 3) + png_chunk(
        b"IDAT", zlib.compress(b"\x00" * 9 * 8)) + png_chunk(b"IEND", b""), READY, "image/png",
        "colour type 3 with no PLTE chunk (Pillow decodes it as grey)"),
]
