"""Turning whatever mode a decoder produced into 8-bit RGB, the only thing the derivatives hold."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

_SIXTEEN_BIT_GRAY = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_ICC_SPACE_FOR_MODE = {"RGB": "RGB", "CMYK": "CMYK", "L": "GRAY"}
# Pixels per strip when 16-bit grey is scaled to 8 bits: 1 MP strips hold ~8 MB of temporaries.
STRIP_PIXELS = 1 << 20


def resizable(image: Image.Image) -> Image.Image:
    """A mode that LANCZOS resampling supports, alpha kept; palettes and 1-bit cannot be resampled."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK"):
        if "transparency" in image.info and mode in ("RGB", "L"):  # tRNS colour key
            return image.convert("RGBA")
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
    if mode in _SIXTEEN_BIT_GRAY:
        return _sixteen_bit_gray_to_l(image)
    if mode == "1":
        return image.convert("L")
    if mode in ("La", "RGBa"):
        return image.convert("LA" if mode == "La" else "RGBA")
    return image.convert("RGB")


def for_jpeg(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """8-bit sRGB as RGB or YCbCr (JPEG encodes either directly): colour-managed when the file carried a
    usable non-sRGB profile, alpha flattened on white."""
    if image.mode == "YCbCr":
        if not icc_profile or _is_srgb_or_unusable(icc_profile):
            return image
        image = image.convert("RGB")
    if image.mode in ("RGBA", "LA"):
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        return flat
    if icc_profile and image.mode in _ICC_SPACE_FOR_MODE:
        managed = _apply_profile(image, icc_profile)
        if managed is not None:
            return managed
    return image if image.mode == "RGB" else image.convert("RGB")


def _is_srgb_or_unusable(icc_profile: bytes) -> bool:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)).profile
        return profile.xcolor_space.strip() != "RGB" or "srgb" in (profile.profile_description or "").lower()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return True


def _apply_profile(image: Image.Image, icc_profile: bytes) -> Image.Image | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if source.profile.xcolor_space.strip() != _ICC_SPACE_FOR_MODE[image.mode]:
            return None
        if image.mode == "RGB" and "srgb" in (source.profile.profile_description or "").lower():
            return None  # already sRGB: skip the transform's cost
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # a broken profile costs colour accuracy, not the upload


def _sixteen_bit_gray_to_l(image: Image.Image) -> Image.Image:
    """16-bit grey scaled (not clipped, as convert() would) to 8 bits, strip by strip: the whole-image chain
    (32-bit copy, scaled 32-bit copy, 8-bit result) held ~9 bytes per pixel at once on top of the source, about
    1 GB at the pixel limit; strips hold the 1-byte result and one strip's temporaries."""
    width, height = image.size
    out = Image.new("L", image.size)
    rows = max(1, STRIP_PIXELS // max(1, width))
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(height, top + rows)))
        out.paste(strip.convert("I").point(lambda value: value * (1 / 256)).convert("L"), (0, top))
    return out
