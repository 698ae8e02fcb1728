"""What both MetadataStore adapters share: the listing sort key, the page cursor and the photo document.

Listing order is one string, `{sort_time as UTC 'YYYY-MM-DDTHH:MM:SS.ffffffZ'}#{photo_id}`, compared bytewise,
descending: newest first by Photo.sort_time, then photo_id descending. DynamoDB stores it as GSI1SK; SQLite as
the indexed `sort_key` column, so both adapters page in exactly the same order.

Cursor (`PhotoPageResult.next_key`, `list_photos(after=...)`): base64url without padding of the JSON
`{"v": 1, "owner": <owner>, "after": <sort key of the last photo returned>}`. Decoding checks every part and
that the owner is the caller; anything else is a ValidationError. The adapters never take a partition from the
cursor: the query's partition is always the caller's, so a cursor cannot reach another owner's photos.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from typing import Any

from photo_organizer.errors import ValidationError
from photo_organizer.models import Photo

CURSOR_VERSION = 1
_SORT_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z#[^#\x00]{1,256}$")
_MAX_CURSOR_CHARS = 2048


def utc_sort_stamp(moment: datetime) -> str:
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    # f-string rather than strftime: %Y is not zero-padded below year 1000 on every libc.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def listing_sort_key(photo: Photo) -> str:
    return f"{utc_sort_stamp(photo.sort_time)}#{photo.photo_id}"


def before_bound(moment: datetime) -> str:
    """An exclusive upper bound on listing sort keys that admits every photo at or older than moment:
    '~' sorts after the '#' that ends every stamp, in SQLite's binary collation and DynamoDB's byte order alike."""
    return f"{utc_sort_stamp(moment)}~"


def month_of_sort_key(sort_key: str) -> str:
    """'YYYY-MM' (UTC) of a listing sort key, the timeline's month."""
    return sort_key[:7]


def encode_cursor(owner: str, sort_key: str) -> str:
    raw = json.dumps({"v": CURSOR_VERSION, "owner": owner, "after": sort_key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(owner: str, cursor: str) -> str:
    """Returns the sort key to continue after; raises ValidationError for anything this module did not make
    for this owner."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise ValidationError("invalid page cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("invalid page cursor") from exc
    if not isinstance(body, dict) or set(body) != {"v", "owner", "after"} or body["v"] != CURSOR_VERSION:
        raise ValidationError("invalid page cursor")
    after = body["after"]
    if body["owner"] != owner or not isinstance(after, str) or not _SORT_KEY.fullmatch(after):
        raise ValidationError("invalid page cursor")
    return after


def photo_id_of_sort_key(sort_key: str) -> str:
    return sort_key.split("#", 1)[1]


def photo_document(photo: Photo) -> dict[str, Any]:
    """The photo as JSON-ready values (datetimes as ISO-8601 strings), without the fields that are None."""
    return _drop_none(photo.model_dump(mode="json"))


def photo_from_document(document: dict[str, Any]) -> Photo:
    return Photo.model_validate(document)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
