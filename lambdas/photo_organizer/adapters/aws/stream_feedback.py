"""Table stream records -> the FeedbackRecord of a new FEEDBACK# item (the feedback Lambda's parse).

The item (written by the feedback store, `SK=FEEDBACK#{feedback_id}`, `entity="feedback"`) holds the record's fields;
the owner comes from `owner`, or from the partition key when the item does not repeat it. Anything else (another
entity, a MODIFY such as an undo marking its event undone, a REMOVE) is None: the stream mapping's filter already
passes INSERTs of feedback items only, this is the second line. The undo is an INSERT of its own item (type undo).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from photo_organizer.adapters.aws.stream_documents import deserialize_image, sequence_of  # noqa: F401 - re-exported
from photo_organizer.feedback.models import FeedbackRecord

log = logging.getLogger(__name__)

FEEDBACK_ENTITY = "feedback"
_FIELDS = frozenset(FeedbackRecord.model_fields)


def feedback_from_stream(record: Mapping[str, Any]) -> FeedbackRecord | None:
    if record.get("eventName") != "INSERT":
        return None
    image = (record.get("dynamodb") or {}).get("NewImage")
    if not image:
        return None
    item = deserialize_image(image)
    if item.get("entity") != FEEDBACK_ENTITY or not str(item.get("SK", "")).startswith("FEEDBACK#"):
        return None
    body = {name: _plain(value) for name, value in item.items() if name in _FIELDS}
    body.setdefault("owner", str(item.get("PK", "")).removeprefix("OWNER#"))
    body.setdefault("feedback_id", str(item["SK"]).removeprefix("FEEDBACK#"))
    body.pop("undone_at", None)  # current state; the dataset line of an event never changes
    if isinstance(body.get("created_at"), (int, float)):
        body["created_at"] = datetime.fromtimestamp(body["created_at"], tz=timezone.utc)
    try:
        return FeedbackRecord.model_validate(body)
    except PydanticValidationError as exc:
        log.warning("feedback item %s is not a feedback record: %s", body.get("feedback_id"), exc.errors()[:3])
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
