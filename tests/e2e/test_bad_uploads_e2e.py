"""Every case of tests/data/cases.json through the real local flow: API → upload URL → gateway → queue → ingest.

A refused file gets a reason the user can read, its bytes are gone, and nothing else changes; an accepted
one is READY as the format it really is, whatever the client declared.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from photo_organizer.local_stack.client import PhotoApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
DATA = Path(__file__).resolve().parents[1] / "data"
FORMAT_OF_CONTENT_TYPE = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/heif": "HEIF"}
CASES = [c for c in json.loads((DATA / "cases.json").read_text())["cases"] if c["check"] == "derive"]


@pytest.fixture(scope="module")
def carol(stack):
    user, _ = stack.identity.add_user("carol", "carol's long password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        yield user, client


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_upload_case_ends_in_expected_status_and_loses_nothing(stack, carol, case):
    user, client = carol
    data = (DATA / case["file"]).read_bytes()
    ticket = client.start_upload(case["declared_filename"], case["declared_content_type"], max(len(data), 1))
    sent = httpx.post(
        ticket["url"],
        data=ticket["fields"],
        files={"file": (case["declared_filename"], data, case["declared_content_type"])},
        timeout=60.0,
    )
    original_key = f"originals/{user.sub}/{ticket['photo_id']}"
    if case["expected"] == "empty_file":
        # The signed policy's content-length-range starts at 1: the gateway refuses, as S3 does.
        assert sent.status_code == 400 and b"EntityTooSmall" in sent.content
        assert not stack.services.originals.exists(original_key)
        return
    assert sent.status_code == 204
    photo = client.wait_until_processed(ticket["photo_id"])
    listed = {p["photo_id"] for p in client.all_photos()}
    if case["expected"] == "READY":
        assert photo["status"] in ("READY", "DUPLICATE")
        assert FORMAT_OF_CONTENT_TYPE[photo["content_type"]] == case["format"]
        assert stack.services.originals.exists(original_key)
    else:
        assert photo["status"] == "REJECTED"
        assert photo["rejection_reason"] == case["expected"] and photo["rejection_message"]
        assert photo["urls"] is None and ticket["photo_id"] not in listed
        assert not stack.services.originals.exists(original_key)
        for key in (f"previews/{user.sub}/{ticket['photo_id']}.jpg", f"thumbnails/{user.sub}/{ticket['photo_id']}.webp"):
            assert not stack.services.derivatives.exists(key)


def test_oversize_upload_is_refused_by_the_policy_and_leaves_nothing(stack, carol):
    user, client = carol
    limit = stack.settings.max_upload_bytes
    ticket = client.start_upload("big.jpg", "image/jpeg", limit)
    oversize = b"\xff\xd8\xff" + b"\x00" * (limit + 16)
    sent = httpx.post(ticket["url"], data=ticket["fields"], files={"file": ("big.jpg", oversize, "image/jpeg")}, timeout=60)
    assert sent.status_code == 400 and b"EntityTooLarge" in sent.content
    assert not stack.services.originals.exists(f"originals/{user.sub}/{ticket['photo_id']}")
    assert client.photo(ticket["photo_id"])["status"] == "PENDING_UPLOAD"
