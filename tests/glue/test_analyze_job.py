"""The analyze_photos Glue script under local PySpark (Spark 3.5 = Glue 5) against a moto server (S3, DynamoDB,
CloudWatch) and the Rekognition stand-in: real adapters, real AnalysisService, real Spark partitions and worker
processes. What it proves: every photo analysed but the refused one (which keeps its reason), faces indexed and
stored only for owners who consented (the PeopleStore's consent), the run summary on S3 and in CloudWatch, and
exactly-once effects across re-runs, a run that broke half-way and a worker killed between IndexFaces and the save."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from functools import cache
from pathlib import Path

import boto3
import numpy as np
import pytest

from analyze_photos.job import JobConfig, analyze_partition, assign_partitions, parse_args, run
from analyze_photos.transforms import AnalysisSettings, dedupe
from rekognition_standin import StandinConfig

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, table_definition
from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer
from photo_organizer.adapters.aws.s3_blobs import S3BlobStore
from photo_organizer.analysis.models import ApiCall
from photo_organizer.analysis.planning import PhotoRecord
from photo_organizer.bootstrap import glue as wiring
from photo_organizer.errors import LabelModelUnavailableError
from photo_organizer.imaging.derive import derive
from photo_organizer.keys import PhotoKeys, new_photo_id
from photo_organizer.models import Photo, PhotoStatus, utcnow

# The `spark` fixture skips (pytest.importorskip, with the reason) where pyspark is not installed.
pytestmark = pytest.mark.xdist_group("spark")

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
LABEL_MODEL = Path(__file__).resolve().parents[2] / "build" / "models" / "efficientnet_lite0.onnx"
VERSION = 1
# owner -> (sample, what the stand-in's DetectLabels says is in it). alice and carol consented to face processing.
LIBRARY = {
    "alice": [
        ("obama.jpg", "people"),
        ("obama2.jpg", "people+text"),
        ("obama3.jpg", "people"),
        ("obama3.heic", "people"),  # the same shot as obama3.jpg: copied, never paid for
        ("biden.jpg", "people"),
        ("rocket.jpg", "scenery"),
    ],
    "bob": [
        ("coffee.png", "scenery"),
        ("coffee_with_text.jpg", "text"),
        ("text.png", "text"),
        ("chelsea.png", "scenery"),
        ("coffee_exif_gps.jpg", "scenery"),
    ],
    "carol": [("astronaut.png", "people"), ("obama_partial_face.jpg", "people")],
}
# Faces the recorded IndexFaces response indexes (the stand-in gives each a new FaceId, as the service does).
FACES_PER_INDEXING = len(json.loads((Path(__file__).parents[1] / "data/rekognition/index_faces.json").read_text())["FaceRecords"])
CONSENTING = frozenset({"alice", "carol"})  # bob never chose: no consent (the cloud default)


@cache
def derived(sample: str):
    return derive((SAMPLES / sample).read_bytes())


class Library:
    """READY photos with previews, made through the real adapters on the moto server."""

    def __init__(self, name: str) -> None:
        self.table, self.previews, self.summaries = f"{name}-table", f"{name}-derivatives", f"{name}-runs"
        self.collection_prefix = f"{name}-faces"  # the stand-in keeps collections across tests
        boto3.client("dynamodb").create_table(**table_definition(self.table))
        for bucket in (self.previews, self.summaries):
            boto3.client("s3").create_bucket(Bucket=bucket)
        self.photos = DynamoDbMetadataStore(self.table)
        self.store = DynamoDbAnalysisStore(self.table)
        self.people = DynamoDbPeopleStore(self.table)
        for owner in CONSENTING:
            self.people.set_biometric_consent(owner, True)
        self.ids: dict[str, str] = {}  # sample -> photo id
        self.owner_of: dict[str, str] = {}
        self.kinds: dict[str, str] = {}  # photo id -> stand-in labels kind
        blobs = S3BlobStore(self.previews)
        for owner, samples in LIBRARY.items():
            for sample, kind in samples:
                image, photo_id, now = derived(sample), new_photo_id(), utcnow()
                pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=sample,
                                declared_content_type="image/jpeg", declared_size=image.metadata.byte_size,
                                created_at=now, updated_at=now)
                self.photos.create_photo(pending, pending_ttl=timedelta(hours=1))
                blobs.put(PhotoKeys.for_photo(owner, photo_id).preview, image.preview_jpeg, content_type="image/jpeg")
                ready = pending.model_copy(update={"status": PhotoStatus.READY, "metadata": image.metadata})
                self.photos.finish_photo(ready, expected_status=PhotoStatus.PENDING_UPLOAD)
                self.ids[sample], self.owner_of[photo_id], self.kinds[photo_id] = photo_id, owner, kind

    def config(self, run_id: str, **overrides) -> JobConfig:
        values = dict(
            table=self.table, previews_bucket=self.previews, summary_bucket=self.summaries, summary_prefix="runs",
            analysis_version=VERSION, workers=2, run_id=run_id, region="us-east-1",
            backoff_base_s=0.005, metrics_namespace=f"Tests/{self.table}", collection_prefix=self.collection_prefix,
        )
        return JobConfig(**{**values, **overrides})

    def summary_on_s3(self, run_id: str) -> dict:
        body = boto3.client("s3").get_object(Bucket=self.summaries, Key=f"runs/{run_id}/summary.json")["Body"]
        return json.loads(body.read())

    def items(self) -> list[dict]:
        """Every attribute of every item: the "nothing was written" baseline."""
        pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        return sorted((item for page in pages for item in page["Items"]), key=lambda i: (i["PK"]["S"], i["SK"]["S"]))

    def copies(self) -> dict[str, str]:
        records = [PhotoRecord.from_photo(self.photos.get_photo(self.owner_of[pid], pid)) for pid in self.owner_of]
        return dedupe(records, current_version=VERSION, max_distance=AnalysisSettings().near_duplicate_max_distance)

    def collection(self, owner: str) -> str:
        return RekognitionAnalyzer(previews_bucket=None, collection_prefix=self.collection_prefix).collection_id(owner)

    def stored_faces(self, owner: str) -> Counter[str]:
        """photo id -> FACE# items of the owner."""
        return Counter(face.photo_id for face in self.people.faces(owner))

    def rows(self, owner: str) -> list[tuple[int, dict]]:
        """The owner's pending photos as the driver hands them to a partition."""
        pending = self.store.pending(VERSION, owner=owner, limit=1000).photos
        return [(0, {**record.__dict__, "status": record.status.value}) for record in pending]


def test_arguments_take_glue_spellings_and_ignore_glue_own_options():
    config = parse_args([
        "--JOB_NAME", "analyze", "--job-bookmark-option", "job-bookmark-disable",
        "--table", "t", "--previews_bucket", "p", "--summary-bucket", "s", "--analysis-version", "2",
        "--workers", "4", "--tps-indexfaces", "5", "--collection_prefix", "po-faces",
    ])
    assert (config.table, config.previews_bucket, config.summary_bucket, config.analysis_version) == ("t", "p", "s", 2)
    assert config.account_tps_of(ApiCall.INDEX_FACES) == 5 and config.account_tps_of(ApiCall.DETECT_LABELS) == 50
    assert config.run_id.startswith("run-")


def test_an_owner_never_spans_partitions_and_big_owners_are_spread():
    records = [PhotoRecord(o, f"{o}{i}", PhotoStatus.READY) for o, n in (("a", 6), ("b", 5), ("c", 2), ("d", 2))
               for i in range(n)]
    partitions = assign_partitions(records, 2)
    assert set(partitions) == {"a", "b", "c", "d"} and partitions["a"] != partitions["b"]
    load = Counter(partitions[r.owner] for r in records)
    assert sorted(load.values()) == [7, 8]


def paid_calls(standin) -> int:
    return sum(standin.calls.values())


def test_job_analyses_every_photo_once_through_throttling_and_records_the_refused_one(
    spark, aws_driver_env, rekognition_standin
):
    library = Library("happy")
    refused = library.ids["obama_partial_face.jpg"]
    # Fewer throttles than the job's 6 attempts per call: whichever worker meets them, back-off must absorb them.
    throttles = 5
    rekognition_standin.reset(StandinConfig(kinds=library.kinds, throttle_first=throttles, refuse=frozenset({refused})))

    document = run(library.config("run-1"), spark)

    copies = library.copies()
    assert library.ids["obama3.heic"] in copies, "the HEIC re-encode is a near duplicate of obama3.jpg"
    for photo_id, owner in library.owner_of.items():
        analysis = library.store.get(owner, photo_id)
        if photo_id == refused:
            assert analysis is None
            continue
        assert analysis is not None and analysis.analysis_version == VERSION, photo_id
        assert analysis.result.copied_from == copies.get(photo_id)
    # Every analysed photo item carries its search description's MiniLM vector (384 float32) for the indexer.
    embeddings = {item["SK"]["S"].removeprefix("PHOTO#"): item.get("embedding", {}).get("B")
                  for item in library.items() if item["SK"]["S"].startswith("PHOTO#")}
    assert {pid for pid, vector in embeddings.items() if vector is not None} == set(library.owner_of) - {refused}
    assert all(len(vector) == 1536 for pid, vector in embeddings.items() if pid != refused)
    # ...and its image embedding for the retraining: the label model's pooled penultimate layer, run by onnxruntime
    # on the preview (1280 little-endian float16, L2-normalised); a copy gets its source's, without a second pass.
    images = {item["SK"]["S"].removeprefix("PHOTO#"): item.get("image_embedding", {}).get("B")
              for item in library.items() if item["SK"]["S"].startswith("PHOTO#")}
    assert {pid for pid, vector in images.items() if vector is not None} == set(library.owner_of) - {refused}
    vectors = {pid: np.frombuffer(vector, dtype="<f2").astype(np.float32) for pid, vector in images.items() if vector}
    assert all(v.shape == (1280,) and abs(float(np.linalg.norm(v)) - 1.0) < 1e-2 for v in vectors.values())
    heic = library.ids["obama3.heic"]
    assert images[heic] == images[copies[heic]]
    # different photos, different embeddings: the same person's portraits are closer than a portrait and a rocket
    obama, obama2, rocket = (vectors[library.ids[s]] for s in ("obama.jpg", "obama2.jpg", "rocket.jpg"))
    assert float(obama @ obama2) > float(obama @ rocket)
    [failure] = library.store.failures()
    assert (failure.photo_id, failure.attempts) == (refused, 1)
    assert failure.reason.startswith("InvalidImageFormatException")

    # Paid calls: labels once per photo that is not a copy; moderation once where labels saw a person (scenery
    # and signs pay for none); text only where labels saw text; faces only for consenting owners, once per photo.
    paid = [pid for pid in library.owner_of if pid not in copies and pid != refused]
    per_photo = rekognition_standin.calls_per_photo
    assert all(per_photo[("DetectLabels", pid)] == 1 for pid in paid)
    people = {pid for pid in paid if "people" in library.kinds[pid]}
    assert people and {pid for (api, pid) in per_photo if api == "DetectModerationLabels"} == people
    assert all(per_photo[("DetectModerationLabels", pid)] == 1 for pid in people)
    texts = {pid for pid in paid if "text" in library.kinds[pid]}
    assert {pid for (api, pid) in per_photo if api == "DetectText"} == texts
    faces = {pid for pid in paid if "people" in library.kinds[pid] and library.owner_of[pid] in CONSENTING}
    assert {pid for (api, pid) in per_photo if api == "IndexFaces"} == faces
    assert all(per_photo[("IndexFaces", pid)] == 1 for pid in faces)
    assert sum(library.store.get(library.owner_of[pid], pid).result.faces != () for pid in faces) == len(faces)
    # Every indexed face is one of its owner's FACE# items, under its Rekognition FaceId; bob's consent is off.
    for owner in CONSENTING:
        in_collection = set(rekognition_standin.collections[library.collection(owner)])
        stored = library.people.faces(owner)
        assert {f.face_id for f in stored} == {f.rekognition_face_id for f in stored} == in_collection
        assert {f.photo_id for f in stored} == {pid for pid in faces if library.owner_of[pid] == owner}
    assert library.people.faces("bob") == [] and library.collection("bob") not in rekognition_standin.collections

    assert rekognition_standin.faults["InvalidImageFormatException"] == 1  # refused: never retried in the run
    assert rekognition_standin.faults["ThrottlingException"] + rekognition_standin.faults[
        "ProvisionedThroughputExceededException"] == throttles
    summary = library.summary_on_s3("run-1")
    assert summary == document
    assert summary["photos"] == len(library.owner_of)
    assert summary["copied"] == len(copies)
    assert summary["calls"] == dict(rekognition_standin.calls)
    assert summary["throttles"] == throttles
    assert summary["failures"] == {"InvalidImageFormatException": 1} and summary["failed_photos"] == 1
    assert summary["estimated_cost_usd"] == pytest.approx(0.001 * paid_calls(rekognition_standin))
    # One ListFaces walk per consenting owner with a photo to index (the collections were empty: nothing deleted).
    assert summary["faces"] == {"collection_walks": len(CONSENTING), "stray_faces_deleted": 0}
    assert rekognition_standin.attempts["ListFaces"] == len(CONSENTING)

    metrics = boto3.client("cloudwatch").list_metrics(Namespace=f"Tests/{library.table}")["Metrics"]
    names = Counter(m["MetricName"] for m in metrics)
    assert names["ApiCalls"] == len(summary["calls"]) and names["PhotosAnalysed"] == 1
    assert {"Name": "Reason", "Value": "InvalidImageFormatException"} in [
        d for m in metrics if m["MetricName"] == "FailedPhotos" for d in m["Dimensions"]
    ]

    # Run it again: nothing is pending but the refused photo, which the job does not retry at this version.
    before = library.items()
    rekognition_standin.reset(StandinConfig(kinds=library.kinds, refuse=frozenset({refused})))
    again = run(library.config("run-2"), spark)
    assert paid_calls(rekognition_standin) == 0 and sum(rekognition_standin.attempts.values()) == 0
    assert library.items() == before
    assert (again["photos"], again["skipped"], again["calls"]) == (0, 1, {})


def test_the_job_refuses_to_start_without_the_label_model_unless_told_to_store_no_image_embeddings(
    spark, aws_driver_env, rekognition_standin, monkeypatch, tmp_path
):
    from photo_organizer.adapters.image_embedding import LabelModelSession

    library = Library("no-label-model")
    rekognition_standin.reset(StandinConfig(kinds=library.kinds))
    before = library.items()
    monkeypatch.setenv(wiring.LABEL_MODEL_ENV, str(tmp_path / "efficientnet_lite0.onnx"))
    with pytest.raises(LabelModelUnavailableError, match="not a file"):
        run(library.config("run-no-model"), spark)
    # A model exported before the `embedding` output existed is refused the same way, before any paid call.
    monkeypatch.setenv(wiring.LABEL_MODEL_ENV, str(LABEL_MODEL))
    monkeypatch.setattr(LabelModelSession, "output_names", lambda self: ["logits"])
    with pytest.raises(LabelModelUnavailableError, match="no `embedding` output"):
        run(library.config("run-old-model"), spark)
    assert sum(rekognition_standin.attempts.values()) == 0 and library.items() == before

    # Told so, the job analyses without them (and never looks for the model).
    monkeypatch.setenv(wiring.LABEL_MODEL_ENV, str(tmp_path / "efficientnet_lite0.onnx"))
    document = run(library.config("run-without-images", image_embeddings=False, embeddings=False), spark)
    assert document["photos"] == len(library.owner_of) and document["failures"] == {}
    photo_items = [item for item in library.items() if item["SK"]["S"].startswith("PHOTO#")]
    assert all("analysis" in item and "image_embedding" not in item for item in photo_items)
    assert parse_args(["--table", "t", "--previews-bucket", "p", "--summary-bucket", "s", "--analysis-version", "1",
                       "--collection-prefix", "po-faces", "--image_embeddings", "false"]).image_embeddings is False


def test_a_run_broken_half_way_is_finished_by_the_next_without_paying_or_indexing_twice(
    spark, aws_driver_env, rekognition_standin
):
    library = Library("resume")
    copies = library.copies()
    originals = sorted(pid for pid in library.owner_of if pid not in copies)
    # Half the photos fail on every call; one photo with a face and text fails AFTER IndexFaces succeeded
    # (DetectText keeps answering 500), which leaves its faces in the collection without a saved result.
    after_faces = library.ids["obama2.jpg"]
    broken = {pid: frozenset({"DetectLabels", "DetectModerationLabels", "DetectText", "IndexFaces"})
              for pid in originals[::2] if pid != after_faces}
    broken[after_faces] = frozenset({"DetectText"})
    rekognition_standin.reset(StandinConfig(kinds=library.kinds, broken=broken))

    first = run(library.config("run-1", max_attempts=2), spark)

    # A copy whose source failed waits too (its source is not analysed yet): a retryable failure, no calls.
    waiting_copies = {pid for pid, source in copies.items() if source in broken}
    assert first["failures"] == {"InternalServerError": len(broken), **({"RetryableError": 1} if waiting_copies else {})}
    assert {f.photo_id for f in library.store.failures()} == set(broken) | waiting_copies
    alice = library.collection("alice")
    assert rekognition_standin.faces_per_photo(alice)[after_faces] == FACES_PER_INDEXING  # indexed, not saved
    calls_first = Counter(rekognition_standin.calls_per_photo)

    rekognition_standin.reset(StandinConfig(kinds=library.kinds))
    second = run(library.config("run-2"), spark)

    assert second["photos"] == len(broken) + len(waiting_copies)
    assert second["failures"] == {} and library.store.failures() == []
    for photo_id, owner in library.owner_of.items():
        assert library.store.get(owner, photo_id) is not None, photo_id
    total = calls_first + rekognition_standin.calls_per_photo
    # Every photo paid for its labels once over both runs; photos saved by run 1 cost nothing in run 2. The one
    # that failed after phase 1 pays phase 1 again: partial results are not kept between runs.
    assert all(total[("DetectLabels", pid)] == 1 for pid in originals if pid != after_faces)
    assert total[("DetectLabels", after_faces)] == total[("IndexFaces", after_faces)] == 2
    assert not any(pid not in broken for (_, pid) in rekognition_standin.calls_per_photo)
    # No face indexed twice: the broken-everywhere photos indexed once; the one that failed after IndexFaces
    # had its faces deleted before it was indexed again, so the collection holds one set per photo.
    indexed = {pid for (api, pid) in total if api == "IndexFaces"}
    assert all(total[("IndexFaces", pid)] == 1 for pid in indexed - {after_faces})
    assert rekognition_standin.attempts["DeleteFaces"] == 1
    assert second["faces"]["stray_faces_deleted"] == FACES_PER_INDEXING
    assert rekognition_standin.faces_per_photo(alice) == Counter(
        {pid: FACES_PER_INDEXING for pid in indexed if library.owner_of[pid] == "alice"}
    )
    stored_face = library.store.get("alice", after_faces).result.faces[0].face_handle
    assert stored_face in rekognition_standin.collections[alice]
    assert {f.face_id for f in library.people.faces("alice")} == set(rekognition_standin.collections[alice])


class Killed(BaseException):
    """The worker dies: no exception handler runs, so no failure is recorded."""


def test_a_worker_killed_between_index_faces_and_the_save_leaves_one_set_of_faces_after_the_rerun(
    spark, aws_driver_env, rekognition_standin, monkeypatch
):
    library = Library("killed")
    victim = library.ids["obama2.jpg"]
    rekognition_standin.reset(StandinConfig(kinds=library.kinds))

    class DyingStore(DynamoDbAnalysisStore):
        def save(self, analysis):
            if analysis.photo_id == victim:
                raise Killed
            return super().save(analysis)

    # alice's partition, in this process, with a store that dies on the victim's save (after its IndexFaces).
    real_store = wiring.analysis_store
    monkeypatch.setattr(wiring, "analysis_store", lambda config: DyingStore(config.table))
    with pytest.raises(Killed):
        list(analyze_partition(library.config("run-killed"), library.rows("alice")))
    monkeypatch.setattr(wiring, "analysis_store", real_store)

    alice = library.collection("alice")
    assert rekognition_standin.calls_per_photo[("IndexFaces", victim)] == 1
    assert rekognition_standin.faces_per_photo(alice)[victim] == FACES_PER_INDEXING
    assert library.store.get("alice", victim) is None and library.store.failures("alice") == []
    # Faces reach the people store just before the analysis: the kill leaves them there, and the rerun (photo
    # still pending) deletes them from the store and the collection before indexing the photo again.
    assert library.stored_faces("alice")[victim] == FACES_PER_INDEXING

    rekognition_standin.reset(StandinConfig(kinds=library.kinds))
    document = run(library.config("run-2"), spark)

    assert library.store.get("alice", victim) is not None and document["failures"] == {}
    assert rekognition_standin.calls_per_photo[("IndexFaces", victim)] == 1
    assert document["faces"] == {"collection_walks": len(CONSENTING), "stray_faces_deleted": FACES_PER_INDEXING}
    # Exactly one set of faces per indexed photo, in the collection and in the people store, and they agree.
    indexed = {pid for pid, owner in library.owner_of.items() if owner == "alice" and "people" in library.kinds[pid]
               and pid not in library.copies()}
    assert rekognition_standin.faces_per_photo(alice) == Counter({pid: FACES_PER_INDEXING for pid in indexed})
    assert library.stored_faces("alice") == rekognition_standin.faces_per_photo(alice)
    assert {f.face_id for f in library.people.faces("alice")} == set(rekognition_standin.collections[alice])
    saved = {face.face_handle for face in library.store.get("alice", victim).result.faces}
    assert saved <= set(rekognition_standin.collections[alice])


def test_a_new_analysis_version_keeps_every_indexed_face_instead_of_indexing_again(
    spark, aws_driver_env, rekognition_standin
):
    library = Library("reversion")
    rekognition_standin.reset(StandinConfig(kinds=library.kinds))
    run(library.config("v1"), spark)
    alice = library.collection("alice")
    faces_v1 = dict(rekognition_standin.collections[alice])
    stored_v1 = {f.face_id for f in library.people.faces("alice")}
    assert faces_v1 and stored_v1 == set(faces_v1)

    rekognition_standin.reset(StandinConfig(kinds=library.kinds))
    document = run(library.config("v2", analysis_version=VERSION + 1), spark)

    per_photo = rekognition_standin.calls_per_photo
    assert not any(api == "IndexFaces" for (api, _) in per_photo), "new FaceIds would cut faces out of people"
    assert any(api == "DetectLabels" for (api, _) in per_photo)
    assert rekognition_standin.attempts["DeleteFaces"] == 0 and document["faces"]["stray_faces_deleted"] == 0
    assert dict(rekognition_standin.collections[alice]) == faces_v1
    assert {f.face_id for f in library.people.faces("alice")} == stored_v1
    for photo_id, owner in library.owner_of.items():
        analysis = library.store.get(owner, photo_id)
        if analysis is not None and owner == "alice" and analysis.result.copied_from is None:
            assert analysis.analysis_version == VERSION + 1
            assert {face.face_handle for face in analysis.result.faces} <= set(faces_v1)


# ---- the job's wiring is the local runner's: places, local times and the captioner (issue 9) ------------------------


def test_the_job_gives_a_photo_with_gps_its_place_and_local_time_as_the_local_runner_does(
    aws_driver_env, rekognition_standin
):
    """On main the job built its AnalysisService without the place and local-time resolvers: cloud photos got no
    city, country or local time although the README promises them. One partition, in this process."""
    library = Library("places")
    rekognition_standin.reset(StandinConfig(kinds=library.kinds))
    gps_photo = library.ids["coffee_exif_gps.jpg"]  # EXIF: 43.0731 N 89.4012 W, 2024-05-17 10:11:12 -05:00

    list(analyze_partition(library.config("run-places", embeddings=False), library.rows("bob")))

    analysis = library.store.get("bob", gps_photo)
    assert analysis is not None and analysis.place is not None
    assert (analysis.place.city, analysis.place.country_code) == ("Madison", "US")
    assert analysis.time_zone == "America/Chicago"
    assert analysis.local_taken_at is not None and analysis.local_taken_at.hour == 10
    assert "Madison" in analysis.caption
    without_gps = library.store.get("bob", library.ids["coffee.png"])
    assert without_gps is not None and without_gps.place is None


def test_the_job_captions_through_the_sagemaker_endpoint_named_by_caption_endpoint(
    aws_driver_env, rekognition_standin, moto_server
):
    """The SageMakerCaptioner was wired nowhere. With --caption-endpoint the job asks the endpoint (moto's
    sagemaker-runtime, answering the documented TGI shape) and keeps its grounded caption."""
    import urllib.request

    library = Library("captions")
    rekognition_standin.reset(StandinConfig(kinds=library.kinds))
    answer = {"Body": json.dumps([{"generated_text": "A photo"}]), "ContentType": "application/json",
              "InvokedProductionVariant": "AllTraffic", "CustomAttributes": ""}
    request = urllib.request.Request(
        f"{moto_server}/moto-api/static/sagemaker/endpoint-results", method="POST",
        data=json.dumps({"region": "us-east-1", "results": [answer] * len(LIBRARY["bob"])}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).close()
    assert parse_args(["--table", "t", "--previews-bucket", "p", "--summary-bucket", "s", "--analysis-version", "1",
                       "--collection-prefix", "po-faces", "--caption_endpoint", "captions-ep"]).caption_endpoint == "captions-ep"

    config = library.config("run-captions", embeddings=False, caption_endpoint="captions-ep")
    list(analyze_partition(config, library.rows("bob")))

    captions = {library.store.get("bob", pid).caption for pid, owner in library.owner_of.items() if owner == "bob"}
    assert captions == {"A photo"}


def test_without_a_caption_endpoint_the_job_keeps_the_composed_caption():
    config = JobConfig(table="t", previews_bucket="p", summary_bucket="s", analysis_version=1, region="us-east-1",
                       collection_prefix="po-faces")
    assert config.caption_endpoint is None
    service = wiring.analysis_job(config).service
    assert type(service.captioner).__name__ == "ComposedCaptioner"
    assert service.resolve_place is not None and service.resolve_local_time is not None


def test_a_run_without_the_stacks_collection_prefix_does_not_start():
    """The API deletes <prefix>-<owner> when a user withdraws consent; a job that guessed a prefix would index
    faces into a collection that deletion never reaches."""
    with pytest.raises(SystemExit):
        parse_args(["--table", "t", "--previews-bucket", "p", "--summary-bucket", "s", "--analysis-version", "1"])
