"""The review queue: the questions whose answers teach the models most, the largest expected gain first.

Uncertainty sampling with diminishing returns: every belief the library holds about one photo's tag or one face's
person is a probability p in 0..1, and every open question, tag or face, is ranked on ONE scale, its expected gain
(see `expected_gain`): the binary entropy of p (an answer about p = 0.5 halves the doubt, one about 0.98 teaches
almost nothing) times how new the answer would be to its subject (the tag a tag question is about, the person a
face question names): an answer of a kind (yes or no) the subject already has many of teaches less than its first
one. So a label nobody answered yet, or one still without a "yes", goes before the tenth question about "suit", and
face questions about a person already answered often make way for anything newer, while a face question that is a
real doubt about a new person still comes first. Each photo's (each face's) first question comes before any
photo's second one, and within one page the answers the page itself will bring count too (greedy, see
`rank_by_expected_gain`), so a page spreads over labels and people. Ties are broken by a stable key (kind, photo,
tag or face, person), so the same library gives the same queue. Answering is ordinary feedback:
each item carries the ready-to-POST /feedback bodies for "yes" and "no" (origin "review"), and an answered
item leaves the queue because its event is in the feedback store (undo it and the question comes back).

Where the beliefs come from:
- tags: the tagging model's calibrated TagSuggestions (SuggestionStore) for the photos the re-application scored;
  for every other (photo, tag) — a library without a trained model, a photo analysed after the last
  re-application, an analysis tag outside the owner's model — the analysis label confidence, mapped so that
  the analyzer's own decision point becomes 0.5 (see `analysis_belief`).
- faces: the probability that a face belongs to the person it is in (or, for a face in nobody, to the person it
  most likely is, from PROPOSE_FROM): the promoted face matcher's pair
  probability when the owner has one, else the similarity mapped through people.models' logistic scale around
  DEFAULT_THRESHOLD (see `similarity_belief`); averaged over the person's other faces, as the average-linkage
  clustering compares a face with a person (a missing cloud search result counts as similarity 0 there too).
  A face inside a person is also asked about with the other person it most resembles, when that is at least
  PROPOSE_FROM likely: the questions whose answer is often "no" (see `_rival_face_items`).

What is never asked: a (photo, tag) the user already confirmed, rejected or added (the photo's active overlay);
a (face, person) the user assigned or refused, through POST /feedback or the people endpoints (active feedback
events, and the people store's pinned-face / not-this-person corrections); faces of hidden people; photos that
are not READY any more; sensitive photos unless asked.

Cost: one pass over the owner's analysed photos per request (the analysis store's listing, then one read per
photo: a SQLite row locally, a GetItem in the cloud), plus the owner's people, faces, feedback and suggestions.
Right for a family library; a cloud library of many thousands of photos would want the re-application step to
store the queue instead.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from photo_organizer.analysis.models import Label, LabelSource
from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.feedback.models import (
    FACE_TYPES,
    FaceFeedback,
    FeedbackOrigin,
    FeedbackType,
    TagFeedback,
    TagOverlay,
    TagSuggestion,
    normalize_tag,
)
from photo_organizer.learning.uncertainty import entropy
from photo_organizer.people.models import (
    DEFAULT_THRESHOLD,
    CannotLink,
    PinnedFace,
    distance_from_similarity,
    similarities_from_distances,
    similarity_from_distance,
)
from photo_organizer.people.searches import FaceSearch
from photo_organizer.people.store import StoredFace
from photo_organizer.ports.analysis import AnalysisStore
from photo_organizer.ports.feedback import FeedbackStore, SuggestionStore
from photo_organizer.ports.people import PeopleStore

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_UNASSIGNED_FACES = 500  # best-quality loose faces proposed per request: bounds the work on a large library
MAX_RIVAL_FACES = 300  # members least sure of their own person asked about another one, per request: bounds the work
NEAR_CERTAIN_MARGIN = 0.3  # a belief below 0.2 or above 0.8: asked only after every open question
PROPOSE_FROM = 0.1  # a loose face whose best person is less likely than this is nobody known: not worth asking

# The analyzers' own decision points, in percent: a label at this confidence is where the analyzer itself is
# undecided (it keeps labels from there up). Local: adapters.local.labels.DEFAULT_MIN_CONFIDENCE (a 1000-way
# softmax summed per tag); cloud: RekognitionAnalyzer's min_label_confidence default (DetectLabels MinConfidence).
# Labels derived from faces or text are facts of another detector: their percentage is taken as it is.
LOCAL_DECISION_CONFIDENCE = 20.0
REKOGNITION_DECISION_CONFIDENCE = 55.0
DERIVED_DECISION_CONFIDENCE = 50.0
# people.models' logistic, moved along the distance axis so that DEFAULT_THRESHOLD's distance maps to 0.5.
_RECENTRE = distance_from_similarity(0.5) - distance_from_similarity(DEFAULT_THRESHOLD)


class ReviewKind(StrEnum):
    TAG = "tag"
    FACE = "face"


class BeliefSource(StrEnum):
    """Which model's score the item's confidence is."""

    SUGGESTION = "suggestion"  # the trained tagging model's (re-applied) suggestion
    ANALYSIS = "analysis"  # the analyzer's label confidence, mapped
    MATCHER = "matcher"  # the promoted face matcher
    SIMILARITY = "similarity"  # face similarity on the fixed-threshold scale


class PairMatcher(Protocol):
    """What the queue needs of a promoted face matcher (learning.faces.FaceMatcher)."""

    def probability(self, similarity: float, quality_a: float, quality_b: float) -> float: ...

    def project(self, descriptors: np.ndarray) -> np.ndarray: ...


class ReviewAnswers(BaseModel):
    """The POST /feedback bodies for the two answers, ready to send as they are."""

    model_config = ConfigDict(frozen=True)

    yes: TagFeedback | FaceFeedback
    no: TagFeedback | FaceFeedback


class ReviewItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ReviewKind
    photo_id: str
    tag: str | None = None
    face_id: str | None = None
    person_id: str | None = None
    person_name: str | None = None
    on_photo: bool = Field(description="tag: the photo shows the tag now; face: the face is in that person now.")
    confidence: float = Field(ge=0, le=1, description="The current models' probability that the answer is yes.")
    source: BeliefSource
    question: str
    answers: ReviewAnswers

    @property
    def near_certain(self) -> bool:
        return abs(self.confidence - 0.5) >= NEAR_CERTAIN_MARGIN

    @property
    def uncertainty_key(self) -> tuple[float, int, str, str, str]:
        return (
            round(abs(self.confidence - 0.5), 9),
            0 if self.kind is ReviewKind.TAG else 1,
            self.photo_id,
            self.tag or self.face_id or "",
            self.person_id or "",
        )


class ReviewPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[ReviewItem]
    remaining: int = Field(description="How many questions the queue holds in all (these items included).")


# ---- beliefs ------------------------------------------------------------------------------------------------------


def decision_confidence(source: LabelSource) -> float:
    if source is LabelSource.LOCAL:
        return LOCAL_DECISION_CONFIDENCE
    if source is LabelSource.REKOGNITION:
        return REKOGNITION_DECISION_CONFIDENCE
    return DERIVED_DECISION_CONFIDENCE


def analysis_belief(confidence: float, source: LabelSource) -> float:
    """A label's percentage as a probability with the analyzer's decision point t at 0.5: piecewise linear,
    0 -> 0, t -> 0.5, 100 -> 1. Local labels are kept from 20 %, Rekognition's from 55 %, so a local label at
    20 % and a Rekognition label at 55 % are both a coin flip, and both backends' queues start at their doubts."""
    t = decision_confidence(source)
    c = min(100.0, max(0.0, confidence))
    if c <= t:
        return 0.5 * c / t
    return 0.5 + 0.5 * (c - t) / (100.0 - t)


def similarity_belief(similarity: float) -> float:
    """A similarity on people.models' 0..1 scale as the probability of "same person", with DEFAULT_THRESHOLD at
    0.5: the logistic people.models uses for dlib distances, re-centred on the threshold's distance."""
    s = min(1.0 - 1e-12, max(1e-12, similarity))
    return similarity_from_distance(max(0.0, distance_from_similarity(s) + _RECENTRE))


# ---- the service ----------------------------------------------------------------------------------------------


@dataclass
class ReviewService:
    analysis: AnalysisStore
    people: PeopleStore
    feedback: FeedbackStore | None = None  # None: no feedback recorded yet in this deployment
    suggestions: SuggestionStore | None = None  # None: no tagging model is ever applied
    face_matcher: Callable[[str], PairMatcher | None] | None = None  # owner -> the promoted matcher, if any
    face_searches: Callable[[str], Mapping[str, FaceSearch]] | None = None  # cloud: owner -> SearchFaces results
    min_analysis_version: int = 1

    def queue(
        self,
        owner: str,
        *,
        limit: int = DEFAULT_LIMIT,
        kinds: Collection[ReviewKind | str] = (ReviewKind.TAG, ReviewKind.FACE),
        include_sensitive: bool = False,
    ) -> ReviewPage:
        items = self.candidates(owner, kinds=kinds, include_sensitive=include_sensitive)
        return ReviewPage(items=items[: max(1, min(MAX_LIMIT, limit))], remaining=len(items))

    def candidates(
        self,
        owner: str,
        *,
        kinds: Collection[ReviewKind | str] = (ReviewKind.TAG, ReviewKind.FACE),
        include_sensitive: bool = False,
    ) -> list[ReviewItem]:
        """Every open question in the queue's order (the benchmark's random strategy draws from the same pool):
        tag and face questions on one scale, the expected gain of their answer (`rank_by_expected_gain`), then
        the near-certain ones. One scale, not turns: a face question used to take every other turn whatever it
        could teach, and where the few people are already told apart (a "yes" deep inside a person, the tenth
        "no" about the same look-alike) those turns were lost to the tag questions the tagging model needed.
        The novelty part keeps faces from going unasked in a library with many more tag beliefs than faces:
        the first question about a person is as new as the first about a label."""
        wanted = {ReviewKind(k) for k in kinds}
        analyses = self._analyses(owner, include_sensitive=include_sensitive)
        history = AnswerHistory()
        items: list[ReviewItem] = []
        if ReviewKind.TAG in wanted:
            overlays = self.feedback.overlays(owner) if self.feedback is not None else {}
            history.add_tags(overlays)
            items.extend(self._tag_items(owner, analyses, overlays))
        if ReviewKind.FACE in wanted:
            verdicts = self._face_verdicts(owner)
            history.add_faces(verdicts)
            items.extend(self._face_items(owner, set(analyses), verdicts.keys()))
        return rank_by_expected_gain(items, history)

    # ---- tags -----------------------------------------------------------------------------------------------

    def _analyses(self, owner: str, *, include_sensitive: bool) -> dict[str, PhotoAnalysis]:
        out: dict[str, PhotoAnalysis] = {}
        for record in self.analysis.analysed(owner, min_version=self.min_analysis_version):
            analysis = self.analysis.get(owner, record.photo_id)
            if analysis is None or (analysis.result.sensitive and not include_sensitive):
                continue
            out[record.photo_id] = analysis
        return out

    def _tag_items(
        self, owner: str, analyses: Mapping[str, PhotoAnalysis], overlays: Mapping[str, TagOverlay]
    ) -> Iterable[ReviewItem]:
        suggested = self.suggestions.all_suggestions(owner) if self.suggestions is not None else {}
        for photo_id, analysis in analyses.items():
            overlay = overlays.get(photo_id, TagOverlay())
            answered = overlay.added | overlay.confirmed | overlay.rejected
            beliefs = tag_beliefs(analysis.result.labels, suggested.get(photo_id, ()))
            for tag, (confidence, on_photo, source) in beliefs.items():
                if tag not in answered:
                    try:
                        yield tag_item(photo_id, tag, confidence, on_photo=on_photo, source=source)
                    except PydanticValidationError:  # an id or tag POST /feedback would refuse: not askable
                        continue

    # ---- faces ------------------------------------------------------------------------------------------------

    def _face_items(
        self, owner: str, photo_ids: set[str], answered: Collection[tuple[str, str]]
    ) -> Iterable[ReviewItem]:
        people = [p for p in self.people.people(owner) if not p.hidden and len(p.face_ids) >= 2]
        if not people:
            return
        faces = {f.face_id: f for f in self.people.faces(owner)}
        matcher = self.face_matcher(owner) if self.face_matcher is not None else None
        searches = self.face_searches(owner) if self.face_searches is not None else {}
        source = BeliefSource.MATCHER if matcher is not None else BeliefSource.SIMILARITY
        doubts: list[tuple[float, str, str]] = []  # (own-person probability, face, person): rival candidates
        for person in people:
            members = sorted(f for f in person.face_ids if f in faces)
            if len(members) < 2:
                continue
            probabilities = face_person_probabilities([faces[f] for f in members], matcher, searches)
            for face_id in members:
                face = faces[face_id]
                if face.photo_id not in photo_ids or (face_id, person.person_id) in answered:
                    continue
                doubts.append((probabilities[face_id], face_id, person.person_id))
                try:
                    yield face_item(face, person.person_id, person.name, probabilities[face_id], source=source)
                except PydanticValidationError:
                    continue
        rivals = [(face, person) for _, face, person in sorted(doubts)[:MAX_RIVAL_FACES]]
        yield from self._rival_face_items(rivals, people, faces, answered, matcher, searches, source)
        yield from self._unassigned_face_items(owner, people, faces, photo_ids, answered, matcher, searches, source)

    def _rival_face_items(self, rivals, people, faces, answered, matcher, searches, source):
        """A face inside one person is also asked about with the OTHER person it most resembles ("Is this Ben?"
        about a face now in Anna): where two people look alike, the clustering's mistakes sit, and the answer is
        often "no", the only kind of answer that shows the matcher two different people close together (a queue
        of "yes" to faces deep in their person teaches it nothing it did not know). Proposed only from
        PROPOSE_FROM, like a loose face; a person the owner already refused for the face is never proposed. Asked
        for the MAX_RIVAL_FACES members least sure of their own person (`rivals`: (face, its person), askable
        ones only: a face the owner pinned to its person is settled)."""
        if len(people) < 2:
            return
        members = {p.person_id: [faces[f] for f in sorted(p.face_ids) if f in faces] for p in people}
        by_id = {p.person_id: p for p in people}
        for face_id, person_id in rivals:
            person, face = by_id[person_id], faces[face_id]
            others = [other for other in people if other.person_id != person.person_id]
            best = _most_likely_person(face, others, members, answered, matcher, searches)
            if best is None:
                continue
            rival, probability = best
            try:
                yield face_item(face, rival.person_id, rival.name, probability, source=source, in_person=False)
            except PydanticValidationError:
                continue

    def _unassigned_face_items(self, owner, people, faces, photo_ids, answered, matcher, searches, source):
        """A face in nobody (below the threshold to everyone) is asked about with the person it most likely is:
        "Is this Anna?" near 0.5 is where a fixed threshold errs (blurred, small, profile faces), so these are
        the face answers that teach the matcher most. Hidden people are never proposed; nor is a person the user
        already refused for that face."""
        placed = {f for p in self.people.people(owner) for f in p.face_ids}
        loose = sorted((f for f in faces.values() if f.face_id not in placed and f.photo_id in photo_ids),
                       key=lambda f: (-f.quality, f.face_id))[:MAX_UNASSIGNED_FACES]
        if not loose:
            return
        members = {p.person_id: [faces[f] for f in sorted(p.face_ids) if f in faces] for p in people}
        for face in loose:
            best = _most_likely_person(face, people, members, answered, matcher, searches)
            if best is None:
                continue
            person, probability = best
            try:
                yield face_item(face, person.person_id, person.name, probability, source=source, in_person=False)
            except PydanticValidationError:
                continue

    def _face_verdicts(self, owner: str) -> dict[tuple[str, str], bool]:
        """(face, person) -> the owner's answer (True: it is that person), from active face feedback, oldest
        first, and the people store's pinned-face / not-this-person corrections (the people endpoints record
        both an event and a correction: one answer, counted once)."""
        verdicts: dict[tuple[str, str], bool] = {}
        if self.feedback is not None:
            events = sorted(self.feedback.events(owner), key=lambda e: (e.created_at, e.feedback_id))
            for event in events:
                if event.type in FACE_TYPES and event.undone_at is None and event.face_id and event.person_id:
                    verdicts[(event.face_id, event.person_id)] = event.type is FeedbackType.FACE_ASSIGNED
        for constraint in self.people.constraints(owner):
            if isinstance(constraint, (PinnedFace, CannotLink)):
                verdicts[(constraint.face_id, constraint.person_id)] = isinstance(constraint, PinnedFace)
        return verdicts


# ---- pure pieces (the benchmark's simulated user asks the same questions) -----------------------------------------


def tag_beliefs(
    labels: Iterable[Label], suggestions: Iterable[TagSuggestion]
) -> dict[str, tuple[float, bool, BeliefSource]]:
    """tag -> (p, on the photo now, where p comes from): the model's suggestion where it has one, else the
    analysis label's mapped confidence (the best of a label's detections). A label's `parents` are not questions
    of their own ("dog" teaches more than "animal"); an analyzer that reports a parent as a label (the local one
    does, with its summed confidence) gets it asked like any label."""
    beliefs: dict[str, tuple[float, bool, BeliefSource]] = {}
    for label in labels:
        try:
            tag = normalize_tag(label.name)
        except ValueError:
            continue
        p = analysis_belief(label.confidence, label.source)
        if tag not in beliefs or p > beliefs[tag][0]:
            beliefs[tag] = (p, True, BeliefSource.ANALYSIS)
    for suggestion in suggestions:
        try:
            tag = normalize_tag(suggestion.tag)
        except ValueError:
            continue
        on_photo = suggestion.on_photo or (tag in beliefs and beliefs[tag][1])
        beliefs[tag] = (float(suggestion.confidence), on_photo, BeliefSource.SUGGESTION)
    return beliefs


def tag_item(photo_id: str, tag: str, confidence: float, *, on_photo: bool, source: BeliefSource) -> ReviewItem:
    yes_type = FeedbackType.TAG_CONFIRMED if on_photo else FeedbackType.TAG_ADDED
    return ReviewItem(
        kind=ReviewKind.TAG,
        photo_id=photo_id,
        tag=tag,
        on_photo=on_photo,
        confidence=round(min(1.0, max(0.0, confidence)), 6),
        source=source,
        question=f"Is this {_article(tag)}{tag}?",
        answers=ReviewAnswers(
            yes=TagFeedback(type=yes_type, photo_id=photo_id, tag=tag, origin=FeedbackOrigin.REVIEW),
            no=TagFeedback(type=FeedbackType.TAG_REJECTED, photo_id=photo_id, tag=tag, origin=FeedbackOrigin.REVIEW),
        ),
    )


def face_item(
    face: StoredFace, person_id: str, name: str | None, confidence: float, *, source: BeliefSource,
    in_person: bool = True,
) -> ReviewItem:
    return ReviewItem(
        kind=ReviewKind.FACE,
        photo_id=face.photo_id,
        face_id=face.face_id,
        person_id=person_id,
        person_name=name,
        on_photo=in_person,
        confidence=round(min(1.0, max(0.0, confidence)), 6),
        source=source,
        question=f"Is this {name}?" if name else "Is this the same person as the other photos of this group?",
        answers=ReviewAnswers(
            yes=FaceFeedback(type=FeedbackType.FACE_ASSIGNED, face_id=face.face_id, person_id=person_id,
                             origin=FeedbackOrigin.REVIEW),
            no=FaceFeedback(type=FeedbackType.FACE_REJECTED, face_id=face.face_id, person_id=person_id,
                            origin=FeedbackOrigin.REVIEW),
        ),
    )


def face_person_probabilities(
    members: list[StoredFace],
    matcher: PairMatcher | None,
    searches: Mapping[str, FaceSearch],
) -> dict[str, float]:
    """face id -> the mean "same person" probability of the face with each other face of its person.

    Pair similarities: descriptor distance (local; through the matcher's projection when it has one) on
    people.models' scale, else the faces' SearchFaces results in either direction (cloud; a pair neither search
    found counts as 0, as in clustering). Pair probability: the matcher's, else `similarity_belief`."""
    n = len(members)
    ids = [f.face_id for f in members]
    similarity = np.zeros((n, n), dtype=np.float64)
    vectors = [f.vector() for f in members]
    if all(v is not None for v in vectors):
        matrix = np.stack(vectors).astype(np.float64)
        if matcher is not None:
            matrix = np.asarray(matcher.project(matrix), dtype=np.float64)
        squared = (matrix * matrix).sum(axis=1)
        distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * matrix @ matrix.T, 0.0))
        similarity = similarities_from_distances(distances)
    else:
        index = {face_id: i for i, face_id in enumerate(ids)}
        for i, face_id in enumerate(ids):
            search = searches.get(face_id)
            for other, value in (search.matches.items() if search else ()):
                j = index.get(other)
                if j is not None and j != i:
                    best = max(similarity[i, j], float(value))
                    similarity[i, j] = similarity[j, i] = best
    qualities = [f.quality for f in members]
    out: dict[str, float] = {}
    for i, face_id in enumerate(ids):
        pair_probabilities = [
            matcher.probability(float(similarity[i, j]), qualities[i], qualities[j]) if matcher is not None
            else similarity_belief(float(similarity[i, j]))
            for j in range(n)
            if j != i
        ]
        out[face_id] = float(np.mean(pair_probabilities))
    return out


def face_to_person_probability(
    face: StoredFace, members: list[StoredFace], matcher: PairMatcher | None, searches: Mapping[str, FaceSearch]
) -> float:
    """The mean "same person" probability of a face outside a person with each of the person's faces (the same
    measure as `face_person_probabilities`, for a face not among them)."""
    others = [m for m in members if m.face_id != face.face_id]
    if not others:
        return 0.0
    vector = face.vector()
    vectors = [m.vector() for m in others]
    if vector is not None and all(v is not None for v in vectors):
        matrix = np.vstack([vector, *vectors]).astype(np.float64)
        if matcher is not None:
            matrix = np.asarray(matcher.project(matrix), dtype=np.float64)
        similarity = similarities_from_distances(np.linalg.norm(matrix[1:] - matrix[0], axis=1))
    else:
        own = searches.get(face.face_id)
        similarity = np.array([
            max(float(own.matches.get(m.face_id, 0.0)) if own else 0.0,
                float(searches[m.face_id].matches.get(face.face_id, 0.0)) if m.face_id in searches else 0.0)
            for m in others
        ])
    pairs = [
        matcher.probability(float(s), face.quality, m.quality) if matcher is not None else similarity_belief(float(s))
        for s, m in zip(similarity, others)
    ]
    return float(np.mean(pairs))


@dataclass
class AnswerHistory:
    """What the owner already answered, as the ranking counts it. A subject is what one answer teaches about:
    (tag, the tag) for a tag question (the tagging model has one classifier per tag), (face, the person) for a
    face question. A unit is what one question is asked about: (tag, the photo), (face, the face)."""

    yes: dict[tuple[ReviewKind, str], float] = field(default_factory=lambda: defaultdict(float))
    no: dict[tuple[ReviewKind, str], float] = field(default_factory=lambda: defaultdict(float))
    asked: dict[tuple[ReviewKind, str], int] = field(default_factory=lambda: defaultdict(int))

    def add_tags(self, overlays: Mapping[str, TagOverlay]) -> None:
        for photo_id, overlay in overlays.items():
            for tag in overlay.added | overlay.confirmed:
                self.yes[(ReviewKind.TAG, tag)] += 1
            for tag in overlay.rejected:
                self.no[(ReviewKind.TAG, tag)] += 1
            self.asked[(ReviewKind.TAG, photo_id)] += len(overlay.added | overlay.confirmed | overlay.rejected)

    def add_faces(self, verdicts: Mapping[tuple[str, str], bool]) -> None:
        for (face_id, person_id), same in verdicts.items():
            (self.yes if same else self.no)[(ReviewKind.FACE, person_id)] += 1
            self.asked[(ReviewKind.FACE, face_id)] += 1


def subject_of(item: ReviewItem) -> tuple[ReviewKind, str]:
    return (item.kind, item.tag or "") if item.kind is ReviewKind.TAG else (item.kind, item.person_id or "")


def unit_of(item: ReviewItem) -> tuple[ReviewKind, str]:
    return (item.kind, item.photo_id) if item.kind is ReviewKind.TAG else (item.kind, item.face_id or "")


def expected_gain(probability: float, yes_so_far: float = 0.0, no_so_far: float = 0.0) -> float:
    """What asking teaches, on one scale for every kind of question: the entropy of the belief (bits; 1 at
    p = 0.5) times the expected novelty of the answer for its subject, p / (1 + yes answers it has) +
    (1 - p) / (1 + no answers it has). A subject's first answer of either kind counts fully, its k-th of the
    same kind 1/k: a classifier learns little from another example of a class it has many of, and nothing at
    all until it has both classes, so a likely "yes" about a tag that never had one outranks a likely "yes"
    about a tag confirmed ten times."""
    p = min(1.0, max(0.0, float(probability)))
    return entropy(p) * (p / (1.0 + yes_so_far) + (1.0 - p) / (1.0 + no_so_far))


def rank_by_expected_gain(items: Iterable[ReviewItem], history: AnswerHistory | None = None) -> list[ReviewItem]:
    """The queue's order. Open questions (not `near_certain`) first, in levels: each photo's (face's) first
    question, counting those already answered about it, before any photo's (face's) next one (every reviewed
    photo is one more training example, and the held-out check needs reviewed photos too). Within a level the
    greedy order of `expected_gain`, where each question taken counts as its expected answer (p of a yes, 1 - p
    of a no) for the rest of the list: the next question about the same label or person is worth less than it
    was before, as it will be once the first is answered. Near-certain questions last, least certain first.
    Ties go by the stable `uncertainty_key`."""
    history = history or AnswerHistory()
    yes, no = defaultdict(float, history.yes), defaultdict(float, history.no)

    def gain(item: ReviewItem) -> float:
        subject = subject_of(item)
        return round(expected_gain(item.confidence, yes[subject], no[subject]), 12)

    items = list(items)
    open_items = [item for item in items if not item.near_certain]
    rest = sorted((item for item in items if item.near_certain), key=lambda item: item.uncertainty_key)
    by_unit: dict[tuple[ReviewKind, str], list[ReviewItem]] = defaultdict(list)
    for item in open_items:
        by_unit[unit_of(item)].append(item)
    levels: dict[int, list[ReviewItem]] = defaultdict(list)
    for unit, group in by_unit.items():
        group.sort(key=lambda item: (-gain(item), item.uncertainty_key))
        for rank, item in enumerate(group):
            levels[history.asked.get(unit, 0) + rank].append(item)
    out: list[ReviewItem] = []
    for level in sorted(levels):
        members = levels[level]
        # lazy greedy: a stored gain only ever falls as questions are taken, so the top of the heap, re-scored
        # and still first, is the true best
        heap = [(-gain(item), item.uncertainty_key, i) for i, item in enumerate(members)]
        heapq.heapify(heap)
        while heap:
            _, key, i = heapq.heappop(heap)
            item = members[i]
            current = (-gain(item), key, i)
            if heap and current > heap[0]:
                heapq.heappush(heap, current)
                continue
            out.append(item)
            subject = subject_of(item)
            yes[subject] += item.confidence
            no[subject] += 1.0 - item.confidence
    return out + rest


def _article(tag: str) -> str:
    """"a dog", "an owl", "a school trip"; possessives, plurals and the like stay bare ("grandma's house",
    "outdoors")."""
    if "'" in tag or tag.endswith("s") or not tag[:1].isalpha():
        return ""
    return "an " if tag[0] in "aeiou" else "a "


def _most_likely_person(face, candidates, members, answered, matcher, searches):
    """The candidate person this face most likely is (ties to the smaller id), with that probability; None when
    nobody reaches PROPOSE_FROM. A person the user already refused for the face, or one without faces, is skipped."""
    best: tuple[float, str] | None = None
    for person in candidates:
        if (face.face_id, person.person_id) in answered or not members[person.person_id]:
            continue
        p = face_to_person_probability(face, members[person.person_id], matcher, searches)
        if best is None or p > best[0] or (p == best[0] and person.person_id < best[1]):
            best = (p, person.person_id)
    if best is None or best[0] < PROPOSE_FROM:
        return None
    return next(x for x in candidates if x.person_id == best[1]), best[0]
