"""The cloud's feedback recording and retraining trigger (the feedback Lambda's use cases).

Each batch of the table stream's new FEEDBACK# items is appended to the dataset bucket as one JSON Lines part per
date partition (named after the batch's first and last sequence numbers, so a retried batch rewrites the same
objects), then counted. When at least `min_feedback` events were counted since the last start, the trigger starts
the retraining pipeline, never two executions at once:

1. the lock (a conditional write on `PK=ML#retraining SK=STATE`) lets one invocation at a time decide, whatever the
   number of stream shards and concurrent batches;
2. under the lock, an execution that is still Executing or Stopping (ListPipelineExecutions) means no start: the
   counter is kept, so a later batch tries again once that run is over;
3. the start carries a token derived from the batch, so a retried batch cannot start a second execution; on success
   the events that were counted are taken off the counter (events counted meanwhile stay) and the lock is released.

A lock whose holder died is taken over after its lease. Recording never fails because of the trigger: the feedback
is safely in the dataset, and the next batch tries the start again.

The same stream brings the REMOVE of an owner's erasure mark (the owner's account erasure finished): after the
batch's lines are written, the owner's training data goes (services.training_data_erasure); a failure there fails
the batch, which is retried (writing the same parts again is harmless, and the erasure is idempotent).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from photo_organizer.errors import PhotoOrganizerError
from photo_organizer.feedback.models import FeedbackRecord
from photo_organizer.models import utcnow
from photo_organizer.ports.feedback import FeedbackDataset
from photo_organizer.ports.training import PipelineRuns, RetrainingTriggerStore
from photo_organizer.services.training_data_erasure import ErasedTrainingData, TrainingDataErasure

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class TriggerOutcome:
    pending: int  # events counted since the last start (after this batch)
    started: str | None  # the execution started by this batch
    reason: str  # why it started or did not


class RetrainingTrigger:
    def __init__(self, store: RetrainingTriggerStore, runs: PipelineRuns, *, min_feedback: int,
                 lease: timedelta = DEFAULT_LEASE, clock: Callable[[], datetime] = utcnow) -> None:
        if min_feedback < 1:
            raise ValueError("min_feedback must be at least 1")
        self._store = store
        self._runs = runs
        self._min_feedback = min_feedback
        self._lease = lease
        self._clock = clock

    def record(self, events: int, *, batch: str) -> TriggerOutcome:
        pending = self._store.count(events, batch=batch)
        if pending < self._min_feedback:
            return TriggerOutcome(pending, None, f"{pending} of {self._min_feedback} new feedback events")
        holder = _token(batch)
        if not self._store.acquire(holder, now=self._clock(), lease=self._lease):
            return TriggerOutcome(pending, None, "another invocation is deciding (lock held)")
        try:
            running = self._runs.running()
            if running:
                self._store.release(holder)
                return TriggerOutcome(pending, None, f"a retraining run is still going ({len(running)})")
            execution = self._runs.start(token=holder, display_name=f"feedback-{pending}")
        except BaseException:
            self._store.release(holder)
            raise
        self._store.started(holder, execution=execution, consumed=pending, now=self._clock())
        return TriggerOutcome(0, execution, f"started after {pending} new feedback events")


def _token(batch: str) -> str:
    """StartPipelineExecution's ClientRequestToken (32..128 characters): the same for a retried batch."""
    return hashlib.sha256(batch.encode()).hexdigest()


@dataclass(frozen=True)
class RecordingOutcome:
    recorded: int
    skipped: int
    part: str
    trigger: TriggerOutcome | None = None
    trigger_error: str | None = None
    erased: tuple[ErasedTrainingData, ...] = ()  # one per erasure mark's REMOVE in the batch


class FeedbackStreamRecorder:
    """Table stream records -> dataset lines + trigger (the feedback Lambda). `parse` turns a raw stream record into
    the FeedbackRecord of a new FEEDBACK# item (None for anything else), `sequence_of` gives its sequence number."""

    def __init__(self, dataset: FeedbackDataset, trigger: RetrainingTrigger | None, *,
                 parse: Callable[[Mapping[str, Any]], FeedbackRecord | None],
                 sequence_of: Callable[[Mapping[str, Any]], str],
                 erased_owner: Callable[[Mapping[str, Any]], str | None] | None = None,
                 erasure: TrainingDataErasure | None = None) -> None:
        """erased_owner: the owner whose erasure finished when the raw record says so (else None); erasure: what
        then takes the owner out of the training data."""
        self._dataset = dataset
        self._trigger = trigger
        self._parse = parse
        self._sequence_of = sequence_of
        self._erased_owner = erased_owner if erasure is not None else None
        self._erasure = erasure

    def record_batch(self, raw_records: Sequence[Mapping[str, Any]]) -> RecordingOutcome:
        erased_owners = [o for o in (self._erased_owner(raw) for raw in raw_records) if o] if self._erased_owner else []
        records = [r for r in (self._parse(raw) for raw in raw_records) if r is not None]
        skipped = len(raw_records) - len(records) - len(erased_owners)
        outcome = self._record(raw_records, records, skipped)
        if not erased_owners or self._erasure is None:
            return outcome
        # After the batch's lines: an event of the owner in this same batch is written first, then erased with the rest.
        erased = tuple(self._erasure.erase(owner) for owner in dict.fromkeys(erased_owners))
        return replace(outcome, erased=erased)

    def _record(self, raw_records: Sequence[Mapping[str, Any]], records: list[FeedbackRecord],
                skipped: int) -> RecordingOutcome:
        if not records:
            return RecordingOutcome(0, skipped, "")
        sequences = [self._sequence_of(raw) for raw in raw_records]
        part = f"{sequences[0]}-{sequences[-1]}"
        self._dataset.append(records, part=part)  # retryable errors propagate: the batch is retried
        if self._trigger is None:
            return RecordingOutcome(len(records), skipped, part)
        try:
            outcome = self._trigger.record(len(records), batch=part)
        except PhotoOrganizerError as exc:
            log.warning("retraining trigger failed after recording %s events: %s", len(records), exc)
            return RecordingOutcome(len(records), skipped, part, trigger_error=type(exc).__name__)
        return RecordingOutcome(len(records), skipped, part, trigger=outcome)
