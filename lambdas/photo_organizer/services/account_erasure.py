"""Account erasure: everything of one owner goes, and an audit says what remains (nothing, when it worked).

Order matters. First new face data stops (biometric consent off: a running analysis keeps no faces), then each
photo goes the way a single delete goes (bytes first, derived records, the record last; the search document with
it), then the biometric data (the cloud's collection, faces, people, corrections: the consent-off path), then
the owner-wide leftovers (feedback events, image embeddings, suggestions, the owner's settings, the local spent
upload URLs), and last the training files that hold
many owners (locally: every model version, the feature snapshot, an unfinished run's folder; last, so that a
retraining starting after them finds nothing of the owner to learn from). Every step is idempotent and reads
what is still there, so a crash half-way is finished by running erase again, and a re-run counts only what it
deleted itself. Only the owner's keys and entries are ever touched. The erasure mark set first is the last thing
to go, once nothing blocking remains; until then it keeps uploads out and face processing off (the consent setting
itself is gone by then), and the audit lists it, so a crashed erasure is never reported as finished.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from photo_organizer.errors import ConflictError, PhotoNotFoundError
from photo_organizer.keys import PhotoKeys, check_owner
from photo_organizer.ports.accounts import Logins
from photo_organizer.ports.analysis import AnalysisStore, FeatureStore
from photo_organizer.ports.feedback import FeedbackDataset, FeedbackStore, SuggestionStore
from photo_organizer.ports.people import ClusteringState, FaceMatcherStore, PeopleStore
from photo_organizer.ports.search import SearchIndex
from photo_organizer.ports.storage import IngestBacklog, MetadataStore, UsedUploads
from photo_organizer.ports.training import TrainingFiles
from photo_organizer.services.people import PeopleService
from photo_organizer.services.photos import PhotoService


SEARCH_DOCUMENTS = "search documents"
TRAINING_FILES = "training files"
RETRAINING_RUNNING = "retraining under way"  # its snapshot may hold the owner: the erasure finishes after it
UNFINISHED_ERASURE = "unfinished erasure"  # the erasure mark: erase() removes it last, the audit lists it until then


@dataclass(frozen=True)
class Remaining:
    """One store still holding something of the owner: the audit's line."""

    store: str
    count: int


@dataclass
class ErasureReport:
    """What this run deleted (a re-run after a complete erasure reports zeros) and what the audit found after."""

    photos: int = 0
    faces: int = 0
    people: int = 0
    corrections: int = 0
    feedback_events: int = 0
    image_embeddings: int = 0
    suggestions: int = 0
    models: int = 0
    dataset_lines: int = 0
    model_entries: int = 0  # the owner's entries and lines taken out of the training files
    training_files: int = 0  # training files rewritten or deleted
    queued_uploads: int = 0
    used_upload_urls: int = 0
    settings: int = 0
    logins: int = 0
    search_documents: int = 0
    remaining: list[Remaining] = field(default_factory=list)

    following: frozenset[str] = frozenset()  # stores that empty themselves after the records (cloud index)

    @property
    def blocking(self) -> list[Remaining]:
        """What remains that nothing else will delete: an erasure is finished when this is empty."""
        return [r for r in self.remaining if r.store not in self.following]

    def counts(self) -> dict[str, int]:
        return {
            "photos": self.photos,
            "faces": self.faces,
            "people": self.people,
            "corrections": self.corrections,
            "feedback_events": self.feedback_events,
            "image_embeddings": self.image_embeddings,
            "suggestions": self.suggestions,
            "models": self.models,
            "dataset_lines": self.dataset_lines,
            "model_entries": self.model_entries,
            "training_files": self.training_files,
            "queued_uploads": self.queued_uploads,
            "used_upload_urls": self.used_upload_urls,
            "settings": self.settings,
            "logins": self.logins,
            "search_documents": self.search_documents,
        }


@dataclass
class AccountErasure:
    photos: PhotoService
    people: PeopleService
    metadata: MetadataStore
    analysis: AnalysisStore
    people_store: PeopleStore
    feedback: FeedbackStore | None = None
    features: FeatureStore | None = None
    suggestions: SuggestionStore | None = None
    search_index: SearchIndex | None = None
    # The cloud's per-owner promoted face matcher (the local one is an entry of the shared model files).
    face_matchers: FaceMatcherStore | None = None
    # The cloud's clustering mark (SETTINGS#clustering: the digest of the owner's last clustering inputs).
    clustering: ClusteringState | None = None
    # The local JSON Lines dataset (the cloud's dataset bucket is written by the feedback Lambda: see the note).
    dataset: FeedbackDataset | None = None
    # The local queue's upload events (queued and dead-lettered) naming the owner's keys.
    ingest_backlog: IngestBacklog | None = None
    # The local gateway's spent upload URLs (their keys name the owner).
    used_uploads: UsedUploads | None = None
    # The local retraining's files of all owners: model versions, feature snapshot, unfinished runs (the cloud's run
    # files and models are the feedback Lambda's, once the erasure mark is gone: services.training_data_erasure).
    training_files: TrainingFiles | None = None
    # The cloud's Cognito user: deleted last, once nothing blocking remains (the web app then signs out). Before,
    # the user must still be able to sign in and call again to finish.
    logins: Logins | None = None
    on_progress: Callable[[str, int], None] | None = None
    # Locally: the SQLite write-ahead logs checkpointed and truncated once the rows are deleted, so the page images
    # written before the deletes (the owner's rows) go from the files too (secure_delete zeroes the database pages).
    scrub_deleted: Callable[[], object] | None = None
    # The cloud's index follows the table (the stream indexer removes a deleted photo's document seconds later;
    # the API role may only search): what remains there is on its way out, not a failure of this erasure.
    index_follows_records: bool = False

    def erase(self, owner: str, *, login: str | None = None) -> ErasureReport:
        """`login`: the caller's own sign-in name (from the verified token), deleted when the erasure finished."""
        check_owner(owner)
        report = ErasureReport()
        # 1. Stop new writes: the account is marked (uploads are refused until the erasure finished) and face
        # processing is off (set_consent below repeats it and deletes what is stored).
        self.people.user_settings.set_account_erasing(owner, True)
        settings_before = self.people.user_settings.stored_settings(owner)  # the off-switches below write one
        self.people.user_settings.set_biometric_consent(owner, False)
        if self.ingest_backlog is not None:  # uploads are refused from here on: no new event of the owner comes
            report.queued_uploads = self.ingest_backlog.forget_owner(owner)
        faces_before = len(self.people_store.faces(owner))  # a photo's delete takes its faces: counted here
        # 2. Photos, each as a single delete: blobs, faces of the photo, feedback state, analysis, record, index.
        for photo_id in self.metadata.photo_ids(owner):
            try:
                self.photos.delete(owner, photo_id)
            except PhotoNotFoundError:
                continue  # deleted meanwhile (a concurrent erase or delete): not counted twice
            report.photos += 1
            if self.on_progress is not None:
                self.on_progress("photos", report.photos)
        # 3. Biometric data: the consent-off path (cloud: the Rekognition collection first).
        forgotten = self.people.set_consent(owner, False).forgotten or {}
        report.faces = max(faces_before, forgotten.get("faces", 0))
        report.people = forgotten.get("people", 0)
        report.corrections = forgotten.get("corrections", 0)
        # 4. Owner-wide leftovers not tied to a photo that still exists.
        if self.feedback is not None:
            report.feedback_events = self.feedback.forget_owner(owner)
        if self.features is not None:
            report.image_embeddings = self.features.forget_owner(owner)
        if self.suggestions is not None:
            report.suggestions = self.suggestions.forget_owner(owner)
        if self.clustering is not None:
            self.clustering.forget_clustering(owner)
        if self.dataset is not None:
            report.dataset_lines = self.dataset.forget_owner(owner)
        if self.face_matchers is not None:
            report.models = int(self.face_matchers.forget(owner))
        if self.used_uploads is not None:
            report.used_upload_urls = self.used_uploads.forget_owner(owner)
        # The consent choice (off since step 1): the erasure mark answers "no consent" from here until it goes.
        self.people.user_settings.forget_settings(owner)
        report.settings = settings_before
        retraining_running = False
        if self.training_files is not None:
            try:
                erased = self.training_files.erase_owner(owner)
            except ConflictError:
                retraining_running = True  # nothing rewritten: the audit lists the files, a later call erases them
            else:
                report.model_entries, report.training_files = erased.removed, erased.objects
        if self.search_index is not None and not self.index_follows_records:
            # Locally this process writes the index: whatever is left of the owner goes now (a document of a photo
            # whose record had gone already). The cloud's writer is the stream indexer: it does the same when the
            # erasure mark's REMOVE reaches it (the API role may only search).
            report.search_documents = self.search_index.forget_owner(owner)
        report.remaining = [r for r in self.audit(owner) if r.store != UNFINISHED_ERASURE]  # this one's own mark
        if retraining_running:
            report.remaining.append(Remaining(RETRAINING_RUNNING, 1))
        if self.index_follows_records:
            report.following = frozenset({SEARCH_DOCUMENTS})
        if not report.blocking:
            self.people.user_settings.set_account_erasing(owner, False)  # finished: the account may start anew
            if self.logins is not None and login:
                report.logins = int(self.logins.delete(login))
        if self.scrub_deleted is not None:  # last: the mark's own row is deleted just above
            self.scrub_deleted()
        return report

    def audit(self, owner: str) -> list[Remaining]:
        """Every store asked what it still holds of the owner; only non-empty ones are listed."""
        check_owner(owner)
        found: list[Remaining] = []

        def note(store: str, count: int) -> None:
            if count:
                found.append(Remaining(store, count))

        photo_ids = self.metadata.photo_ids(owner)
        note("photo records", len(photo_ids))
        blobs = 0
        for photo_id in photo_ids:
            keys = PhotoKeys.for_photo(owner, photo_id)
            blobs += sum(self.photos.originals.exists(k) for k in (keys.original, keys.quarantine))
            blobs += sum(self.photos.derivatives.exists(k) for k in (keys.preview, keys.thumbnail))
        note("blobs", blobs)
        note("analysis failures", len(self.analysis.failures(owner)))
        note("faces", len(self.people_store.faces(owner)))
        note("people", len(self.people_store.people(owner)))
        note("corrections", len(self.people_store.constraints(owner)))
        if self.feedback is not None:
            note("feedback events", len(self.feedback.events(owner)))
            note("feedback overlays", len(self.feedback.overlays(owner)))
        if self.features is not None:
            note("image embeddings", len(self.features.image_embeddings(owner)))
        if self.suggestions is not None:
            note("suggestions", len(self.suggestions.all_suggestions(owner)))
        if self.clustering is not None:
            note("clustering marks", int(self.clustering.last_clustering(owner) is not None))
        if self.face_matchers is not None:
            note("face matcher models", int(self.face_matchers.promoted(owner) is not None))
        if self.ingest_backlog is not None:
            note("queued upload events", self.ingest_backlog.owner_events(owner))
        if self.used_uploads is not None:
            note("used upload URLs", self.used_uploads.owner_claims(owner))
        note("settings", self.people.user_settings.stored_settings(owner))
        note(UNFINISHED_ERASURE, int(self.people.user_settings.account_erasing(owner)))
        if self.training_files is not None:
            note(TRAINING_FILES, len(self.training_files.files_naming(owner)))
        if self.search_index is not None:
            note(SEARCH_DOCUMENTS, self.search_index.count(owner))
        return found
