"""A representative subset of the hostile corpus through the local gateway's whole upload flow (issue 13):
POST /uploads → presigned form POST → queue → ingest → GET /photos/{id}, with a client that lies about the type.

Each file ends as the corpus says, with nothing left behind for a refused one; an accepted polyglot's original is
only ever served as the image type with nosniff and the strict CSP, and its script-bearing EXIF comes back as
JSON text; the timeline and search keep answering with every one of them in the library.
"""

from __future__ import annotations

import httpx
import pytest

from photo_organizer.local_stack.client import PhotoApiClient

from .corpus import CORPUS, READY, SCRIPT, encode, small_rgb

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("hostile")]  # its own worker chain, beside tests/e2e
SUBSET = [
    "png_declares_65535x65535", "heic_declares_65535x65535", "jpeg_200_scans", "html_behind_jpeg_magic",
    "svg_declared_jpeg", "gif_10k_frames", "png_ztxt_bomb_64mb", "webp_animation_10k_frames", "apng_10k_frames",
    "jpeg_html_zip_polyglot", "jpeg_exif_script_text", "jpeg_exif_year_9999_minus_12h", "jpeg_cmyk_adobe",
]
CASES = [case for case in CORPUS if case.name in SUBSET]


@pytest.fixture(scope="module")
def uploaded(stack):
    """Every file of the subset sent before any is checked: the queue works on them together."""
    user, _ = stack.identity.add_user("hostile-uploader", "a long hostile password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        tickets = {}
        for case in CASES:
            data = case.build()
            ticket = client.start_upload(f"{case.name}.jpg", case.declared_content_type, len(data))
            sent = httpx.post(ticket["url"], data=ticket["fields"], timeout=60.0,
                              files={"file": (f"{case.name}.jpg", data, case.declared_content_type)})
            assert sent.status_code == 204, (case.name, sent.text)
            tickets[case.name] = ticket["photo_id"]
        photos = {name: client.wait_until_processed(photo_id) for name, photo_id in tickets.items()}
        yield user, client, photos


def test_the_subset_holds_every_kind_of_file():
    assert len(CASES) == len(SUBSET)
    assert {case.expected for case in CASES} >= {READY, "too_many_pixels", "too_many_scans", "corrupt_image",
                                                  "unsupported_format"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_upload_through_the_gateway_ends_as_the_corpus_says(stack, uploaded, case):
    user, client, photos = uploaded
    photo = photos[case.name]
    keys = {"original": f"originals/{user.sub}/{photo['photo_id']}",
            "preview": f"previews/{user.sub}/{photo['photo_id']}.jpg",
            "thumbnail": f"thumbnails/{user.sub}/{photo['photo_id']}.webp"}
    if case.expected == READY:
        assert photo["status"] in ("READY", "DUPLICATE"), photo
        assert stack.services.originals.exists(keys["original"])
        assert all(stack.services.derivatives.exists(keys[k]) for k in ("preview", "thumbnail"))
    else:
        assert photo["status"] == "REJECTED" and photo["rejection_reason"] == case.expected, photo
        assert photo["rejection_message"] and photo["urls"] is None
        assert not stack.services.originals.exists(keys["original"])
        assert not any(stack.services.derivatives.exists(keys[k]) for k in ("preview", "thumbnail"))


def test_a_polyglots_original_is_served_only_as_an_image(stack, uploaded):
    _, _, photos = uploaded
    photo = photos["jpeg_html_zip_polyglot"]
    served = httpx.get(photo["urls"]["original"], timeout=60.0)
    assert served.status_code == 200 and b"<html>" in served.content  # the bytes are kept as uploaded
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in served.headers["content-security-policy"]
    assert "script-src 'self'" in served.headers["content-security-policy"]


def test_script_in_exif_comes_back_as_json_text(uploaded):
    _, client, photos = uploaded
    detail = client.photo(photos["jpeg_exif_script_text"]["photo_id"])
    assert detail["camera_make"] == SCRIPT  # a JSON string: inert unless a page injects it as HTML (ours does not)


def test_timeline_and_search_keep_answering_with_the_hostile_files_in_the_library(stack, uploaded):
    _, client, photos = uploaded
    accepted = {p["photo_id"] for p in photos.values() if p["status"] == "READY"}
    assert {p["photo_id"] for p in client.all_photos()} == accepted
    months = client._call("GET", "/photos/months").json()
    assert sum(month["count"] for month in months["months"]) == len(accepted)
    found = client.search("jpeg_exif_year_9999_minus_12h")
    assert photos["jpeg_exif_year_9999_minus_12h"]["photo_id"] in {item["photo_id"] for item in found["items"]}


PNG_HEAD = encode(small_rgb((24, 24)), "PNG")
FORMS = {
    # name: (extra or replaced fields, file parts, expected status)
    "41_fields": ({f"x-amz-meta-{i}": "v" for i in range(40)}, {"file": ("x.png", PNG_HEAD, "image/png")}, 400),
    "1mb_unsigned_field": ({"x-amz-meta-big": "v" * (1 << 20)}, {"file": ("x.png", PNG_HEAD, "image/png")}, 403),
    "two_files": ({}, [("file", ("a.png", PNG_HEAD, "image/png")), ("file", ("b.png", PNG_HEAD, "image/png"))], 400),
    "no_file": ({}, None, 400),
    "another_owners_key": ({"key": "originals/someone-else/x"}, {"file": ("x.png", PNG_HEAD, "image/png")}, 403),
    "traversal_file_name": ({}, {"file": ("../../../etc/passwd", PNG_HEAD, "image/png")}, 204),
    "html_part_type": ({}, {"file": ("x.png", PNG_HEAD, "text/html")}, 204),
}


@pytest.fixture(scope="module")
def former(stack):
    """A user of their own: the forms' photos must not join the library the timeline test counts."""
    user, _ = stack.identity.add_user("hostile-former", "a long hostile password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        yield user, client


@pytest.mark.parametrize("name", list(FORMS))
def test_a_hostile_upload_form_is_refused_or_stored_under_the_servers_key_and_type(stack, former, name):
    user, client = former
    extra, files, expected = FORMS[name]
    ticket = client.start_upload("x.png", "image/png", len(PNG_HEAD))
    sent = httpx.post(ticket["url"], data={**ticket["fields"], **extra}, files=files, timeout=60.0)
    assert sent.status_code == expected, sent.text[:200]
    key = f"originals/{user.sub}/{ticket['photo_id']}"
    if expected == 204:
        # The part's own name and type count for nothing: the key and the type are the signed policy's.
        assert client.wait_until_processed(ticket["photo_id"])["status"] in ("READY", "DUPLICATE")
        assert stack.services.originals.get(key).content_type == "image/png"
    else:
        assert not stack.services.originals.exists(key)
        assert client.photo(ticket["photo_id"])["status"] == "PENDING_UPLOAD"
