"""The pure-Python perceptual hash: identical to imagehash.phash, stable under resizing and recompression."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from photo_organizer.imaging import derive, hamming_distance, phash

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "text.png", "obama.jpg", "biden.jpg"]


@pytest.mark.parametrize("name", PHOTOS)
def test_phash_matches_imagehash(name):
    imagehash = pytest.importorskip("imagehash")
    image = Image.open(SAMPLES / name)
    # Float rounding may flip a coefficient that sits exactly on the median; allow one bit.
    assert hamming_distance(phash(image), str(imagehash.phash(image))) <= 1


def test_phash_is_sixteen_hex_characters():
    value = phash(Image.open(SAMPLES / "rocket.jpg"))
    assert len(value) == 16 and int(value, 16) >= 0


def test_resized_and_recompressed_copy_hashes_near_the_original():
    original = (SAMPLES / "obama.jpg").read_bytes()
    image = Image.open(io.BytesIO(original))
    copy = io.BytesIO()
    image.resize((image.width // 3, image.height // 3), Image.Resampling.BILINEAR).save(copy, "JPEG", quality=55)
    assert hamming_distance(derive(original).metadata.phash, derive(copy.getvalue()).metadata.phash) <= 4


def test_heic_and_jpeg_of_the_same_photo_hash_alike():
    heic = derive((SAMPLES / "obama3.heic").read_bytes()).metadata.phash
    jpeg = derive((SAMPLES / "obama3.jpg").read_bytes()).metadata.phash
    assert hamming_distance(heic, jpeg) <= 2


def test_different_photos_hash_far_apart():
    names = ("astronaut.png", "coffee.png", "rocket.jpg", "obama.jpg")
    hashes = [derive((SAMPLES / name).read_bytes()).metadata.phash for name in names]
    distances = [hamming_distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 16


def test_derive_hashes_the_upright_picture():
    imagehash = pytest.importorskip("imagehash")
    data = (SAMPLES / "coffee_exif_gps.jpg").read_bytes()  # orientation 6
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert hamming_distance(derive(data).metadata.phash, str(imagehash.phash(upright))) <= 4
