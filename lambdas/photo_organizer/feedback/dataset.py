"""The feedback dataset's line format and layout, shared by its writers (local files, the cloud's feedback Lambda)
and readers (photo_organizer.learning.datasets, which the training scripts ship with and which must not need
pydantic).

Layout under the dataset root, dated by the event's created_at (UTC):
- `feedback/date=YYYY-MM-DD/<part>.jsonl` (`partition`): the data directory's `datasets/` locally, and the dataset
  bucket's parts written before the owner-partitioned layout (one part = a stream batch of several owners);
- `feedback/owner=<owner>/date=YYYY-MM-DD/<part>.jsonl` (`owner_partition`): the dataset bucket now. An account
  erasure deletes one key prefix (every version: the bucket is versioned) instead of reading and rewriting every
  part of everyone, and IAM can name the layout's prefixes.
Append-only: a part is never rewritten with different content (but for an erasure taking an owner's lines out); a
writer that retries writes the same part again with the same lines. Readers drop repeated feedback ids, so an event
recorded twice still counts once.

One line = one event = FeedbackRecord without `undone_at` (an undo is a line of its own, `type: "undo"`,
`undoes: <id>`), plus `schema`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import timezone

from photo_organizer.feedback.models import FeedbackRecord

DATASET_SCHEMA = 1
FEEDBACK_PREFIX = "feedback/"
FEATURES_PREFIX = "features/"  # snapshots of the analysis features (learning.datasets.FEATURES_*)


def partition(record: FeedbackRecord) -> str:
    """`feedback/date=2026-12-03/`: the folder (key prefix) the event's line goes to."""
    day = record.created_at.astimezone(timezone.utc).date().isoformat()
    return f"{FEEDBACK_PREFIX}date={day}/"


def owner_prefix(owner: str) -> str:
    """`feedback/owner=<owner>/`: every line of the owner in the owner-partitioned layout."""
    return f"{FEEDBACK_PREFIX}owner={owner}/"


def owner_partition(record: FeedbackRecord) -> str:
    """`feedback/owner=<owner>/date=2026-12-03/`."""
    return owner_prefix(record.owner) + partition(record).removeprefix(FEEDBACK_PREFIX)


def line(record: FeedbackRecord) -> str:
    body = record.model_dump(mode="json", exclude={"undone_at"})
    body = {"schema": DATASET_SCHEMA, **{k: v for k, v in body.items() if v is not None}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def lines_by_partition(records: Iterable[FeedbackRecord], *,
                       partition_of: Callable[[FeedbackRecord], str] = partition) -> dict[str, str]:
    """partition -> the JSON Lines text of its records (oldest first), for one batch of events."""
    out: dict[str, list[FeedbackRecord]] = {}
    for record in records:
        out.setdefault(partition_of(record), []).append(record)
    return {
        prefix: "".join(line(r) + "\n" for r in sorted(batch, key=lambda r: (r.created_at, r.feedback_id)))
        for prefix, batch in out.items()
    }


def record_from_line(text: str) -> FeedbackRecord:
    body = json.loads(text)
    body.pop("schema", None)
    return FeedbackRecord.model_validate(body)
