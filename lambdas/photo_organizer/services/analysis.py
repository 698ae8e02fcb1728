"""Analysing photos: the one per-photo pipeline that the Glue job (aws) and `photo-organizer analyze` (local) run.

For each photo that needs it: copy the results of an analysed (near) duplicate of the same owner instead of
paying again; otherwise plan phase 1 (labels, moderation), call the analyzer on the PREVIEW, plan phase 2 from
the labels (text only where labels say there is text, faces only with the owner's consent and a person-like
label), call again, then add place, local time and a caption (the captioner's; by default composed from what was
found), and save — a save that is conditional on the stored version being older, so a repeated or resumed run writes nothing twice.
With an `embed` hook (the Glue job's MiniLM), the save also carries the vector of the photo's search description
(search.describe of the fields known at analysis time), which the stream indexer puts in OpenSearch as it is.
With `embed_image` and `features` (the label model's penultimate layer), the photo's image embedding is stored for
the tagging model's training; a duplicate gets its source's.
A photo that fails is recorded with its reason and retried by the next run; it never fails the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from photo_organizer.analysis.captioner import CaptionInputs, ComposedCaptioner
from photo_organizer.analysis.costs import REKOGNITION_TIER1_PRICES, RunSummary, estimate_cost
from photo_organizer.analysis.dedupe import dedupe
from photo_organizer.analysis.models import AnalysisPlan, AnalysisResult, ApiCall, FaceDetection
from photo_organizer.analysis.planning import AnalysisSettings, PhotoRecord, plan_calls
from photo_organizer.analysis.store import PhotoAnalysis, label_terms, ocr_text
from photo_organizer.ports.analysis import (
    AnalysisStore,
    Analyzer,
    Captioner,
    ConsentLookup,
    Embed,
    FaceRecorder,
    FeatureStore,
    ImageEmbed,
    LocalTimeResolver,
    PlaceResolver,
)
from photo_organizer.errors import NotFoundError, PermanentError, RetryableError
from photo_organizer.keys import PhotoKeys
from photo_organizer.models import Photo, PhotoStatus
from photo_organizer.ports.storage import BlobStore, MetadataStore
from photo_organizer.search.describe import describe
from photo_organizer.services.indexing import search_document
from photo_organizer.search.models import IndexedPlace, SearchDocument

logger = logging.getLogger(__name__)



@dataclass
class AnalysisService:
    previews: BlobStore
    photos: MetadataStore
    store: AnalysisStore
    analyzer: Analyzer
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    face_consent: ConsentLookup = lambda owner: False  # noqa: E731 - biometric processing is opt-in
    resolve_place: PlaceResolver | None = None
    resolve_local_time: LocalTimeResolver | None = None
    record_faces: FaceRecorder | None = None
    # (owner, photo id) -> face handles the people store still holds for the photo; lets a re-analysis keep them
    indexed_face_ids: Callable[[str, str], set[str]] | None = None
    embed: Embed | None = None
    # The image embedding the tagging model trains on: computed on the preview, kept through `features`.
    embed_image: ImageEmbed | None = None
    features: FeatureStore | None = None
    # Writes the caption from what was found; a model-backed one falls back to the composed caption itself.
    captioner: Captioner = field(default_factory=ComposedCaptioner)

    @property
    def version(self) -> int:
        return self.settings.analysis_version

    def run(
        self,
        pending: Iterable[PhotoRecord],
        *,
        run_id: str,
        on_photo_done: Callable[[PhotoRecord], None] | None = None,
        on_photo_start: Callable[[PhotoRecord], None] | None = None,
    ) -> RunSummary:
        """Analyses the given photos (all needing analysis); returns what it did and what it cost.
        `on_photo_start` runs before each photo (the local worker marks it in progress there); an exception it
        raises stops the run before that photo."""
        summary = RunSummary(run_id)
        pending = [p for p in pending if p.analysis_version < self.version]
        sources_by_owner = {
            owner: self.store.analysed(owner, min_version=self.version) for owner in {p.owner for p in pending}
        }
        copies = dedupe(
            [*pending, *(s for sources in sources_by_owner.values() for s in sources)],
            current_version=self.version,
            max_distance=self.settings.near_duplicate_max_distance,
        )
        # Sources first: a copy needs its source's results saved before it can take them.
        ordered = sorted(pending, key=lambda p: (p.photo_id in copies, p.photo_id))
        for record in ordered:
            if on_photo_start is not None:
                on_photo_start(record)
            summary.photos += 1
            try:
                if record.photo_id in copies:
                    self._copy(record, copies[record.photo_id])
                    summary.copied += 1
                else:
                    self.analyze_one(record, summary)
            except (RetryableError, PermanentError) as exc:
                reason = getattr(exc, "code", None) or type(exc).__name__
                summary.record_failure(str(reason))
                self.store.record_failure(record.owner, record.photo_id, analysis_version=self.version, reason=f"{reason}: {exc}"[:500])
                logger.warning("photo analysis failed", extra={"photo_id": record.photo_id, "reason": str(reason)})
            if on_photo_done is not None:
                on_photo_done(record)
        summary.estimated_cost_usd = estimate_cost(summary.calls, REKOGNITION_TIER1_PRICES)
        return summary

    def analyze_one(self, record: PhotoRecord, summary: RunSummary | None = None) -> PhotoAnalysis | None:
        photo = self.photos.get_photo(record.owner, record.photo_id)
        if photo is None or photo.status is not PhotoStatus.READY:
            return None  # deleted or changed since it was listed: nothing to do
        preview = self.previews.get(PhotoKeys.for_photo(photo.owner, photo.photo_id).preview).data
        consent = self.face_consent(photo.owner)
        kept_faces = self._indexed_faces(record) if consent else None
        done = (ApiCall.INDEX_FACES,) if kept_faces is not None else ()
        first_calls = plan_calls(record, None, self.settings, face_consent=consent, already_done=done)
        result = self._call(preview, photo, first_calls, summary)
        second_calls = plan_calls(
            record, result.labels, self.settings, face_consent=consent, already_done=(*done, *first_calls)
        )
        if second_calls:
            result = merge_results(result, self._call(preview, photo, second_calls, summary))
        if kept_faces:
            result = result.model_copy(update={"faces": kept_faces})
        analysis = self._describe(photo, result)
        # Faces are recorded before the analysis is saved: killed in between, the photo is still pending and the
        # next run finds the faces (the Glue job's collection walk deletes them before indexing again). Saved
        # first, a kill would leave indexed faces that never reach the people store.
        if self.record_faces is not None and result.faces:
            self.record_faces(photo.owner, photo.photo_id, result.faces)
        # Before the save too, for the same reason: killed in between, the photo is analysed again and the
        # embedding rewritten (a plain overwrite), never left missing behind a saved analysis.
        if self.embed_image is not None and self.features is not None:
            self.features.save_image_embedding(photo.owner, photo.photo_id, self.embed_image(preview))
        self.store.save(analysis)
        return analysis

    def backfill_image_embeddings(self, owner: str) -> int:
        """Embeds the owner's analysed photos that have no image embedding (analysed before embeddings were
        stored, or while the label model had no `embedding` output); returns how many. A photo whose preview is
        gone is skipped: it is being deleted."""
        if self.embed_image is None or self.features is None:
            return 0
        have = set(self.features.image_embeddings(owner))
        done = 0
        for record in self.store.analysed(owner, min_version=1):
            if record.photo_id in have:
                continue
            try:
                preview = self.previews.get(PhotoKeys.for_photo(owner, record.photo_id).preview).data
            except NotFoundError:
                continue
            self.features.save_image_embedding(owner, record.photo_id, self.embed_image(preview))
            done += 1
        return done

    def _indexed_faces(self, record: PhotoRecord) -> tuple[FaceDetection, ...] | None:
        """The faces an earlier analysis version indexed, when they are to be kept (None: index the photo)."""
        if not self.settings.reuse_indexed_faces or record.analysis_version == 0:
            return None
        earlier = self.store.get(record.owner, record.photo_id)
        if earlier is None or not earlier.result.faces:
            return None  # no faces found before: asking again costs one call and duplicates nothing
        if self.indexed_face_ids is not None:
            known = self.indexed_face_ids(record.owner, record.photo_id)
            if any(face.face_handle not in known for face in earlier.result.faces):
                return None  # forgotten since (consent withdrawn, photo's faces deleted): index afresh
        return earlier.result.faces

    def _call(self, preview: bytes, photo: Photo, calls: list[ApiCall], summary: RunSummary | None) -> AnalysisResult:
        plan = AnalysisPlan(
            owner=photo.owner, photo_id=photo.photo_id, analysis_version=self.version, calls=frozenset(calls)
        )
        result = self.analyzer.analyze(preview, plan)
        if summary is not None:
            for call in calls:
                summary.record_call(call)
        return result

    def _copy(self, record: PhotoRecord, source_id: str) -> None:
        source = self.store.get(record.owner, source_id)
        photo = self.photos.get_photo(record.owner, record.photo_id)
        if source is None or photo is None:
            raise RetryableError(f"source {source_id} of duplicate {record.photo_id} is not analysed yet")
        # Faces are not copied: a face belongs to one photo (and the collection indexed it once).
        result = source.result.copied_to(record.photo_id).model_copy(update={"faces": ()})
        if self.features is not None:
            embedding = self.features.image_embedding(record.owner, source_id)
            if embedding is not None:
                self.features.save_image_embedding(record.owner, record.photo_id, embedding)
        self.store.save(self._describe(photo, result))

    def _describe(self, photo: Photo, result: AnalysisResult) -> PhotoAnalysis:
        meta = photo.metadata
        gps = meta.gps if meta else None
        place = self.resolve_place(gps) if gps and self.resolve_place else None
        local_taken_at, zone = (meta.taken_at if meta else None), None
        if self.resolve_local_time is not None and meta is not None:
            local_taken_at, zone = self.resolve_local_time(meta.taken_at, meta.taken_at_offset, gps)
        place_name = place.short_name if place else None
        caption = self.captioner.caption(
            CaptionInputs(
                people_names=[None] * len(result.faces),  # nobody is named yet: clustering comes later
                labels=list(result.labels),
                place_name=place_name,
                taken_at=local_taken_at,
                text_lines=list(result.text_lines),
            )
        )
        analysis = PhotoAnalysis(
            owner=photo.owner,
            result=result,
            caption=caption,
            place=place,
            local_taken_at=local_taken_at,
            time_zone=zone,
        )
        return analysis.model_copy(update={"embedding": self._embedding(photo, analysis)})

    def _embedding(self, photo: Photo, analysis: PhotoAnalysis) -> bytes | None:
        if self.embed is None:
            return None
        # As SearchService.index_photos: a photo with nothing described has no meaning to match (an empty
        # string's vector sits moderately close to every query), so it gets no vector at all.
        text = describe(description_document(photo, analysis)).strip()
        if not text:
            return None
        # A vector of the wrong size fails PhotoAnalysis' validation: a model problem stops the run instead of
        # being recorded as every photo's failure.
        return np.asarray(self.embed([text]), dtype="<f4").reshape(-1).tobytes()


def description_document(photo: Photo, analysis: PhotoAnalysis) -> SearchDocument:
    """The search document's described fields as analysis knows them: file name, tags, caption, place and text,
    the same values SearchService.document takes from the photo and its analysis. People are not known yet
    (clustering comes later)."""
    place = analysis.place
    document = search_document(
        owner=photo.owner,
        photo_id=photo.photo_id,
        status=PhotoStatus.READY.value,  # described, whatever its status: only READY photos are analysed
        version=0,  # not indexed: only described
        uploaded_at=photo.created_at,
        filename=photo.filename,
        tags=label_terms(analysis.result),
        place=IndexedPlace(**place.model_dump()) if place else None,
        ocr_text=ocr_text(analysis.result),
        caption=analysis.caption,
    )
    assert document is not None
    return document


def merge_results(first: AnalysisResult, second: AnalysisResult) -> AnalysisResult:
    """One result from the two phases: phase 2 adds text lines, faces and the labels they imply."""
    known = {label.name for label in first.labels}
    return first.model_copy(
        update={
            "labels": first.labels + tuple(label for label in second.labels if label.name not in known),
            "weak_labels": tuple(w for w in first.weak_labels + second.weak_labels
                                 if w.name not in known and all(w.name != label.name for label in second.labels)),
            "faces": first.faces + second.faces,
            "text_lines": first.text_lines + second.text_lines,
            "moderation_labels": first.moderation_labels + second.moderation_labels,
            "dominant_colours": first.dominant_colours or second.dominant_colours,
        }
    )
