"""The review queue: least certain first, answered and hidden things never asked, owner-scoped, and its answers are
valid POST /feedback bodies. The stores are in-memory fakes of the ports (the feedback and suggestion adapters
are other parts' work; the local end-to-end test exercises the real ones)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import TypeAdapter

from photo_organizer.analysis.models import (
    AnalysisResult,
    AnalysisSource,
    BoundingBox,
    Label,
    LabelSource,
    ModerationLabel,
)
from photo_organizer.analysis.planning import PhotoRecord
from photo_organizer.analysis.store import PhotoAnalysis
from photo_organizer.feedback.models import (
    FeedbackOrigin,
    FeedbackRecord,
    FeedbackRequest,
    FeedbackType,
    TagSuggestion,
    overlay_of,
)
from photo_organizer.models import PhotoStatus
from photo_organizer.people.models import (
    DEFAULT_THRESHOLD,
    CannotLink,
    Person,
    PinnedFace,
    distance_from_similarity,
)
from photo_organizer.people.searches import FaceSearch
from photo_organizer.people.store import StoredFace
from photo_organizer.services.review import (
    LOCAL_DECISION_CONFIDENCE,
    REKOGNITION_DECISION_CONFIDENCE,
    BeliefSource,
    ReviewKind,
    ReviewService,
    AnswerHistory,
    analysis_belief,
    expected_gain,
    face_item,
    rank_by_expected_gain,
    similarity_belief,
)

NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)
BOX = BoundingBox(left=0.1, top=0.1, width=0.2, height=0.2)


class FakeAnalysis:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], PhotoAnalysis] = {}

    def add(self, owner: str, photo_id: str, labels=(), *, sensitive: bool = False, source=LabelSource.LOCAL):
        result = AnalysisResult(
            photo_id=photo_id,
            analysis_version=1,
            labels=tuple(Label(name=n, confidence=c, source=source) for n, c in labels),
            moderation_labels=(ModerationLabel(name="Explicit", confidence=99),) if sensitive else (),
            analysed_at=NOW,
            source=AnalysisSource.LOCAL,
        )
        self.rows[(owner, photo_id)] = PhotoAnalysis(owner=owner, result=result)

    def analysed(self, owner, *, min_version):
        return [PhotoRecord(owner=o, photo_id=p, status=PhotoStatus.READY, analysis_version=1)
                for (o, p) in sorted(self.rows) if o == owner]

    def get(self, owner, photo_id):
        return self.rows.get((owner, photo_id))


class FakePeople:
    def __init__(self) -> None:
        self._faces: dict[str, list[StoredFace]] = {}
        self._people: dict[str, list[Person]] = {}
        self._constraints: dict[str, list] = {}

    def face(self, owner, face_id, photo_id, vector, quality=0.8):
        descriptor = None if vector is None else StoredFace.pack_descriptor(np.asarray(vector, dtype=np.float32))
        self._faces.setdefault(owner, []).append(StoredFace(
            face_id=face_id, owner=owner, photo_id=photo_id, box=BOX, quality=quality, created_at=NOW,
            descriptor=descriptor, rekognition_face_id=None if vector is not None else face_id,
        ))

    def person(self, owner, person_id, face_ids, *, name=None, hidden=False):
        self._people.setdefault(owner, []).append(
            Person(person_id=person_id, owner=owner, name=name, hidden=hidden, face_ids=frozenset(face_ids))
        )

    def faces(self, owner):
        return sorted(self._faces.get(owner, []), key=lambda f: f.face_id)

    def people(self, owner):
        return list(self._people.get(owner, []))

    def constraints(self, owner):
        return list(self._constraints.get(owner, []))

    def add_constraint(self, owner, constraint):
        self._constraints.setdefault(owner, []).append(constraint)
        return "c"


class FakeFeedback:
    def __init__(self) -> None:
        self.records: list[FeedbackRecord] = []

    def add(self, owner, kind, *, undone=False, **fields):
        self.records.append(FeedbackRecord(
            feedback_id=f"fb{len(self.records)}", owner=owner, type=kind,
            created_at=NOW + timedelta(seconds=len(self.records)), undone_at=NOW if undone else None, **fields,
        ))

    def overlays(self, owner):
        photos = {r.photo_id for r in self.records if r.owner == owner and r.photo_id}
        return {p: overlay_of(r for r in self.records if r.owner == owner and r.photo_id == p) for p in photos}

    def events(self, owner, *, since=None):
        return [r for r in self.records if r.owner == owner]


class FakeSuggestions:
    def __init__(self, by_photo: dict[str, dict[str, list[TagSuggestion]]] | None = None) -> None:
        self.by_owner = by_photo or {}

    def all_suggestions(self, owner):
        return self.by_owner.get(owner, {})


@pytest.fixture
def stores():
    return FakeAnalysis(), FakePeople(), FakeFeedback()


def _vector_at_similarity(similarity: float, base: np.ndarray, direction: np.ndarray) -> np.ndarray:
    return base + direction * distance_from_similarity(similarity)


def test_analysis_confidence_maps_each_analyzers_decision_point_to_one_half():
    assert analysis_belief(LOCAL_DECISION_CONFIDENCE, LabelSource.LOCAL) == pytest.approx(0.5)
    assert analysis_belief(REKOGNITION_DECISION_CONFIDENCE, LabelSource.REKOGNITION) == pytest.approx(0.5)
    assert analysis_belief(100, LabelSource.LOCAL) == analysis_belief(100, LabelSource.REKOGNITION) == 1.0
    assert analysis_belief(0, LabelSource.LOCAL) == 0.0
    # A 50 % label is a keep-leaning guess locally, a reject-leaning one for Rekognition.
    assert analysis_belief(50, LabelSource.LOCAL) > 0.5 > analysis_belief(50, LabelSource.REKOGNITION)


def test_analyzer_thresholds_the_mapping_assumes_are_the_analyzers_own():
    import inspect

    from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer
    from photo_organizer.adapters.local.labels import DEFAULT_MIN_CONFIDENCE

    assert LOCAL_DECISION_CONFIDENCE == DEFAULT_MIN_CONFIDENCE
    default = inspect.signature(RekognitionAnalyzer.__init__).parameters["min_label_confidence"].default
    assert REKOGNITION_DECISION_CONFIDENCE == default


def test_similarity_at_the_default_threshold_is_a_coin_flip_and_the_scale_is_monotone():
    assert similarity_belief(DEFAULT_THRESHOLD) == pytest.approx(0.5, abs=1e-9)
    values = [similarity_belief(s) for s in (0.05, 0.3, 0.6, 0.8, 0.9, 0.99)]
    assert values == sorted(values) and values[0] < 0.05 and values[-1] > 0.95


def test_tags_come_least_certain_first_with_ready_yes_and_no_bodies(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "p1", [("Dog", 22.0), ("Beach", 90.0)])  # 22 % local: barely kept
    analysis.add("ana", "p2", [("Cat", 60.0)])
    page = ReviewService(analysis, people, feedback).queue("ana", limit=10)
    assert [(i.photo_id, i.tag) for i in page.items] == [("p1", "dog"), ("p2", "cat"), ("p1", "beach")]
    first = page.items[0]
    assert first.kind is ReviewKind.TAG and first.source is BeliefSource.ANALYSIS and first.on_photo
    assert first.question == "Is this a dog?"
    assert first.confidence == pytest.approx(analysis_belief(22.0, LabelSource.LOCAL))
    body = TypeAdapter(FeedbackRequest)
    yes = body.validate_python(first.answers.yes.model_dump(mode="json"))
    no = body.validate_python(first.answers.no.model_dump(mode="json"))
    assert (yes.type, yes.photo_id, yes.tag, yes.origin) == (FeedbackType.TAG_CONFIRMED, "p1", "dog",
                                                             FeedbackOrigin.REVIEW)
    assert (no.type, no.tag) == (FeedbackType.TAG_REJECTED, "dog")
    assert page.remaining == 3


def test_limit_cuts_the_page_but_remaining_counts_every_question(stores):
    analysis, people, feedback = stores
    for i in range(5):
        analysis.add("ana", f"p{i}", [("Dog", 30.0 + i)])
    page = ReviewService(analysis, people, feedback).queue("ana", limit=2)
    assert [i.photo_id for i in page.items] == ["p0", "p1"] and page.remaining == 5


def test_ties_are_broken_by_a_stable_key_whatever_the_store_order(stores):
    analysis, people, feedback = stores
    for photo in ("p3", "p1", "p2"):
        analysis.add("ana", photo, [("Dog", 40.0), ("Cat", 40.0)])
    page = ReviewService(analysis, people, feedback).queue("ana", limit=10)
    # each photo's first question before any photo's second (spread over photos), ties by photo id then tag
    assert [(i.photo_id, i.tag) for i in page.items] == [
        ("p1", "cat"), ("p2", "cat"), ("p3", "cat"), ("p1", "dog"), ("p2", "dog"), ("p3", "dog")]


def test_answered_tags_leave_the_queue_and_come_back_when_the_answer_is_undone(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "p1", [("Dog", 25.0), ("Cat", 30.0), ("Car", 35.0)])
    feedback.add("ana", FeedbackType.TAG_REJECTED, photo_id="p1", tag="dog")
    feedback.add("ana", FeedbackType.TAG_CONFIRMED, photo_id="p1", tag="cat")
    feedback.add("ana", FeedbackType.TAG_REJECTED, photo_id="p1", tag="car", undone=True)
    page = ReviewService(analysis, people, feedback).queue("ana")
    assert [i.tag for i in page.items] == ["car"]


def test_trained_model_suggestions_replace_analysis_confidences_and_offer_new_tags(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "p1", [("Dog", 95.0)])
    analysis.add("ana", "p2", [("Dog", 95.0)])  # not scored by the model yet: analysis belief stays
    suggestions = FakeSuggestions({"ana": {"p1": [
        TagSuggestion(tag="dog", confidence=0.45, on_photo=True),
        TagSuggestion(tag="grandma's house", confidence=0.55, on_photo=False),
        TagSuggestion(tag="school trip", confidence=0.02, on_photo=False),
    ]}})
    page = ReviewService(analysis, people, feedback, suggestions=suggestions).queue("ana")
    by_key = {(i.photo_id, i.tag): i for i in page.items}
    assert [(i.photo_id, i.tag) for i in page.items][:2] == [("p1", "dog"), ("p1", "grandma's house")]
    assert by_key[("p1", "dog")].source is BeliefSource.SUGGESTION
    assert by_key[("p2", "dog")].source is BeliefSource.ANALYSIS
    house = by_key[("p1", "grandma's house")]
    assert not house.on_photo and house.answers.yes.type is FeedbackType.TAG_ADDED
    assert house.question == "Is this grandma's house?"
    assert by_key[("p1", "school trip")].question == "Is this a school trip?"


def test_sensitive_photos_are_asked_about_only_when_asked_for(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "p1", [("Beach", 30.0)], sensitive=True)
    service = ReviewService(analysis, people, feedback)
    assert service.queue("ana").items == []
    assert [i.photo_id for i in service.queue("ana", include_sensitive=True).items] == ["p1"]


def test_another_owners_photos_faces_and_feedback_never_reach_the_queue(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "p1", [("Dog", 30.0)])
    analysis.add("bob", "p9", [("Dog", 20.0)])
    feedback.add("bob", FeedbackType.TAG_REJECTED, photo_id="p1", tag="dog")  # bob cannot answer for ana
    people.face("bob", "bf1", "p9", np.zeros(128))
    people.face("bob", "bf2", "p9", np.full(128, 0.01))
    people.person("bob", "bobs", ["bf1", "bf2"])
    page = ReviewService(analysis, people, feedback).queue("ana")
    assert [(i.photo_id, i.tag) for i in page.items] == [("p1", "dog")]


def _two_people(analysis, people, owner="ana", *, hidden=False, name="Anna"):
    rng = np.random.default_rng(3)
    direction = rng.normal(size=128)
    direction /= np.linalg.norm(direction)
    base = rng.normal(scale=0.1, size=128)
    for photo in ("p1", "p2", "p3", "p4"):
        analysis.add(owner, photo, [])
    people.face(owner, "f1", "p1", base)
    people.face(owner, "f2", "p2", base + 0.01)
    people.face(owner, "f3", "p3", _vector_at_similarity(0.79, base, direction))  # the doubtful one
    people.person(owner, "anna", ["f1", "f2", "f3"], name=name, hidden=hidden)
    people.face(owner, "g1", "p4", -base)
    people.face(owner, "g2", "p4", -base - 0.01)
    people.person(owner, "other", ["g1", "g2"])


def test_the_doubtful_face_of_a_person_comes_first_with_face_feedback_answers(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people)
    page = ReviewService(analysis, people, feedback).queue("ana", kinds=["face"])
    first = page.items[0]
    assert (first.kind, first.face_id, first.person_id, first.person_name) == (ReviewKind.FACE, "f3", "anna", "Anna")
    assert first.question == "Is this Anna?" and first.source is BeliefSource.SIMILARITY
    assert 0.1 < first.confidence < 0.6
    assert first.answers.yes.type is FeedbackType.FACE_ASSIGNED and first.answers.no.type is FeedbackType.FACE_REJECTED
    assert (first.answers.yes.face_id, first.answers.yes.person_id, first.answers.yes.origin) == (
        "f3", "anna", FeedbackOrigin.REVIEW)
    unnamed = next(i for i in page.items if i.person_id == "other")
    assert unnamed.question == "Is this the same person as the other photos of this group?"
    assert {i.kind for i in page.items} == {ReviewKind.FACE}


def test_faces_of_hidden_people_and_answered_faces_are_not_asked(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people, hidden=True)
    feedback.add("ana", FeedbackType.FACE_REJECTED, face_id="g1", person_id="other")
    people.add_constraint("ana", PinnedFace(face_id="g2", person_id="other", created_at=NOW))
    assert ReviewService(analysis, people, feedback).queue("ana", kinds=["face"]).items == []


def test_an_undone_face_answer_and_a_refusal_for_another_person_do_not_hide_the_question(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people)
    feedback.add("ana", FeedbackType.FACE_ASSIGNED, face_id="f3", person_id="anna", undone=True)
    people.add_constraint("ana", CannotLink(face_id="f3", person_id="other", created_at=NOW))
    faces = [i.face_id for i in ReviewService(analysis, people, feedback).queue("ana", kinds=["face"]).items]
    assert "f3" in faces


def test_faces_on_sensitive_or_missing_photos_are_not_asked(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people)
    analysis.add("ana", "p3", [], sensitive=True)
    del analysis.rows[("ana", "p4")]  # deleted photo: its faces are on their way out
    faces = [i.face_id for i in ReviewService(analysis, people, feedback).queue("ana", kinds=["face"]).items]
    assert sorted(faces) == ["f1", "f2"]


class _ConfidentMatcher:
    def probability(self, similarity, quality_a, quality_b):
        return 0.99 if similarity > 0.5 else 0.01

    def project(self, descriptors):
        return descriptors


def test_a_promoted_matcher_decides_the_face_beliefs(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people)
    service = ReviewService(analysis, people, feedback, face_matcher=lambda owner: _ConfidentMatcher())
    items = {i.face_id: i for i in service.queue("ana", kinds=["face"]).items}
    assert {i.source for i in items.values()} == {BeliefSource.MATCHER}
    assert items["f3"].confidence == pytest.approx(0.99)


def test_cloud_faces_without_descriptors_use_the_search_similarities_missing_pairs_as_zero(stores):
    analysis, people, feedback = stores
    for photo in ("p1", "p2", "p3"):
        analysis.add("ana", photo, [])
    for face, photo in (("r1", "p1"), ("r2", "p2"), ("r3", "p3")):
        people.face("ana", face, photo, None)
    people.person("ana", "anna", ["r1", "r2", "r3"], name="Anna")
    searches = {
        "r1": FaceSearch(searched_at=NOW, threshold=70, max_faces=50, matches={"r2": 0.99, "r3": 0.85}),
        "r2": FaceSearch(searched_at=NOW, threshold=70, max_faces=50, matches={"r1": 0.99}),
    }
    service = ReviewService(analysis, people, feedback, face_searches=lambda owner: searches)
    items = {i.face_id: i.confidence for i in service.queue("ana", kinds=["face"]).items}
    assert items["r3"] == pytest.approx((similarity_belief(0.85) + similarity_belief(0.0)) / 2, abs=1e-6)
    assert items["r1"] == pytest.approx((similarity_belief(0.99) + similarity_belief(0.85)) / 2, abs=1e-6)


def test_tag_and_face_questions_share_one_scale_so_the_more_uncertain_comes_first_not_in_turns(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people)  # f3's belief in Anna ~0.46; f1, f2 ~0.72-0.74
    analysis.add("ana", "p5", [("Cat", 20.1)])  # p ~0.501
    analysis.add("ana", "p6", [("Car", 21.0)])  # p ~0.506
    analysis.add("ana", "p7", [("Owl", 60.0)])  # p 0.75: less uncertain than f3
    items = ReviewService(analysis, people, feedback).queue("ana", limit=20).items
    assert [i.tag or i.face_id for i in items][:4] == ["cat", "car", "f3", "owl"]
    gains = [expected_gain(i.confidence) for i in items[:4]]
    assert gains == sorted(gains, reverse=True)  # nothing asked yet: the gain is the uncertainty alone


def test_expected_gain_is_the_uncertainty_times_the_novelty_of_the_expected_answer():
    assert expected_gain(0.5) == pytest.approx(1.0)
    assert expected_gain(1.0) == expected_gain(0.0) == 0.0
    assert expected_gain(0.5, yes_so_far=1, no_so_far=1) == pytest.approx(0.5)
    assert expected_gain(0.7) == pytest.approx(expected_gain(0.3))
    # a likely "yes" teaches more to a subject that never had one than to one that had three
    assert expected_gain(0.7, yes_so_far=0, no_so_far=3) > expected_gain(0.7, yes_so_far=3, no_so_far=0)
    assert [expected_gain(0.5, k, k) for k in range(4)] == sorted((expected_gain(0.5, k, k) for k in range(4)),
                                                                  reverse=True)


def test_a_label_answered_many_times_yields_to_a_new_label_a_little_less_uncertain(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "q1", [("Dog", 20.2)])  # p ~0.501
    analysis.add("ana", "q2", [("Cat", 24.0)])  # p 0.525
    assert [i.tag for i in ReviewService(analysis, people, feedback).queue("ana").items] == ["dog", "cat"]
    for photo in ("h1", "h2", "h3"):
        feedback.add("ana", FeedbackType.TAG_CONFIRMED, photo_id=photo, tag="dog")
    feedback.add("ana", FeedbackType.TAG_REJECTED, photo_id="h4", tag="dog")
    assert [i.tag for i in ReviewService(analysis, people, feedback).queue("ana").items] == ["cat", "dog"]


def test_a_label_without_a_yes_yet_goes_before_one_with_only_yes_answers_at_equal_belief(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "q1", [("Cat", 28.0)])  # both p 0.55: a likely yes
    analysis.add("ana", "q2", [("Owl", 28.0)])
    for photo in ("h1", "h2"):
        feedback.add("ana", FeedbackType.TAG_CONFIRMED, photo_id=photo, tag="cat")
    for photo in ("h3", "h4"):
        feedback.add("ana", FeedbackType.TAG_REJECTED, photo_id=photo, tag="owl")
    # the stable key alone would put q1 (cat) first
    assert [i.tag for i in ReviewService(analysis, people, feedback).queue("ana").items] == ["owl", "cat"]


def test_an_undone_answer_gives_its_label_its_novelty_back(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "q1", [("Dog", 20.2)])
    analysis.add("ana", "q2", [("Cat", 24.0)])
    for photo in ("h1", "h2", "h3"):
        feedback.add("ana", FeedbackType.TAG_CONFIRMED, photo_id=photo, tag="dog", undone=True)
    assert [i.tag for i in ReviewService(analysis, people, feedback).queue("ana").items] == ["dog", "cat"]


def test_one_page_asks_about_each_label_once_before_asking_about_any_label_again(stores):
    analysis, people, feedback = stores
    for photo, confidence in (("p1", 20.1), ("p2", 20.2), ("p3", 20.3)):
        analysis.add("ana", photo, [("Dog", confidence)])  # the three most uncertain questions are all "dog"
    analysis.add("ana", "p4", [("Cat", 25.0)])
    analysis.add("ana", "p5", [("Owl", 26.0)])
    items = ReviewService(analysis, people, feedback).queue("ana").items
    assert [(i.photo_id, i.tag) for i in items] == [("p1", "dog"), ("p4", "cat"), ("p5", "owl"), ("p2", "dog"),
                                                    ("p3", "dog")]


def test_a_face_question_about_a_person_already_confirmed_twice_makes_way_for_a_newer_tag_question(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people)
    analysis.add("ana", "p5", [("Owl", 60.0)])  # p 0.75
    order = [i.tag or i.face_id for i in ReviewService(analysis, people, feedback).queue("ana").items]
    assert order.index("f3") < order.index("owl")  # a doubt about a person nobody answered about yet comes first
    for face in ("f1", "f2"):
        people.add_constraint("ana", PinnedFace(face_id=face, person_id="anna", created_at=NOW))
    feedback.add("ana", FeedbackType.FACE_ASSIGNED, face_id="f1", person_id="anna")  # the same answer, as an event
    items = ReviewService(analysis, people, feedback).queue("ana").items
    order = [i.tag or i.face_id for i in items]
    assert order.index("owl") < order.index("f3")
    assert next(i for i in items if i.face_id == "f3").confidence == pytest.approx(0.46, abs=0.02)  # belief unchanged


def test_one_page_asks_about_each_person_once_before_asking_about_a_person_again():
    def question(face_id: str, person_id: str, confidence: float):
        face = StoredFace(face_id=face_id, owner="ana", photo_id=f"p-{face_id}", box=BOX, quality=0.8,
                          created_at=NOW)
        return face_item(face, person_id, None, confidence, source=BeliefSource.SIMILARITY)

    items = [question("x1", "xena", 0.50), question("x2", "xena", 0.51), question("x3", "xena", 0.52),
             question("y1", "yuri", 0.65)]  # Xena's three doubts are each more uncertain than Yuri's one
    assert [i.face_id for i in rank_by_expected_gain(items)] == ["x1", "y1", "x2", "x3"]
    history = AnswerHistory()
    history.add_faces({("y0", "yuri"): True, ("y9", "yuri"): False})  # one yes and one no about Yuri already
    assert [i.face_id for i in rank_by_expected_gain(items, history)] == ["x1", "x2", "x3", "y1"]


def _loose_face(analysis, people, similarity: float, face_id: str = "x1", photo: str = "p9"):
    """A face outside every person, at `similarity` from Anna's first face (f1)."""
    rng = np.random.default_rng(3)
    direction = rng.normal(size=128)
    direction /= np.linalg.norm(direction)
    base = rng.normal(scale=0.1, size=128)
    analysis.add("ana", photo, [])
    people.face("ana", face_id, photo, _vector_at_similarity(similarity, base, -direction))


def test_a_face_in_nobody_is_asked_about_with_the_person_it_most_likely_is(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people)
    _loose_face(analysis, people, 0.78)
    items = [i for i in ReviewService(analysis, people, feedback).queue("ana", kinds=["face"]).items
             if i.face_id == "x1"]
    assert len(items) == 1
    loose = items[0]
    assert (loose.person_id, loose.on_photo, loose.question) == ("anna", False, "Is this Anna?")
    assert 0.1 < loose.confidence < 0.6
    assert (loose.answers.yes.type, loose.answers.yes.person_id) == (FeedbackType.FACE_ASSIGNED, "anna")


def test_a_loose_face_is_not_proposed_to_a_refused_or_hidden_person_nor_when_it_resembles_nobody(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people, hidden=True)
    _loose_face(analysis, people, 0.78)
    _loose_face(analysis, people, 0.05, face_id="x2", photo="p8")
    feedback.add("ana", FeedbackType.FACE_REJECTED, face_id="x1", person_id="other")
    faces = {i.face_id for i in ReviewService(analysis, people, feedback).queue("ana", kinds=["face"]).items}
    assert "x1" not in faces and "x2" not in faces


def test_each_photo_gets_its_first_question_before_any_photo_its_second(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "p1", [("Dog", 21.0), ("Cat", 22.0)])  # p1's two questions are the least certain
    analysis.add("ana", "p2", [("Car", 40.0)])
    page = ReviewService(analysis, people, feedback).queue("ana", limit=10)
    assert [(i.photo_id, i.tag) for i in page.items] == [("p1", "dog"), ("p2", "car"), ("p1", "cat")]


def test_near_certain_beliefs_wait_until_every_open_question_was_asked(stores):
    analysis, people, feedback = stores
    analysis.add("ana", "p1", [("Dog", 99.9), ("Cat", 20.5)])
    analysis.add("ana", "p2", [("Owl", 21.0)])
    items = ReviewService(analysis, people, feedback).queue("ana", limit=10).items
    assert [i.tag for i in items] == ["cat", "owl", "dog"]
    assert [i.near_certain for i in items] == [False, False, True]


def _look_alikes(analysis, people):
    """Anna (a1, a2) and Ben (b1, b2) close together; a3 is in Anna but nearly as close to Ben's faces."""
    rng = np.random.default_rng(5)
    base = rng.normal(scale=0.1, size=128)
    direction = rng.normal(size=128)
    direction /= np.linalg.norm(direction)
    across = distance_from_similarity(0.01)  # Anna and Ben: two people
    for photo in ("p1", "p2", "p3", "p4", "p5"):
        analysis.add("ana", photo, [])
    people.face("ana", "a1", "p1", base)
    people.face("ana", "a2", "p2", base + 0.005)
    people.face("ana", "a3", "p3", base + direction * across * 0.4)  # between the two, nearer Anna
    people.face("ana", "b1", "p4", base + direction * across)
    people.face("ana", "b2", "p5", base + direction * across + 0.005)
    people.person("ana", "anna", ["a1", "a2", "a3"], name="Anna")
    people.person("ana", "ben", ["b1", "b2"], name="Ben")


def test_a_face_near_another_person_is_also_asked_about_with_that_person(stores):
    analysis, people, feedback = stores
    _look_alikes(analysis, people)
    items = ReviewService(analysis, people, feedback).candidates("ana", kinds=["face"])
    rivals = [i for i in items if not i.on_photo]
    by_face = {(i.face_id, i.person_id): i for i in rivals}
    assert ("a3", "ben") in by_face  # the face between the two people is asked about with Ben too
    asked = by_face[("a3", "ben")]
    assert asked.question == "Is this Ben?" and asked.source is BeliefSource.SIMILARITY
    assert 0.1 <= asked.confidence < 0.9
    assert (asked.answers.no.type, asked.answers.no.person_id) == (FeedbackType.FACE_REJECTED, "ben")
    assert (asked.answers.yes.type, asked.answers.yes.person_id) == (FeedbackType.FACE_ASSIGNED, "ben")
    assert 0.3 < asked.confidence < 0.7  # as likely Ben as not: the queue's most telling face question
    assert items[0] == asked
    # Anna's other faces are nothing like Ben: no rival question about them
    assert not {"a1", "a2"} & {i.face_id for i in rivals}
    # and its own person's question is asked as well: both sides of the doubt
    assert any(i.face_id == "a3" and i.person_id == "anna" and i.on_photo for i in items)


def test_a_rival_person_already_refused_or_a_face_pinned_to_its_person_is_not_proposed(stores):
    analysis, people, feedback = stores
    _look_alikes(analysis, people)
    feedback.add("ana", FeedbackType.FACE_REJECTED, face_id="a3", person_id="ben")
    people.add_constraint("ana", PinnedFace(face_id="a2", person_id="anna", created_at=NOW))
    rivals = {(i.face_id, i.person_id) for i in ReviewService(analysis, people, feedback).candidates(
        "ana", kinds=["face"]) if not i.on_photo}
    assert ("a3", "ben") not in rivals and ("a2", "ben") not in rivals


def test_people_far_apart_bring_no_rival_questions(stores):
    analysis, people, feedback = stores
    _two_people(analysis, people)
    items = ReviewService(analysis, people, feedback).candidates("ana", kinds=["face"])
    assert all(i.on_photo for i in items)


def test_rival_questions_are_bounded_to_the_members_least_sure_of_their_own_person(stores, monkeypatch):
    from photo_organizer.services import review

    analysis, people, feedback = stores
    _look_alikes(analysis, people)
    monkeypatch.setattr(review, "MAX_RIVAL_FACES", 1)
    rivals = {(i.face_id, i.person_id) for i in ReviewService(analysis, people, feedback).candidates(
        "ana", kinds=["face"]) if not i.on_photo}
    assert rivals == {("a3", "ben")}  # a3 is the member least sure of Anna; b1 and b2 sit deep in Ben
