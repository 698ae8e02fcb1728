import pytest
from pydantic import ValidationError

from photo_organizer.models import UploadRequest, clean_filename


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ana\\IMG_0001.JPG", "IMG_0001.JPG"),
        ("pho\x00to.jpg", "photo.jpg"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("   ", "untitled"),
    ],
)
def test_client_filename_is_display_text_without_paths_controls_or_bidi_overrides(given, shown):
    assert clean_filename(given) == shown


@pytest.mark.parametrize("content_type", ["image/gif", "text/html", "image/svg+xml", "application/octet-stream"])
def test_content_type_outside_the_allowlist_is_refused(content_type):
    with pytest.raises(ValidationError):
        UploadRequest(filename="a", content_type=content_type, size=1)


def test_allowed_content_type_is_normalised_and_unknown_fields_are_refused():
    assert UploadRequest(filename="a", content_type=" Image/JPEG ", size=1).content_type == "image/jpeg"
    with pytest.raises(ValidationError):
        UploadRequest(filename="a", content_type="image/png", size=1, key="originals/x/y")
    with pytest.raises(ValidationError):
        UploadRequest(filename="a", content_type="image/png", size=0)
