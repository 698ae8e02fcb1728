"""The local gateway's enforcement of S3-style POST policies: every way to bend an upload, each with its code."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from photo_organizer.adapters.local.disk_blobs import DiskBlobStore
from photo_organizer.adapters.local.post_policy import VerifiedUpload, decode_policy, verify_post
from photo_organizer.adapters.local.signing import LocalSigner
from photo_organizer.errors import PermanentError, UploadPolicyCode, UploadPolicyError

AREA = "originals"
KEY = "originals/alice/0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4"
CONTENT_TYPE = "image/jpeg"
MAX_BYTES = 1000
SIGNER = LocalSigner(b"local-secret-for-tests-0123456789")


@pytest.fixture
def ticket(tmp_path: Path):
    store = DiskBlobStore(tmp_path, area=AREA, base_url="http://127.0.0.1:8787", signer=SIGNER)
    return store.presigned_post(KEY, content_type=CONTENT_TYPE, max_bytes=MAX_BYTES, ttl=timedelta(minutes=10))


def resigned(fields: dict[str, str], edit: Callable[[dict], None], signer: LocalSigner = SIGNER) -> dict[str, str]:
    """The same form with its policy document edited and validly signed again (a policy we might issue)."""
    document = decode_policy(fields["policy"])
    edit(document)
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    date = fields["x-amz-credential"].split("/")[1]
    return {**fields, "policy": policy, "x-amz-signature": signer.sigv4(date, "local", "s3").sign(policy.encode())}


def tampered_policy(fields: dict[str, str]) -> dict[str, str]:
    document = decode_policy(fields["policy"])
    document["conditions"] = [
        ["content-length-range", 1, 10**12] if isinstance(c, list) else c for c in document["conditions"]
    ]
    return {**fields, "policy": base64.b64encode(json.dumps(document).encode()).decode()}


def without(name: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda fields: {k: v for k, v in fields.items() if k != name}


def replacing(name: str, value: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda fields: {**fields, name: value}


def replace_condition(old_first_key: str, new: object) -> Callable[[dict[str, str]], dict[str, str]]:
    def edit(document: dict) -> None:
        document["conditions"] = [
            new if isinstance(c, dict) and old_first_key in c else c for c in document["conditions"]
        ]

    return lambda fields: resigned(fields, edit)


def signed_garbage(fields: dict[str, str]) -> dict[str, str]:
    policy = base64.b64encode(b"not json").decode()
    date = fields["x-amz-credential"].split("/")[1]
    return {**fields, "policy": policy, "x-amz-signature": SIGNER.sigv4(date, "local", "s3").sign(policy.encode())}


SAME = lambda fields: fields  # noqa: E731
LATER = timedelta(minutes=10)

# (case id, form edit, file size, time after issue, area the POST was sent to, expected code)
CASES = [
    ("no_signature", without("x-amz-signature"), 10, None, AREA, "missing_field"),
    ("no_policy", without("policy"), 10, None, AREA, "missing_field"),
    ("no_key", without("key"), 10, None, AREA, "missing_field"),
    ("no_content_type", without("Content-Type"), 10, None, AREA, "missing_field"),
    ("no_credential", without("x-amz-credential"), 10, None, AREA, "missing_field"),
    ("forged_signature", replacing("x-amz-signature", "0" * 64), 10, None, AREA, "bad_signature"),
    ("policy_edited_without_signing", tampered_policy, 10, None, AREA, "bad_signature"),
    ("signed_by_another_secret",
     lambda f: resigned(f, lambda d: None, LocalSigner(b"someone-elses-secret-0123456789")), 10, None, AREA,
     "bad_signature"),
    ("algorithm_changed", replacing("x-amz-algorithm", "AWS4-HMAC-SHA1"), 10, None, AREA, "bad_signature"),
    ("credential_scope_changed",
     lambda f: {**f, "x-amz-credential": f["x-amz-credential"].replace("/local/", "/us-east-1/")}, 10, None, AREA,
     "bad_signature"),
    ("date_changed", lambda f: {**f, "x-amz-date": "19990101T000000Z"}, 10, None, AREA, "bad_signature"),
    ("expired", SAME, 10, LATER + timedelta(seconds=1), AREA, "expired"),
    ("expired_at_the_exact_second", SAME, 10, LATER, AREA, "expired"),
    ("other_key", replacing("key", "originals/alice/someone-elses-photo"), 10, None, AREA, "key_mismatch"),
    ("traversal_key", replacing("key", "originals/alice/../bob/x"), 10, None, AREA, "key_mismatch"),
    ("key_only_prefix_pinned", replace_condition("key", ["starts-with", "$key", "originals/alice/"]), 10, None,
     AREA, "key_mismatch"),
    ("other_content_type", replacing("Content-Type", "text/html"), 10, None, AREA, "content_type_mismatch"),
    ("content_type_only_prefix_pinned", replace_condition("Content-Type", ["starts-with", "$Content-Type", "image/"]),
     10, None, AREA, "content_type_mismatch"),
    ("empty_file", SAME, 0, None, AREA, "size_out_of_range"),
    ("one_byte_too_large", SAME, MAX_BYTES + 1, None, AREA, "size_out_of_range"),
    ("posted_to_another_area", SAME, 10, None, "derivatives", "bucket_mismatch"),
    ("bucket_field_disagrees", replacing("bucket", "derivatives"), 10, None, AREA, "bucket_mismatch"),
    ("signed_garbage_policy", signed_garbage, 10, None, AREA, "malformed_policy"),
    ("unknown_condition", lambda f: resigned(f, lambda d: d["conditions"].append(["matches", "$key", ".*"])), 10,
     None, AREA, "malformed_policy"),
    ("no_length_range",
     lambda f: resigned(f, lambda d: d.update(conditions=[c for c in d["conditions"] if isinstance(c, dict)])), 10,
     None, AREA, "malformed_policy"),
    ("expiration_not_a_time", lambda f: resigned(f, lambda d: d.update(expiration="tomorrow")), 10, None, AREA,
     "malformed_policy"),
    ("extra_metadata_field", replacing("x-amz-meta-owner", "bob"), 10, None, AREA, "unexpected_field"),
    ("extra_redirect_field", replacing("success_action_redirect", "https://evil.example"), 10, None, AREA,
     "unexpected_field"),
    ("same_field_twice_in_two_cases", replacing("content-type", "text/html"), 10, None, AREA, "unexpected_field"),
]


@pytest.mark.parametrize(
    "edit, file_size, after, area, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_a_bent_upload_is_refused_with_its_code(ticket, edit, file_size, after, area, expected):
    now = ticket.expires_at - LATER + (after or timedelta(seconds=1))

    with pytest.raises(UploadPolicyError) as caught:
        verify_post(edit(dict(ticket.fields)), file_size=file_size, file_content_type="image/jpeg", area=area,
                    signer=SIGNER, now=now)

    assert caught.value.code == UploadPolicyCode(expected)
    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize(
    "edit, file_size, file_content_type",
    [
        (SAME, 1, "image/jpeg"),
        (SAME, MAX_BYTES, "image/jpeg"),
        (replacing("x-ignore-tracking", "anything"), 10, None),
        # the file part's own type is ignored, as S3 does; the signed field is what is stored
        (SAME, 10, "application/octet-stream"),
        (lambda f: {("content-type" if k == "Content-Type" else k): v for k, v in f.items()}, 10, "image/jpeg"),
        (replacing("file", "the file part, if the caller left it in"), 10, "image/jpeg"),
        (replace_condition("Content-Type", ["eq", "$Content-Type", CONTENT_TYPE]), 10, "image/jpeg"),
    ],
    ids=["one_byte", "max_bytes", "x_ignore_field", "file_part_type_ignored", "lowercase_field_name",
         "file_field_skipped", "eq_condition_form"],
)
def test_an_upload_within_its_policy_is_accepted(ticket, edit, file_size, file_content_type):
    verified = verify_post(edit(dict(ticket.fields)), file_size=file_size, file_content_type=file_content_type,
                           area=AREA, signer=SIGNER, now=ticket.expires_at - timedelta(minutes=9))

    assert verified == VerifiedUpload(key=KEY, content_type=CONTENT_TYPE)


def test_issued_fields_are_s3s_sigv4_post_fields(ticket):
    assert ticket.url == "http://127.0.0.1:8787/_blobs/originals"
    assert set(ticket.fields) == {
        "key", "Content-Type", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"
    }
    credential = ticket.fields["x-amz-credential"].split("/")
    assert credential[2:] == ["local", "s3", "aws4_request"]
    assert ticket.fields["x-amz-date"].startswith(credential[1])
    assert isinstance(ticket.expires_at, datetime) and ticket.expires_at.tzinfo is not None


def test_signer_from_file_makes_a_private_secret_once(tmp_path: Path):
    path = tmp_path / "state" / "signing.key"

    first = LocalSigner.from_file(path)
    second = LocalSigner.from_file(path)

    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_bytes()) == 32
    assert second.verify(b"message", first.sign(b"message"))
    assert not second.verify(b"message", first.sign(b"other message"))
    assert not second.verify(b"message", "n\u00f6t hex")
