"""Face clustering in the cloud: group each consenting owner's indexed faces into people, run after run.

Per owner (`ClusteringService.cluster_owner`): read the faces and their stored searches; search the faces not
searched yet (Rekognition SearchFaces, paced by a token bucket) and store each face's matches as soon as it has
them, so a killed run resumes where it stopped and never pays twice; unless nothing changed since the last
clustering, cluster (`attach_new_faces` when few faces are new, else `cluster_people`, both obeying the user's
corrections and keeping person ids stable) and write the people back, then rewrite the `people` of the photos
whose people changed. Consent is read again before searching and before writing: an owner who withdraws during
the run gets nothing written back. The pure decisions are photo_organizer.people.runs; the local backend
regroups with PeopleService.recluster on descriptor edges.

An owner whose retraining promoted a face matcher (FaceMatcherStore, learning.faces.FaceMatcher) is clustered with
it instead of the fixed threshold: a pair is the same person when the matcher's calibrated probability (from the
SearchFaces similarity and both faces' qualities) reaches one half, pairs weigh by that probability, and faces are
searched down to the matcher's similarity cut. The user's names, merges and "not this person" hold as before
(they are constraints of the clustering, whatever decides the pairs). A matcher document that cannot be read is
logged and the owner keeps the fixed threshold: never a failed owner for a bad model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from photo_organizer.analysis.throttling import TokenBucket
from photo_organizer.errors import AnalysisRefusedError, RetryableError
from photo_organizer.people import attach_new_faces, cluster_people
from photo_organizer.people.runs import (
    MATCH_PROBABILITY,
    ClusterSummary,
    OwnerOutcome,
    choose_mode,
    edges_from_searches,
    faces_to_search,
    input_digest,
    matched_edges,
    matcher_digest,
    prune_people,
    search_threshold,
)
from photo_organizer.people.searches import ClusteringMark, FaceSearch
from photo_organizer.ports.people import ClusteringState, FaceMatcherStore, FaceSearcher, PeopleStore

log = logging.getLogger(__name__)


class ClusteringConfig(Protocol):
    """The run's settings (the cluster_faces job's JobConfig)."""

    full: bool
    threshold: float
    max_faces: int
    min_cluster_size: int
    incremental_max_ratio: float
    full_every_days: float

    def settings(self) -> dict[str, Any]: ...

    def now(self) -> datetime: ...


class PairMatcher(Protocol):
    """What clustering asks of a promoted face matcher (learning.faces.FaceMatcher)."""

    @property
    def threshold(self) -> float:
        """The similarity (0..1) from which the matcher tends to say "same person"."""
        ...

    def probability(self, similarity: float, quality_a: float | None = None, quality_b: float | None = None, *,
                    area_a: float | None = None, area_b: float | None = None) -> float: ...


def learned_face_matcher(document: dict[str, Any]) -> PairMatcher:
    from photo_organizer.learning.faces import FaceMatcher

    return FaceMatcher.from_json(document)


@dataclass(frozen=True)
class OwnerMatcher:
    matcher: PairMatcher
    digest: str  # of the promoted document: a new promotion changes the clustering inputs


@dataclass
class ClusteringService:
    config: ClusteringConfig
    people: PeopleStore
    state: ClusteringState  # the searches and clusterings kept between runs
    rekognition: FaceSearcher  # SearchFaces
    bucket: TokenBucket
    publish_people: Callable[[str, set[str]], None] | None = None  # (owner, photo ids): rewrite their `people`
    matchers: FaceMatcherStore | None = None  # the owners' promoted face matchers; None: the fixed threshold only
    load_matcher: Callable[[dict[str, Any]], PairMatcher] = learned_face_matcher

    def owner_matcher(self, owner: str) -> OwnerMatcher | None:
        """The owner's promoted matcher, or None (none promoted, or one that cannot be read: the fixed threshold)."""
        if self.matchers is None:
            return None
        document = self.matchers.promoted(owner)
        if document is None:
            return None
        try:
            matcher = self.load_matcher(document)
            cut = float(matcher.threshold)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("the promoted face matcher cannot be read; clustering with the fixed threshold: %s",
                        type(exc).__name__)
            return None
        if not 0.0 < cut <= 1.0:
            log.warning("the promoted face matcher's threshold is out of 0..1; clustering with the fixed threshold")
            return None
        return OwnerMatcher(matcher, matcher_digest(document))

    def cluster_owner(self, owner: str) -> OwnerOutcome:
        config, now = self.config, self.config.now()
        if not self.people.biometric_consent(owner):
            return OwnerOutcome(mode="consent_withdrawn")
        learned = self.owner_matcher(owner)
        searched_at = search_threshold(config.threshold, learned.matcher.threshold if learned else None)
        faces = self.people.faces(owner)
        searches = self.state.searches(owner)
        todo = faces_to_search(faces, searches, full=config.full, threshold=searched_at,
                               max_faces=config.max_faces)
        new_faces = sum(1 for f in todo if f.face_id not in searches)
        missing = 0
        for face in todo:
            search = self._search(owner, face.rekognition_face_id, now, searched_at)
            missing += search is None
            search = search or FaceSearch(now, searched_at, config.max_faces, {})
            if self.state.record_search(owner, face.face_id, search):
                searches[face.face_id] = search
        counts = {"faces": len(faces), "new_faces": new_faces, "searches": len(todo), "faces_missing": missing,
                  "learned_matcher": int(learned is not None)}

        constraints = self.people.constraints(owner)
        present = {f.face_id for f in faces}
        previous = prune_people(self.people.people(owner), present)
        settings = config.settings()
        if learned is not None:
            settings = {**settings, "matcher": learned.digest, "search_threshold": searched_at}
        digest = input_digest(faces, searches, constraints, settings)
        last = self.state.last_clustering(owner)
        if not config.full and last is not None and last.digest == digest:
            return OwnerOutcome.of("unchanged", **counts)

        edges = edges_from_searches(faces, searches)
        cut = config.threshold / 100
        if learned is not None:
            edges, cut = matched_edges(edges, faces, learned.matcher.probability), MATCH_PROBABILITY
        # Another matcher (or none any more) judges every pair anew: a full clustering, not an attachment that
        # keeps the last matcher's groups as they were. Person ids stay stable through the overlap rule.
        matcher_changed = last is not None and last.matcher_digest != (learned.digest if learned else None)
        mode = choose_mode(full=config.full or matcher_changed, previous=previous, new_faces=new_faces, total_faces=len(faces), last=last,
                           now=now, incremental_max_ratio=config.incremental_max_ratio,
                           full_every=timedelta(days=config.full_every_days))
        if mode == "full":
            result = cluster_people(owner, [f.ref() for f in faces], edges, previous, constraints,
                                    threshold=cut, min_cluster_size=config.min_cluster_size,
                                    neighbour_cap=config.max_faces)
        else:
            placed = set().union(*(p.face_ids for p in previous))
            pending = [f.ref() for f in faces if f.face_id not in placed]
            result = attach_new_faces(previous, pending, edges, constraints, cut, neighbour_cap=config.max_faces)
        if not self.people.biometric_consent(owner):
            return OwnerOutcome.of("consent_withdrawn", **counts)  # withdrawn meanwhile: write nothing back
        self.people.replace_people(owner, result.people)
        self._publish_people(owner, faces, previous, result.people)
        last_full = now if mode == "full" else (last.last_full_at if last else None)
        self.state.record_clustering(owner, ClusteringMark(digest=digest, clustered_at=now, last_full_at=last_full,
                                                           matcher_digest=learned.digest if learned else None))
        return OwnerOutcome.of(mode, result, **counts)

    def run(self, owners: Iterable[str], *, run_id: str) -> ClusterSummary:
        """Clusters the owners one by one. A face that fails to be searched (throttling beyond the retries) fails
        its owner for this run only: the owner's searches so far are kept, its people are left as they were."""
        summary = ClusterSummary(run_id)
        for owner in owners:
            try:
                summary.add(self.cluster_owner(owner))
            except RetryableError as exc:
                reason = getattr(exc, "code", None) or type(exc).__name__
                summary.record_failure(str(reason))
                log.warning("clustering of an owner failed; the next run goes on from here: %s", reason)
        summary.throttles += self.rekognition.stats.throttles
        return summary

    def _publish_people(self, owner: str, faces, previous, people) -> None:
        """The photos whose people changed get their `people` attribute rewritten, so the stream indexer makes
        the new grouping searchable (user corrections do the same through PeopleService)."""
        if self.publish_people is None:
            return
        before = {p.person_id: p.face_ids for p in previous}
        after = {p.person_id: p.face_ids for p in people}
        changed_faces: set[str] = set()
        for person_id in before.keys() | after.keys():
            changed_faces |= before.get(person_id, frozenset()) ^ after.get(person_id, frozenset())
        photo_of = {f.face_id: f.photo_id for f in faces}
        photo_ids = {photo_of[f] for f in changed_faces if f in photo_of}
        if photo_ids:
            self.publish_people(owner, photo_ids)

    def _search(self, owner: str, rekognition_face_id: str, now: datetime, threshold: float) -> FaceSearch | None:
        """None when the face is not in the collection any more (re-indexed or deleted since it was stored)."""
        self.bucket.acquire()
        try:
            edges = self.rekognition.search_faces(owner, rekognition_face_id, threshold=threshold,
                                                  max_faces=self.config.max_faces)
        except AnalysisRefusedError:
            return None
        matches = {(e.b if e.a == rekognition_face_id else e.a): e.similarity for e in edges}
        return FaceSearch(now, threshold, self.config.max_faces, matches)
