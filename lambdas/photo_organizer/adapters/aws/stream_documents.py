"""The photo item (as the DynamoDB stream or a table scan sees it) -> its SearchDocument, through the one builder
of both backends (services.indexing.search_document). Pure: no I/O.

Which items are searchable: `entity == "photo"` and `status == "READY"`. Anything else about a photo (still
pending, rejected, a DUPLICATE of another photo) maps to None, which the indexer turns into a delete.

Version: the item's `updated_at` in microseconds since the epoch. DynamoDB stream sequence numbers are ordered
per item but do not fit OpenSearch's 64-bit external version and do not exist for a table scan (reindex,
reconcile), so every writer of a photo item must move `updated_at` forward: the analysis store's save included
(a save that leaves `updated_at` alone is indexed as "not newer" and skipped). A REMOVE has no new image; its
delete carries the old image's version (`removal_version`), which a delete may match (external_gte).

Attributes read (all optional except the photo's own): `metadata` (taken_at, camera_make/model, gps),
`duplicate_of`, `sensitive`, `hidden`, `caption`, `place` map, `label_names` (label names with parents,
case-folded; computed from the `analysis` map's labels when absent), the `analysis` map's `weak_labels` (search
evidence below the tags, local analyser only), `ocr_text` (else the analysis text lines),
`people` (a list of {person_id, name} maps) and `embedding` (384 float32 little-endian as Binary, or a list
of numbers). The user's feedback: `feedback` (the overlay map, feedback.effects.overlay_document) and
`suggestions` (the tagging model's list of {tag, confidence, on_photo}); with either, tags and caption are what
feedback leaves of them (the analysis labels with their parents, the faces, `local_taken_at` and the place say
what a recomposed caption may name), exactly as the local SearchService.document builds them.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer

from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk
from photo_organizer.adapters.aws.dynamodb_people import ERASURE_SK
from photo_organizer.analysis.models import Label
from photo_organizer.feedback.effects import (
    caption_context,
    overlay_from_document,
    suggestions_from_items,
    suppressed_tags,
)
from photo_organizer.search.models import (
    EMBEDDING_DIMENSIONS,
    IndexedPerson,
    IndexedPlace,
    SearchDocument,
)
from photo_organizer.search.writes import IndexWrite
from photo_organizer.services.indexing import OCR_TEXT_MAX_CHARS, SEARCHABLE_STATUS, search_document

PHOTO_ENTITY = "photo"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_deserializer = TypeDeserializer()


def deserialize_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """A stream image or a low-level client item ({"S": ...} values) as Python values (numbers as Decimal)."""
    return {name: _deserializer.deserialize(value) for name, value in image.items()}


def is_photo(item: Mapping[str, Any]) -> bool:
    return item.get("entity") == PHOTO_ENTITY and bool(item.get("owner")) and bool(item.get("photo_id"))


def photo_key(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """(owner, photo_id) of a photo item; None for any other entity (content claims, people ...)."""
    if not is_photo(item):
        return None
    return str(item["owner"]), str(item["photo_id"])


def version_of(item: Mapping[str, Any]) -> int:
    """The item's external version: `updated_at` in microseconds since the epoch."""
    return microseconds(_parse_time(item["updated_at"]))


def removal_version(old_item: Mapping[str, Any]) -> int:
    """A REMOVE's delete is decided on the last write it saw: it applies over that version, never over a newer."""
    return version_of(old_item)


def microseconds(moment: datetime) -> int:
    return (_as_utc(moment) - _EPOCH) // timedelta(microseconds=1)


def document_from_item(item: Mapping[str, Any]) -> SearchDocument | None:
    """The photo's search document, or None when the photo must not be found (not a photo, not READY)."""
    if not is_photo(item):
        return None
    metadata = item.get("metadata") or {}
    taken_at = _parse_time(metadata["taken_at"]) if metadata.get("taken_at") else None
    people = _people(item.get("people"))
    place = _place(item.get("place"), metadata.get("gps"))
    overlay = overlay_from_document(item.get("feedback")) if item.get("feedback") else None
    suppressed = suppressed_tags(suggestions_from_items(item.get("suggestions")))
    analysis = item.get("analysis") or {}
    context = caption_context(
        [p.name for p in people if p.name],
        len(analysis.get("faces") or ()),
        ", ".join(x for x in ((item.get("place") or {}).get("city"), (item.get("place") or {}).get("country")) if x)
        or None,
        _parse_time(item["local_taken_at"]) if item.get("local_taken_at") else None,
    )
    return search_document(
        owner=str(item["owner"]),
        photo_id=str(item["photo_id"]),
        status=str(item.get("status")),
        version=version_of(item),
        taken_at=_as_utc(taken_at) if taken_at else None,
        uploaded_at=_as_utc(_parse_time(item["created_at"])),
        filename=str(item.get("filename") or ""),
        camera_make=metadata.get("camera_make"),
        camera_model=metadata.get("camera_model"),
        tags=_tags(item),
        weak_tags=_weak_tags(analysis),
        people=people,
        place=place,
        ocr_text=_ocr_text(item),
        caption=str(item.get("caption") or ""),
        sensitive=bool(item.get("sensitive", False)),
        hidden=bool(item.get("hidden", False)),
        duplicate_of=item.get("duplicate_of") or None,
        embedding=_embedding(item.get("embedding")),
        labels=_labels(analysis) if "labels" in analysis else None,
        feedback=overlay,
        suppressed=suppressed,
        caption_context=context,
    )


def document_from_image(image: Mapping[str, Any]) -> SearchDocument | None:
    return document_from_item(deserialize_image(image))


# ---- stream records -> index writes -----------------------------------------------------------------------


def sequence_of(record: Mapping[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def plan_write(record: Mapping[str, Any]) -> IndexWrite | None:
    """The index write a raw stream record asks for, or None when it asks for nothing.

    INSERT/MODIFY of a searchable photo writes its document; MODIFY/REMOVE of a photo that was searchable writes
    a tombstone (version: the new image's, or for a REMOVE the old image's). Records of other entities, and of
    photos that never were searchable (pending, rejected), write nothing."""
    change = record.get("dynamodb") or {}
    old = deserialize_image(change["OldImage"]) if change.get("OldImage") else None
    new = deserialize_image(change["NewImage"]) if change.get("NewImage") else None
    was_searchable = old is not None and photo_key(old) is not None and old.get("status") == SEARCHABLE_STATUS
    if record.get("eventName") == "REMOVE":
        if not was_searchable:
            return None
        owner, photo_id = photo_key(old)  # type: ignore[misc]
        return IndexWrite(owner, photo_id, removal_version(old))  # type: ignore[arg-type]
    if new is None or photo_key(new) is None:
        return None
    document = document_from_item(new)
    if document is not None:
        return IndexWrite.of(document)
    if not was_searchable:
        return None  # pending -> rejected and the like: the index never held this photo
    owner, photo_id = photo_key(new)  # type: ignore[misc]
    return IndexWrite(owner, photo_id, version_of(new))


OWNER_PREFIX = owner_pk("")


def erased_owner(record: Mapping[str, Any]) -> str | None:
    """The owner whose account erasure finished, when the record is the REMOVE of the erasure mark (the API clears
    it only when nothing blocking remains): the indexer then deletes the owner's documents left in the index."""
    if record.get("eventName") != "REMOVE":
        return None
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    pk, sk = (keys.get("PK") or {}).get("S", ""), (keys.get("SK") or {}).get("S", "")
    if sk != ERASURE_SK or not pk.startswith(OWNER_PREFIX):
        return None
    return pk.removeprefix(OWNER_PREFIX) or None


# ---- helpers ----------------------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _as_utc(moment: datetime) -> datetime:
    # A camera clock without an offset counts as UTC, as Photo.sort_time does, so both listings agree.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _tags(item: Mapping[str, Any]) -> tuple[str, ...]:
    names = item.get("label_names")
    if names is None:
        labels = (item.get("analysis") or {}).get("labels") or []
        names = [n for label in labels for n in (label.get("name"), *(label.get("parents") or ())) if n]
    return tuple(sorted({str(n).casefold() for n in names if str(n).strip()}))


def _weak_tags(analysis: Mapping[str, Any]) -> tuple[str, ...]:
    """The analysis map's weak labels (local analyser only) with their parents; malformed entries out."""
    entries = [e for e in analysis.get("weak_labels") or () if isinstance(e, Mapping)]
    return tuple(str(n) for e in entries for n in (e.get("name"), *(e.get("parents") or ())) if n)


def _labels(analysis: Mapping[str, Any]) -> list[Label]:
    """The analysis map's labels (name, confidence, parents) for feedback's tags and caption; malformed ones out."""
    labels = []
    for entry in analysis.get("labels") or ():
        if not isinstance(entry, Mapping) or not entry.get("name"):
            continue
        try:
            labels.append(Label(name=str(entry["name"]), confidence=float(entry.get("confidence") or 0),
                                parents=tuple(str(p) for p in entry.get("parents") or ())))
        except ValueError:
            continue
    return labels


def _ocr_text(item: Mapping[str, Any]) -> str:
    text = item.get("ocr_text")
    if text is None:
        lines = (item.get("analysis") or {}).get("text_lines") or []
        text = "\n".join(str(line.get("text", "")) for line in lines if line.get("text"))
    return str(text)[:OCR_TEXT_MAX_CHARS]


def _people(value: Any) -> tuple[IndexedPerson, ...]:
    people: dict[str, IndexedPerson] = {}
    for entry in value or ():
        if not isinstance(entry, Mapping):
            continue
        person_id = entry.get("person_id") or entry.get("id")
        if person_id and person_id not in people:
            people[str(person_id)] = IndexedPerson(person_id=str(person_id), name=entry.get("name") or None)
    return tuple(people[key] for key in sorted(people))


def _place(place: Any, gps: Any) -> IndexedPlace | None:
    place = dict(place or {})
    if gps and place.get("lat") is None:
        place.setdefault("lat", gps.get("lat"))
        place.setdefault("lon", gps.get("lon"))
    fields = {k: place.get(k) for k in ("city", "region", "country", "country_code", "lat", "lon")}
    fields = {k: (float(v) if isinstance(v, Decimal) else v) for k, v in fields.items() if v not in (None, "")}
    if "lat" not in fields or "lon" not in fields:
        fields.pop("lat", None), fields.pop("lon", None)
    return IndexedPlace(**fields) if fields else None


def _embedding(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, Binary):
        value = value.value
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 4 * EMBEDDING_DIMENSIONS:
            return None
        vector = struct.unpack(f"<{EMBEDDING_DIMENSIONS}f", bytes(value))
    else:
        vector = tuple(float(v) for v in value)
    if len(vector) != EMBEDDING_DIMENSIONS or not all(math.isfinite(v) for v in vector):
        return None  # a malformed vector must not stop the text from being indexed
    return tuple(float(v) for v in vector)
