"""The per-photo analysis pipeline on the local stores with a scripted analyzer: planning, duplicates,
failures, exactly-once saves, consent."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from photo_organizer.adapters.local.sqlite_analysis import SqliteAnalysisStore
from photo_organizer.analysis.models import (
    AnalysisPlan,
    AnalysisResult,
    AnalysisSource,
    ApiCall,
    BoundingBox,
    FaceDetection,
    Label,
    TextLine,
)
from photo_organizer.analysis.planning import AnalysisSettings
from photo_organizer.services.analysis import AnalysisService
from photo_organizer.bootstrap import build_services
from photo_organizer.errors import AnalysisRefusedError, AnalysisThrottledError
from photo_organizer.keys import PhotoKeys
from photo_organizer.models import UploadRequest
from photo_organizer.services.ingest import ObjectCreated
from photo_organizer.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
OWNER = "owner-1"


class ScriptedAnalyzer:
    """Answers like Rekognition would for a few known photos; records every planned call."""

    def __init__(self, labels_by_photo: dict[str, list[str]]):
        self.labels_by_photo = labels_by_photo
        self.calls: list[tuple[str, ApiCall]] = []
        self.fail: dict[str, Exception] = {}

    def analyze(self, preview_jpeg: bytes, plan: AnalysisPlan) -> AnalysisResult:
        assert preview_jpeg[:3] == b"\xff\xd8\xff", "the analyzer must get the JPEG preview"
        if plan.photo_id in self.fail:
            raise self.fail[plan.photo_id]
        self.calls += [(plan.photo_id, call) for call in sorted(plan.calls)]
        names = self.labels_by_photo.get(plan.photo_id, [])
        labels = tuple(Label(name=n, confidence=95) for n in names) if plan.includes(ApiCall.DETECT_LABELS) else ()
        faces = ()
        if plan.includes(ApiCall.INDEX_FACES) and "Person" in names:
            faces = (FaceDetection(box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.2), confidence=99,
                                   face_handle=f"{plan.photo_id}-face-0"),)
        text = (TextLine(text="LATTE $4.50", confidence=97),) if plan.includes(ApiCall.DETECT_TEXT) else ()
        return AnalysisResult(photo_id=plan.photo_id, analysis_version=plan.analysis_version, labels=labels,
                              faces=faces, text_lines=text, analysed_at=datetime.now(timezone.utc),
                              source=AnalysisSource.REKOGNITION)


@pytest.fixture
def library(tmp_path):
    services = build_services(Settings(data_dir=tmp_path))
    return services, SqliteAnalysisStore(tmp_path / "photo-organizer.sqlite3")


def ingest(services, name: str) -> str:
    data = (SAMPLES / name).read_bytes()
    ticket = services.uploads.start(OWNER, UploadRequest(filename=name, content_type="image/jpeg", size=len(data)))
    key = PhotoKeys.for_photo(OWNER, ticket.photo_id).original
    services.originals.put(key, data, content_type="image/jpeg")
    services.ingest.process(ObjectCreated(bucket="originals", key=key))
    return ticket.photo_id


def pipeline(services, store, analyzer, *, consent=True, recorded=None):
    return AnalysisService(
        previews=services.derivatives, photos=services.metadata, store=store, analyzer=analyzer,
        settings=AnalysisSettings(analysis_version=1), face_consent=lambda owner: consent,
        record_faces=(lambda owner, photo_id, faces: recorded.append((photo_id, len(faces)))) if recorded is not None else None,
    )


def test_text_and_faces_are_paid_for_only_where_labels_call_for_them(library):
    services, store = library
    obama, coffee, rocket = (ingest(services, n) for n in ("obama.jpg", "coffee_with_text.jpg", "rocket.jpg"))
    analyzer = ScriptedAnalyzer({obama: ["Person", "Suit"], coffee: ["Cup", "Text"], rocket: ["Rocket"]})
    recorded: list = []
    summary = pipeline(services, store, analyzer, recorded=recorded).run(store.pending(1).photos, run_id="r1")
    calls = {(pid, call) for pid, call in analyzer.calls}
    assert (obama, ApiCall.INDEX_FACES) in calls and (coffee, ApiCall.INDEX_FACES) not in calls
    assert (coffee, ApiCall.DETECT_TEXT) in calls and (obama, ApiCall.DETECT_TEXT) not in calls
    assert {c for p, c in calls if p == rocket} == {ApiCall.DETECT_LABELS}, "no body, no moderation call"
    assert (obama, ApiCall.DETECT_MODERATION_LABELS) in calls
    assert summary.photos == 3 and summary.calls[ApiCall.DETECT_LABELS] == 3 and not summary.failures
    assert store.get(OWNER, coffee).result.text_lines[0].text == "LATTE $4.50"
    assert recorded == [(obama, 1)]


def test_second_run_makes_no_paid_call_and_writes_nothing(library):
    services, store = library
    ingest(services, "rocket.jpg")
    analyzer = ScriptedAnalyzer({})
    pipeline(services, store, analyzer).run(store.pending(1).photos, run_id="r1")
    made = len(analyzer.calls)
    summary = pipeline(services, store, analyzer).run(store.pending(1).photos, run_id="r2")
    assert len(analyzer.calls) == made and summary.photos == 0


def test_near_duplicate_in_another_format_copies_results_instead_of_paying(library):
    services, store = library
    jpeg = ingest(services, "obama3.jpg")
    analyzer = ScriptedAnalyzer({jpeg: ["Person", "Suit"]})
    pipeline(services, store, analyzer).run(store.pending(1).photos, run_id="r1")
    heic = ingest(services, "obama3.heic")  # the same picture re-encoded: other bytes, near-equal pHash
    paid_before = len(analyzer.calls)
    summary = pipeline(services, store, analyzer).run(store.pending(1).photos, run_id="r2")
    assert len(analyzer.calls) == paid_before and summary.copied == 1
    copy = store.get(OWNER, heic)
    assert copy.result.copied_from == jpeg and copy.result.label_names() == {"Person", "Suit"}
    assert copy.result.faces == (), "faces belong to the photo that was indexed"


def test_failures_are_recorded_per_photo_and_retried_next_run(library):
    services, store = library
    good, bad, throttled = (ingest(services, n) for n in ("rocket.jpg", "chelsea.png", "coffee.png"))
    analyzer = ScriptedAnalyzer({})
    analyzer.fail = {bad: AnalysisRefusedError("InvalidImageFormatException", "bad image"),
                     throttled: AnalysisThrottledError("ThrottlingException", "slow down")}
    summary = pipeline(services, store, analyzer).run(store.pending(1).photos, run_id="r1")
    assert store.get(OWNER, good) is not None and store.get(OWNER, bad) is None
    assert sum(summary.failures.values()) == 2
    assert {f.photo_id for f in store.failures(OWNER)} == {bad, throttled}
    analyzer.fail.pop(throttled)
    pipeline(services, store, analyzer).run(store.pending(1).photos, run_id="r2")
    assert store.get(OWNER, throttled) is not None
    assert {f.photo_id for f in store.failures(OWNER)} == {bad}


def test_without_consent_no_face_is_ever_indexed(library):
    services, store = library
    obama = ingest(services, "obama.jpg")
    analyzer = ScriptedAnalyzer({obama: ["Person"]})
    pipeline(services, store, analyzer, consent=False).run(store.pending(1).photos, run_id="r1")
    assert (obama, ApiCall.INDEX_FACES) not in analyzer.calls
    assert store.get(OWNER, obama).result.faces == ()


def test_caption_and_place_come_from_what_was_found(library):
    from photo_organizer.places.resolvers import place_resolver, resolve_local_time

    services, store = library
    coffee = ingest(services, "coffee_exif_gps.jpg")
    analyzer = ScriptedAnalyzer({coffee: ["Cup"]})
    service = pipeline(services, store, analyzer)
    service.resolve_place, service.resolve_local_time = place_resolver(), resolve_local_time
    service.run(store.pending(1).photos, run_id="r1")
    analysis = store.get(OWNER, coffee)
    assert analysis.place.city == "Madison" and analysis.time_zone == "America/Chicago"
    assert "Madison" in analysis.caption


def test_a_new_analysis_version_keeps_the_faces_already_indexed_instead_of_indexing_again(library):
    services, store = library
    obama = ingest(services, "obama.jpg")
    analyzer = ScriptedAnalyzer({obama: ["Person", "Suit"]})
    recorded: list = []
    pipeline(services, store, analyzer, recorded=recorded).run(store.pending(1).photos, run_id="v1")
    first_faces = store.get(OWNER, obama).result.faces
    analyzer.calls.clear()
    stored = {obama: {face.face_handle for face in first_faces}}
    v2 = pipeline(services, store, analyzer, recorded=recorded)
    v2.settings = AnalysisSettings(analysis_version=2)
    v2.indexed_face_ids = lambda owner, photo_id: stored.get(photo_id, set())
    v2.run(store.pending(2).photos, run_id="v2")
    assert (obama, ApiCall.INDEX_FACES) not in analyzer.calls, "a second IndexFaces would mint new FaceIds"
    assert (obama, ApiCall.DETECT_LABELS) in analyzer.calls
    again = store.get(OWNER, obama)
    assert again.result.analysis_version == 2 and again.result.faces == first_faces
    assert recorded == [(obama, 1), (obama, 1)]  # recorded again under the same ids: an idempotent put


def test_faces_the_people_store_no_longer_holds_are_indexed_afresh_by_a_new_version(library):
    services, store = library
    obama = ingest(services, "obama.jpg")
    analyzer = ScriptedAnalyzer({obama: ["Person"]})
    pipeline(services, store, analyzer).run(store.pending(1).photos, run_id="v1")
    analyzer.calls.clear()
    v2 = pipeline(services, store, analyzer)
    v2.settings = AnalysisSettings(analysis_version=2)
    v2.indexed_face_ids = lambda owner, photo_id: set()  # consent was withdrawn in between: faces forgotten
    v2.run(store.pending(2).photos, run_id="v2")
    assert (obama, ApiCall.INDEX_FACES) in analyzer.calls


def test_faces_reach_the_people_store_before_the_analysis_is_saved(library):
    # Saved first, a kill between the two would leave faces in the collection that no run ever records.
    services, store = library
    obama = ingest(services, "obama.jpg")
    order: list[str] = []
    service = pipeline(services, store, ScriptedAnalyzer({obama: ["Person"]}))
    service.record_faces = lambda owner, photo_id, faces: order.append("faces")
    save = store.save
    store.save = lambda analysis: order.append("analysis") or save(analysis)
    service.run(store.pending(1).photos, run_id="r1")
    assert order == ["faces", "analysis"]


def test_the_caption_is_the_captioners_given_only_what_was_found(library):
    from photo_organizer.analysis.captioner import CaptionInputs

    class RecordingCaptioner:
        def __init__(self):
            self.inputs: list[CaptionInputs] = []

        def caption(self, inputs: CaptionInputs) -> str:
            self.inputs.append(inputs)
            return "A cup"

    services, store = library
    coffee = ingest(services, "coffee_with_text.jpg")
    captioner = RecordingCaptioner()
    service = pipeline(services, store, ScriptedAnalyzer({coffee: ["Cup", "Text"]}))
    service.captioner = captioner
    service.run(store.pending(1).photos, run_id="r1")

    assert store.get(OWNER, coffee).caption == "A cup"
    [inputs] = captioner.inputs
    assert [label.name for label in inputs.labels] == ["Cup", "Text"]
    assert [line.text for line in inputs.text_lines] == ["LATTE $4.50"] and inputs.people_names == []


def test_both_backends_analyse_with_the_same_places_local_time_and_captioner_wiring(tmp_path, monkeypatch):
    """bootstrap.analysis_enrichment is the one source: the local runner and the Glue job get the same resolvers,
    and PO_CAPTION_ENDPOINT / --caption-endpoint turn on the SageMaker captioner (the composed one otherwise)."""
    from photo_organizer import bootstrap
    from photo_organizer.adapters.aws.sagemaker_captioner import SageMakerCaptioner
    from photo_organizer.analysis.captioner import ComposedCaptioner
    from photo_organizer.bootstrap import glue
    from photo_organizer.places.resolvers import resolve_local_time

    monkeypatch.delenv("PO_CAPTION_ENDPOINT", raising=False)
    local = bootstrap.local_analysis(tmp_path, tmp_path / "no-model.onnx", AnalysisSettings())
    assert isinstance(local.captioner, ComposedCaptioner)
    assert local.resolve_place is not None and local.resolve_local_time is resolve_local_time

    monkeypatch.setenv("PO_CAPTION_ENDPOINT", "captions-ep")
    local = bootstrap.local_analysis(tmp_path, tmp_path / "no-model.onnx", AnalysisSettings())
    assert isinstance(local.captioner, SageMakerCaptioner) and local.captioner._endpoint == "captions-ep"

    class JobConfig:  # the analyze_photos job's plain values
        table, previews_bucket, region, collection_prefix = "t", "p", "us-east-1", "po"
        max_attempts, backoff_base_s, workers, analysis_version, embeddings = 2, 0.01, 1, 1, False
        caption_endpoint = "captions-ep"

        def account_tps_of(self, api):
            return 5.0

    cloud = glue.analysis_job(JobConfig()).service
    assert isinstance(cloud.captioner, SageMakerCaptioner) and cloud.captioner._endpoint == "captions-ep"
    assert cloud.resolve_place is not None and cloud.resolve_local_time is resolve_local_time


def _fake_image_embedding(preview: bytes):
    import hashlib

    import numpy as np

    seed = int.from_bytes(hashlib.sha256(preview).digest()[:4], "little")
    vector = np.random.default_rng(seed).normal(size=1280).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_image_embedding_is_stored_at_analysis_and_copied_to_a_duplicate(library, tmp_path):
    import numpy as np

    from photo_organizer.adapters.local.sqlite_features import SqliteFeatureStore

    services, store = library
    features = SqliteFeatureStore(tmp_path / "photo-organizer.sqlite3")
    embedded: list[bytes] = []

    def embed_image(preview: bytes):
        embedded.append(preview)
        return _fake_image_embedding(preview)

    def run(run_id: str):
        service = pipeline(services, store, ScriptedAnalyzer({}))
        service.embed_image, service.features = embed_image, features
        return service.run(store.pending(1).photos, run_id=run_id)

    jpeg = ingest(services, "obama3.jpg")
    run("r1")
    preview = services.derivatives.get(PhotoKeys.for_photo(OWNER, jpeg).preview).data
    assert embedded == [preview], "embedded once, from the preview"
    assert np.allclose(features.image_embedding(OWNER, jpeg), _fake_image_embedding(preview), atol=1e-3)
    heic = ingest(services, "obama3.heic")
    summary = run("r2")
    assert summary.copied == 1 and len(embedded) == 1, "a duplicate is not embedded again"
    assert np.array_equal(features.image_embedding(OWNER, heic), features.image_embedding(OWNER, jpeg))


def test_without_the_embedding_hooks_nothing_is_embedded(library, tmp_path):
    from photo_organizer.adapters.local.sqlite_features import SqliteFeatureStore

    services, store = library
    photo_id = ingest(services, "rocket.jpg")
    pipeline(services, store, ScriptedAnalyzer({})).run(store.pending(1).photos, run_id="r1")
    assert store.get(OWNER, photo_id) is not None
    assert SqliteFeatureStore(tmp_path / "photo-organizer.sqlite3").image_embeddings(OWNER) == {}


def test_photos_analysed_before_embeddings_existed_get_theirs_once(library, tmp_path):
    from photo_organizer.adapters.local.sqlite_features import SqliteFeatureStore

    services, store = library
    ids = [ingest(services, n) for n in ("rocket.jpg", "chelsea.png")]
    pipeline(services, store, ScriptedAnalyzer({})).run(store.pending(1).photos, run_id="r1")  # no embeddings
    features = SqliteFeatureStore(tmp_path / "photo-organizer.sqlite3")
    later = pipeline(services, store, ScriptedAnalyzer({}))
    later.embed_image, later.features = _fake_image_embedding, features
    assert later.backfill_image_embeddings(OWNER) == 2
    assert set(features.image_embeddings(OWNER)) == set(ids)
    assert later.backfill_image_embeddings(OWNER) == 0
