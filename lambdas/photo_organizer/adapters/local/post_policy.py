"""Browser POST uploads for the local stack, in S3's SigV4 POST format, and their enforcement.

moto accepts any POST without checking its policy, so this module is where the upload policy is proven:
`sign_post` makes the same fields S3's generate_presigned_post does, and the local gateway runs `verify_post`
on every incoming multipart POST before it stores a byte.

What `verify_post` checks, in this order (first failure wins):
1. every required field is present (`missing_field`), the algorithm is AWS4-HMAC-SHA256 and the signature over
   the base64 policy is valid for the credential's SigV4 scope (`bad_signature`);
2. the policy is a JSON object with an expiration and a list of conditions it understands (`malformed_policy`)
   and has not expired (`expired`);
3. every condition holds: {"field": v} and ["eq", "$field", v] exactly, ["starts-with", "$field", prefix],
   ["content-length-range", min, max] against the real file size (`size_out_of_range`), `bucket` against the
   area (`bucket_mismatch`), `key` (`key_mismatch`), `Content-Type` (`content_type_mismatch`);
4. every submitted field except `file`, `policy`, `x-amz-signature` and `x-ignore-*` is covered by a condition,
   as S3 requires (`unexpected_field`);
5. stricter than S3, because every policy this app signs does so: the policy pins `key` and `Content-Type`
   exactly and bounds the length.

Field names compare case-insensitively, as in S3. The file part's own Content-Type is ignored, as S3 does:
the stored type is the signed `Content-Type` field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from photo_organizer.adapters.local.signing import LocalSigner
from photo_organizer.errors import UploadPolicyCode, UploadPolicyError

ALGORITHM = "AWS4-HMAC-SHA256"
LOCAL_ACCESS_KEY_ID = "local"
LOCAL_REGION = "local"
SERVICE = "s3"
_REQUIRED = ("policy", "x-amz-signature", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "key", "content-type")
_NOT_COVERED = frozenset({"policy", "x-amz-signature"})
_DATE = re.compile(r"^\d{8}$")
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")


@dataclass(frozen=True)
class VerifiedUpload:
    key: str
    content_type: str


def sign_post(
    *,
    area: str,
    key: str,
    content_type: str,
    max_bytes: int,
    expires_at: datetime,
    signer: LocalSigner,
    now: datetime,
) -> dict[str, str]:
    """The form fields of a POST that may store exactly `key` with `content_type`, 1..max_bytes bytes, until
    expires_at (whole seconds, UTC)."""
    now = now.astimezone(timezone.utc)
    date, amz_date = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{LOCAL_ACCESS_KEY_ID}/{date}/{LOCAL_REGION}/{SERVICE}/aws4_request"
    document = {
        "expiration": expires_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [
            {"bucket": area},
            {"key": key},
            {"Content-Type": content_type},
            ["content-length-range", 1, max_bytes],
            {"x-amz-algorithm": ALGORITHM},
            {"x-amz-credential": credential},
            {"x-amz-date": amz_date},
        ],
    }
    policy = base64.b64encode(json.dumps(document, separators=(",", ":")).encode()).decode("ascii")
    return {
        "key": key,
        "Content-Type": content_type,
        "policy": policy,
        "x-amz-algorithm": ALGORITHM,
        "x-amz-credential": credential,
        "x-amz-date": amz_date,
        "x-amz-signature": signer.sigv4(date, LOCAL_REGION, SERVICE).sign(policy.encode("ascii")),
    }


def decode_policy(policy: str) -> dict[str, Any]:
    """The policy document of a POST's `policy` field; UploadPolicyError(malformed_policy) if it is not one."""
    try:
        document = json.loads(base64.b64decode(policy, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _fail(UploadPolicyCode.MALFORMED_POLICY, "the policy is not base64 JSON") from exc
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("expiration"), str)
        or not isinstance(document.get("conditions"), list)
    ):
        raise _fail(UploadPolicyCode.MALFORMED_POLICY, "the policy needs an expiration and a list of conditions")
    return document


def verify_post(
    form_fields: dict[str, str],
    *,
    file_size: int,
    file_content_type: str | None,
    area: str,
    signer: LocalSigner,
    now: datetime,
) -> VerifiedUpload:
    """Checks one multipart POST (all parts but the file in form_fields); returns what may be stored, or raises
    UploadPolicyError with the first rule it breaks. `now` is timezone-aware (naive is taken as UTC)."""
    del file_content_type  # S3 ignores the file part's type too; the signed Content-Type field is what counts
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    fields = _normalised(form_fields)
    for name in _REQUIRED:
        if not fields.get(name):
            raise _fail(UploadPolicyCode.MISSING_FIELD, f"the form has no {name!r} field")
    _check_signature(fields, signer)
    document = decode_policy(fields["policy"])
    if now >= _parse_expiration(document["expiration"]):
        raise _fail(UploadPolicyCode.EXPIRED, "the upload policy has expired")

    covered: set[str] = set()
    pinned: dict[str, str] = {}
    length_ranges: list[tuple[int, int]] = []
    for condition in document["conditions"]:
        parsed = _parse_condition(condition)
        if parsed[0] == "content-length-range":
            length_ranges.append((parsed[1], parsed[2]))
            continue
        operator, name, expected = parsed
        _check_condition(operator, name, expected, fields, area)
        covered.add(name)
        if operator == "eq":
            pinned[name] = expected

    if not length_ranges:
        raise _fail(UploadPolicyCode.MALFORMED_POLICY, "the policy does not bound the upload's size")
    for low, high in length_ranges:
        if not low <= file_size <= high:
            raise _fail(UploadPolicyCode.SIZE_OUT_OF_RANGE, f"the file is {file_size} bytes; allowed {low}..{high}")
    for name in fields:
        if name not in _NOT_COVERED and not name.startswith("x-ignore-") and name not in covered:
            raise _fail(UploadPolicyCode.UNEXPECTED_FIELD, f"the policy does not allow the field {name!r}")
    if pinned.get("key") != fields["key"]:
        raise _fail(UploadPolicyCode.KEY_MISMATCH, "the policy does not pin the key exactly")
    if pinned.get("content-type") != fields["content-type"]:
        raise _fail(UploadPolicyCode.CONTENT_TYPE_MISMATCH, "the policy does not pin the Content-Type exactly")
    return VerifiedUpload(key=fields["key"], content_type=fields["content-type"])


# ---- helpers --------------------------------------------------------------------------------------------


def _fail(code: UploadPolicyCode, message: str) -> UploadPolicyError:
    return UploadPolicyError(code, message)


def _normalised(form_fields: dict[str, str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in form_fields.items():
        lower = name.lower()
        if lower == "file":
            continue
        if lower in fields:
            raise _fail(UploadPolicyCode.UNEXPECTED_FIELD, f"the field {name!r} is given twice")
        if not isinstance(value, str):
            raise _fail(UploadPolicyCode.UNEXPECTED_FIELD, f"the field {name!r} is not text")
        fields[lower] = value
    return fields


def _check_signature(fields: dict[str, str], signer: LocalSigner) -> None:
    if fields["x-amz-algorithm"] != ALGORITHM:
        raise _fail(UploadPolicyCode.BAD_SIGNATURE, f"x-amz-algorithm must be {ALGORITHM}")
    parts = fields["x-amz-credential"].split("/")
    amz_date = fields["x-amz-date"]
    if (
        len(parts) != 5
        or parts[3] != SERVICE
        or parts[4] != "aws4_request"
        or not _DATE.fullmatch(parts[1])
        or not _AMZ_DATE.fullmatch(amz_date)
        or amz_date[:8] != parts[1]
    ):
        raise _fail(UploadPolicyCode.BAD_SIGNATURE, "x-amz-credential or x-amz-date is malformed")
    _, date, region, service, _ = parts
    scoped = signer.sigv4(date, region, service)
    if not scoped.verify(fields["policy"].encode("utf-8"), fields["x-amz-signature"]):
        raise _fail(UploadPolicyCode.BAD_SIGNATURE, "the policy signature does not match")


def _parse_expiration(value: str) -> datetime:
    try:
        expiration = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(UploadPolicyCode.MALFORMED_POLICY, "the policy's expiration is not an ISO-8601 time") from exc
    if expiration.tzinfo is None:
        raise _fail(UploadPolicyCode.MALFORMED_POLICY, "the policy's expiration has no time zone")
    return expiration


def _parse_condition(condition: Any) -> tuple[Any, ...]:
    """("eq" | "starts-with", lowercase field name, value) or ("content-length-range", low, high)."""
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, value),) = condition.items()
        if isinstance(name, str) and isinstance(value, str):
            return ("eq", name.lower(), value)
    elif isinstance(condition, list) and len(condition) == 3 and isinstance(condition[0], str):
        operator = condition[0].lower()
        if operator == "content-length-range":
            low, high = condition[1], condition[2]
            if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) and 0 <= low <= high:
                return (operator, low, high)
        elif operator in ("eq", "starts-with"):
            name, value = condition[1], condition[2]
            if isinstance(name, str) and name.startswith("$") and len(name) > 1 and isinstance(value, str):
                return (operator, name[1:].lower(), value)
    raise _fail(UploadPolicyCode.MALFORMED_POLICY, f"unsupported policy condition {condition!r}")


def _mismatch_code(name: str) -> UploadPolicyCode:
    if name == "key":
        return UploadPolicyCode.KEY_MISMATCH
    if name == "content-type":
        return UploadPolicyCode.CONTENT_TYPE_MISMATCH
    if name == "bucket":
        return UploadPolicyCode.BUCKET_MISMATCH
    if name.startswith("x-amz-"):
        return UploadPolicyCode.BAD_SIGNATURE
    return UploadPolicyCode.UNEXPECTED_FIELD


def _check_condition(operator: str, name: str, expected: str, fields: dict[str, str], area: str) -> None:
    if name == "bucket":
        # The bucket is the URL's area; a submitted `bucket` field must say the same.
        actuals = [area] + ([fields["bucket"]] if "bucket" in fields else [])
    elif name in fields:
        actuals = [fields[name]]
    else:
        raise _fail(UploadPolicyCode.MISSING_FIELD, f"the policy requires the field {name!r}")
    for actual in actuals:
        holds = actual == expected if operator == "eq" else actual.startswith(expected)
        if not holds:
            raise _fail(_mismatch_code(name), f"the field {name!r} does not satisfy the policy")
