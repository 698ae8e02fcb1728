"""The local stack end to end: a real gateway on a loopback port, real HTTP, real uploads, real ingest."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest

from photo_organizer.local_stack.client import ApiError, PhotoApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TIMEOUT = 60.0  # shared, loaded machines: httpx's 5 s default has timed out on a plain GET


@pytest.fixture(scope="module")
def alice(stack):
    user, _ = stack.identity.add_user("alice", "correct horse battery")
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        yield client


@pytest.fixture(scope="module")
def bob(stack):
    user, _ = stack.identity.add_user("bob", "another good password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        yield client


@pytest.fixture(scope="module")
def alice_library(alice):
    names = ["coffee_exif_gps.jpg", "obama.jpg", "chelsea.png", "obama3.heic", "rocket.jpg"]
    ids = {name: alice.upload(SAMPLES / name) for name in names}
    return {name: alice.wait_until_processed(photo_id) for name, photo_id in ids.items()}


def test_sample_photos_uploaded_through_upload_urls_become_ready(alice_library):
    assert {name: p["status"] for name, p in alice_library.items()} == dict.fromkeys(alice_library, "READY")
    heic = alice_library["obama3.heic"]
    assert heic["content_type"] == "image/heif" and (heic["width"], heic["height"]) == (1434, 2333)


def test_listing_is_newest_first_and_paginates_with_opaque_cursor(alice, alice_library):
    first = alice.list_photos(limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    everything = alice.all_photos()
    assert sorted(p["photo_id"] for p in everything) == sorted(p["photo_id"] for p in alice_library.values())
    times = [p["taken_at"] or p["uploaded_at"] for p in everything]
    assert times == sorted(times, reverse=True) or len(set(times)) < len(times)


def test_thumbnail_is_fetched_through_signed_url_and_holds_no_gps(alice, alice_library):
    photo = alice.photo(alice_library["coffee_exif_gps.jpg"]["photo_id"])
    assert photo["gps"]["lat"] == pytest.approx(43.0731, abs=1e-3)
    thumb = httpx.get(photo["urls"]["thumbnail"], timeout=TIMEOUT)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert b"GPS" not in thumb.content and b"Exif" not in thumb.content
    tampered = photo["urls"]["thumbnail"].replace("sig=", "sig=0")
    assert httpx.get(tampered).status_code == 403


def test_other_users_photo_id_gives_404_and_their_listing_is_empty(bob, alice_library):
    photo_id = alice_library["obama.jpg"]["photo_id"]
    with pytest.raises(ApiError) as missing:
        bob.photo(photo_id)
    assert missing.value.status == 404
    with pytest.raises(ApiError) as not_deletable:
        bob.delete(photo_id)
    assert not_deletable.value.status == 404
    assert bob.all_photos() == []


def test_concurrent_requests_of_two_users_each_see_only_their_own_library(alice, bob, alice_library):
    """The gateway answers on threads; the API handler's request state must never cross between callers."""
    from concurrent.futures import ThreadPoolExecutor

    alices = sorted(p["photo_id"] for p in alice_library.values())
    calls = [alice, bob] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = list(pool.map(lambda client: (client, sorted(p["photo_id"] for p in client.list_photos()["items"])), calls))
    assert [ids for client, ids in seen if client is alice] == [alices] * 40
    assert [ids for client, ids in seen if client is bob] == [[]] * 40


def test_same_bytes_twice_is_marked_duplicate_of_the_first(alice, alice_library):
    again = alice.wait_until_processed(alice.upload(SAMPLES / "rocket.jpg"))
    assert again["status"] == "DUPLICATE"
    assert again["duplicate_of"] == alice_library["rocket.jpg"]["photo_id"]


def test_renamed_text_file_is_rejected_with_reason_and_removed(stack, alice, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"<html><script>alert(1)</script></html>")
    photo = alice.wait_until_processed(alice.upload(fake, content_type="image/jpeg"))
    assert photo["status"] == "REJECTED" and photo["rejection_reason"] == "unsupported_format"
    owner = stack.identity.get_user("alice").sub
    assert not stack.services.originals.exists(f"originals/{owner}/{photo['photo_id']}")


def test_delete_removes_original_derivatives_and_record(stack, alice):
    photo = alice.wait_until_processed(alice.upload(SAMPLES / "astronaut.png"))
    owner = stack.identity.get_user("alice").sub
    alice.delete(photo["photo_id"])
    with pytest.raises(ApiError) as gone:
        alice.photo(photo["photo_id"])
    assert gone.value.status == 404
    for store, key in (
        (stack.services.originals, f"originals/{owner}/{photo['photo_id']}"),
        (stack.services.derivatives, f"previews/{owner}/{photo['photo_id']}.jpg"),
        (stack.services.derivatives, f"thumbnails/{owner}/{photo['photo_id']}.webp"),
    ):
        assert not store.exists(key)
    assert photo["photo_id"] not in {p["photo_id"] for p in alice.all_photos()}


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer not-a-jwt", "Basic YWxpY2U6cHc="],
    ids=["missing", "empty-bearer", "garbage", "wrong-scheme"],
)
def test_requests_without_a_valid_token_get_401(stack, authorization):
    response = httpx.get(f"{stack.url}/photos", headers={"Authorization": authorization} if authorization else {},
                         timeout=TIMEOUT)
    assert response.status_code == 401 and response.json() == {"message": "Unauthorized"}


def test_expired_and_forged_tokens_get_401(stack):
    user = stack.identity.get_user("alice") or stack.identity.add_user("alice", "correct horse battery")[0]
    expired = stack.identity.issue_token(user, ttl_seconds=60, now=time.time() - 3600)
    header, payload, signature = stack.identity.issue_token(user).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for token in (expired, f"{header}.{forged_payload}.{signature}"):
        response = httpx.get(f"{stack.url}/photos", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
        assert response.status_code == 401


def test_openapi_document_is_public_and_lists_the_routes(stack):
    document = httpx.get(f"{stack.url}/openapi.json", timeout=TIMEOUT).json()
    assert {"/uploads", "/photos", "/photos/{photo_id}"} <= set(document["paths"])
    assert "delete" in document["paths"]["/photos/{photo_id}"]


def test_upload_policy_is_enforced_by_the_gateway(alice):
    data = (SAMPLES / "coffee.png").read_bytes()
    ticket = alice.start_upload("coffee.png", "image/png", len(data))

    def post(fields, payload=data, content_type="image/png"):
        return httpx.post(ticket["url"], data=fields, files={"file": ("coffee.png", payload, content_type)},
                          timeout=TIMEOUT)

    assert post({**ticket["fields"], "key": ticket["fields"]["key"] + "x"}).status_code == 403
    assert post({**ticket["fields"], "Content-Type": "text/html"}).status_code == 403
    assert post({**ticket["fields"], "x-amz-signature": "0" * 64}).status_code == 403
    repeated_key = {**ticket["fields"], "key": [ticket["fields"]["key"], "originals/other/x"]}
    assert post(repeated_key).status_code == 400
    assert post(ticket["fields"], payload=b"").status_code in (400, 403)
    assert post(ticket["fields"]).status_code == 204
    assert post(ticket["fields"]).status_code == 403, "a used upload URL must not replace validated bytes"
    assert alice.wait_until_processed(ticket["photo_id"])["status"] == "READY"


def test_declared_size_above_limit_is_refused_before_any_url_is_issued(stack, alice):
    with pytest.raises(ApiError) as refused:
        alice.start_upload("huge.jpg", "image/jpeg", stack.settings.max_upload_bytes + 1)
    assert refused.value.status == 413


def test_disallowed_content_type_is_refused_with_422(alice):
    with pytest.raises(ApiError) as refused:
        alice.start_upload("anim.gif", "image/gif", 100)
    assert refused.value.status == 422


def test_web_app_page_is_served(stack):
    page = httpx.get(stack.url + "/", timeout=TIMEOUT)
    assert page.status_code == 200 and "Photo Organizer" in page.text


@pytest.mark.parametrize(
    "filename",
    ["../../etc/passwd.jpg", "a\x00b.jpg", "evil\u202egpj.jpg", "/abs/path/x.jpg"],
    ids=["traversal", "nul", "rtl-override", "absolute"],
)
def test_hostile_filename_never_reaches_the_key_and_is_shown_cleaned(stack, alice, filename):
    data = (SAMPLES / "text.png").read_bytes()
    ticket = alice.start_upload(filename, "image/png", len(data))
    owner = stack.identity.get_user("alice").sub
    assert ticket["fields"]["key"] == f"originals/{owner}/{ticket['photo_id']}"
    shown = alice.photo(ticket["photo_id"])["filename"]
    assert "/" not in shown and "\x00" not in shown and "\u202e" not in shown
