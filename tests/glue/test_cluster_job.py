"""The cluster_faces Glue script under local PySpark against a moto server (S3, DynamoDB, CloudWatch) and the
Rekognition stand-in, whose SearchFaces matches the faces of the same (test-given) identity: real adapters, real
clustering, real Spark partitions. What it proves, over four runs of one library: same person together and
different people apart; a face seen once stays unassigned; owners without consent are never searched nor
written; the user's name and "not this person" survive incremental and full runs with stable person ids; each
face is searched once (a re-run with nothing new calls SearchFaces zero times and writes nothing); throttling is
absorbed and counted; the summary lands on S3."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from cluster_faces.job import JobConfig, parse_args, run
from cluster_faces.transforms import DEFAULT_SEARCH_TPS
from rekognition_standin import StandinConfig

from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
from photo_organizer.adapters.aws.dynamodb_metadata import table_definition
from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer
from photo_organizer.analysis.models import BoundingBox
from photo_organizer.people.store import StoredFace
from photo_organizer.services.people import PeopleService

pytestmark = pytest.mark.xdist_group("spark")

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


class FaceLibrary:
    """Faces as the analysis job leaves them: indexed in the owner's collection (the stand-in, which is told whose
    face each one is) and stored as FACE# items under their Rekognition FaceId."""

    def __init__(self, name: str, standin) -> None:
        self.table, self.summaries = f"{name}-table", f"{name}-runs"
        self.collection_prefix = f"{name}-faces"
        boto3.client("dynamodb").create_table(**table_definition(self.table))
        boto3.client("s3").create_bucket(Bucket=self.summaries)
        self.people = DynamoDbPeopleStore(self.table)
        self.service = PeopleService(people=self.people, user_settings=self.people,
                                     analysis=DynamoDbAnalysisStore(self.table))
        self.standin = standin
        self.identity: dict[str, str] = {}  # face id -> who it is (ground truth)
        self.photo_of: dict[str, str] = {}
        self._added = 0

    def add(self, owner: str, identity: str, count: int = 1) -> list[str]:
        collection = RekognitionAnalyzer(previews_bucket=None, collection_prefix=self.collection_prefix)
        faces = []
        for _ in range(count):
            self._added += 1
            photo_id = f"photo{self._added:04d}"
            face_id = self.standin.add_face(collection.collection_id(owner), photo_id, identity)
            faces.append(StoredFace(face_id=face_id, owner=owner, photo_id=photo_id,
                                    box=BoundingBox(left=0.3, top=0.2, width=0.25, height=0.3),
                                    quality=0.5 + self._added / 100, created_at=T0 + timedelta(minutes=self._added),
                                    rekognition_face_id=face_id))
            self.identity[face_id], self.photo_of[face_id] = identity, photo_id
        self.people.save_faces(faces)
        return [f.face_id for f in faces]

    def config(self, run_id: str, **overrides) -> JobConfig:
        values = dict(table=self.table, summary_bucket=self.summaries, summary_prefix="runs", run_id=run_id,
                      region="us-east-1", collection_prefix=self.collection_prefix, workers=2, search_tps=1000.0,
                      backoff_base_s=0.005, metrics_namespace=f"Tests/{self.table}")
        return JobConfig(**{**values, **overrides})

    def groups(self, owner: str) -> dict[frozenset[str], tuple[str, str | None]]:
        """The owner's people as {identities of their faces: (person id, name)}."""
        return {frozenset(self.identity[f] for f in p.face_ids): (p.person_id, p.name)
                for p in self.people.people(owner) if p.face_ids}

    def person_of(self, owner: str, face_id: str):
        return next((p for p in self.people.people(owner) if face_id in p.face_ids), None)

    def items(self, owner: str | None = None) -> list[dict]:
        pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        items = [i for page in pages for i in page["Items"] if owner is None or i["PK"]["S"] == f"OWNER#{owner}"]
        return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))

    def summary_on_s3(self, run_id: str) -> dict:
        body = boto3.client("s3").get_object(Bucket=self.summaries, Key=f"runs/{run_id}/summary.json")["Body"]
        return json.loads(body.read())


def test_arguments_take_the_stack_arguments_and_default_to_the_searchfaces_quota():
    config = parse_args(["--JOB_NAME", "cluster", "--table", "t", "--summary_bucket", "s", "--summary-prefix",
                         "runs/cluster_faces", "--account-tps", "50", "--workers", "4", "--collection-prefix", "p",
                         "--additional-python-modules", "x==1", "--owners", "b, a"])
    assert (config.table, config.summary_bucket, config.summary_prefix, config.collection_prefix) == (
        "t", "s", "runs/cluster_faces", "p")
    assert config.search_tps_per_worker == DEFAULT_SEARCH_TPS / 4 and not config.full
    assert config.owners == ("a", "b")
    assert parse_args(["--table", "t", "--summary-bucket", "s", "--search-tps", "40", "--workers", "4",
                       "--collection-prefix", "p", "--full", "true"]).search_tps_per_worker == 10 and parse_args(
        ["--table", "t", "--summary-bucket", "s", "--collection-prefix", "p", "--full", "yes"]).full


def test_faces_become_people_that_keep_names_and_corrections_and_each_face_is_searched_once(
    spark, aws_driver_env, rekognition_standin
):
    library = FaceLibrary("people", rekognition_standin)
    for owner in ("dora", "finn"):
        library.people.set_biometric_consent(owner, True)
    ana = library.add("dora", "ana", 4)
    ben = library.add("dora", "ben", 3)
    [cy] = library.add("dora", "cy")  # seen once: nobody yet
    gus = library.add("finn", "gus", 2)
    hal = library.add("eve", "hal", 3)  # eve never consented
    eve_before = library.items("eve")

    # ---- run 1: everything is new; the first SearchFaces calls are throttled ----
    rekognition_standin.reset(StandinConfig(throttle_first=3))
    first = run(library.config("run-1"), spark)

    assert library.groups("dora").keys() == {frozenset({"ana"}), frozenset({"ben"})}
    assert {p.face_ids for p in library.people.people("dora")} == {frozenset(ana), frozenset(ben)}
    assert library.person_of("dora", cy) is None
    assert library.groups("finn").keys() == {frozenset({"gus"})}
    searched = set(ana + ben + gus + [cy])
    assert dict(rekognition_standin.searched) == {face: 1 for face in searched}
    assert not set(hal) & set(rekognition_standin.searched) and library.items("eve") == eve_before
    assert first == library.summary_on_s3("run-1")
    assert (first["owners"], first["modes"], first["faces"], first["searches"]) == (2, {"full": 2}, 10, 10)
    assert (first["people_created"], first["unassigned_faces"], first["throttles"]) == (3, 1, 3)
    assert first["failures"] == {} and first["estimated_cost_usd"] == pytest.approx(0.010)

    # ---- the user names Ana and says one face is not her; new photos bring a face of Ana and one of Ben ----
    ana_id, ben_id = library.groups("dora")[frozenset({"ana"})][0], library.groups("dora")[frozenset({"ben"})][0]
    finn_before = library.items("finn")
    library.service.update("dora", ana_id, name="Ana")
    library.service.not_this_person("dora", ana[3], ana_id)
    [ana5] = library.add("dora", "ana")
    [ben4] = library.add("dora", "ben")

    rekognition_standin.reset()
    second = run(library.config("run-2"), spark)

    assert dict(rekognition_standin.searched) == {ana5: 1, ben4: 1}  # only the new faces
    assert second["modes"] == {"incremental": 1, "unchanged": 1}  # 2 new of 10 faces: attached, nobody moved
    assert library.groups("dora") == {frozenset({"ana"}): (ana_id, "Ana"), frozenset({"ben"}): (ben_id, None)}
    assert library.people.person("dora", ana_id).face_ids == {*ana[:3], ana5}
    assert library.people.person("dora", ben_id).face_ids == {*ben, ben4}
    assert library.person_of("dora", ana[3]) is None and library.person_of("dora", cy) is None
    assert library.items("finn") == finn_before and library.items("eve") == eve_before

    # ---- run 3: nothing new: no SearchFaces call, nothing written ----
    before = library.items()
    rekognition_standin.reset()
    third = run(library.config("run-3"), spark)

    assert rekognition_standin.attempts["SearchFaces"] == 0 and third["searches"] == 0
    assert third["modes"] == {"unchanged": 2} and library.items() == before

    # ---- run 4: a full run searches every face again and clusters from scratch: same people, same ids ----
    rekognition_standin.reset()
    fourth = run(library.config("run-4", full=True), spark)

    assert dict(rekognition_standin.searched) == {face: 1 for face in searched | {ana5, ben4}}
    assert fourth["modes"] == {"full": 2} and fourth["people_created"] == 0 and fourth["people_removed"] == 0
    assert library.groups("dora") == {frozenset({"ana"}): (ana_id, "Ana"), frozenset({"ben"}): (ben_id, None)}
    assert library.people.person("dora", ana_id).face_ids == {*ana[:3], ana5}  # "not this person" holds
    assert library.person_of("dora", ana[3]) is None
    assert library.groups("finn").keys() == {frozenset({"gus"})}
    assert library.items("eve") == eve_before and library.people.people("eve") == []


def test_an_owner_who_withdraws_consent_is_not_clustered_and_a_deleted_face_leaves_its_person(
    spark, aws_driver_env, rekognition_standin
):
    library = FaceLibrary("withdrawn", rekognition_standin)
    for owner in ("ida", "jon"):
        library.people.set_biometric_consent(owner, True)
    library.add("ida", "kim", 3)
    jon = library.add("jon", "lee", 3)
    rekognition_standin.reset()
    run(library.config("run-1"), spark)
    [lee] = library.people.people("jon")

    library.service.set_consent("ida", False)  # the API's withdrawal: collection aside, the table is emptied
    library.service.forget_photo("jon", library.photo_of[jon[0]])  # the photo was deleted
    rekognition_standin.reset()
    document = run(library.config("run-2"), spark)

    assert library.people.people("ida") == [] and library.people.faces("ida") == []
    assert document["owners"] == 1 and rekognition_standin.attempts["SearchFaces"] == 0
    assert library.people.person("jon", lee.person_id).face_ids == set(jon[1:])


def test_new_people_are_written_onto_their_photos_for_the_search_indexer(spark, aws_driver_env, rekognition_standin):
    from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore
    from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow

    library = FaceLibrary("indexing", rekognition_standin)
    library.people.set_biometric_consent("ivy", True)
    ana, bo = library.add("ivy", "ana", 3), library.add("ivy", "bo", 2)
    photos = DynamoDbMetadataStore(library.table)
    for face_id in ana + bo:
        now = utcnow()
        pending = Photo(owner="ivy", photo_id=library.photo_of[face_id], status=PhotoStatus.PENDING_UPLOAD,
                        filename="x.jpg", declared_content_type="image/jpeg", declared_size=1, created_at=now, updated_at=now)
        photos.create_photo(pending, pending_ttl=timedelta(days=1))
        meta = ImageMetadata(format=ImageFormat.JPEG, width=1, height=1, byte_size=1, sha256=f"{len(face_id):064x}", phash="0" * 16)
        photos.finish_photo(pending.model_copy(update={"status": PhotoStatus.READY, "metadata": meta}),
                            expected_status=PhotoStatus.PENDING_UPLOAD)
    before = {i["SK"]["S"]: i["updated_at"]["S"] for i in library.items("ivy") if i["SK"]["S"].startswith("PHOTO#")}

    rekognition_standin.reset(StandinConfig())
    run(library.config("run-index"), spark)

    person_of_identity = {next(iter(k)): v[0] for k, v in library.groups("ivy").items()}
    items = {i["SK"]["S"]: i for i in library.items("ivy") if i["SK"]["S"].startswith("PHOTO#")}
    for face_id in ana + bo:
        item = items[f"PHOTO#{library.photo_of[face_id]}"]
        people = [p["M"]["person_id"]["S"] for p in item["people"]["L"]]
        assert people == [person_of_identity[library.identity[face_id]]]
        assert item["updated_at"]["S"] > before[f"PHOTO#{library.photo_of[face_id]}"], "the stream must see a newer version"


def test_a_run_without_the_stacks_collection_prefix_does_not_start():
    """The API deletes <prefix>-<owner> when a user withdraws consent; a job that guessed a prefix would keep
    faces in a collection that deletion never reaches."""
    with pytest.raises(SystemExit):
        parse_args(["--table", "t", "--summary-bucket", "s"])


def test_the_owners_promoted_face_matcher_replaces_the_fixed_threshold_in_the_job(
    spark, aws_driver_env, rekognition_standin
):
    """SETTINGS#face_matcher holds learning.faces.FaceMatcher JSON (what the retraining's re-application promotes):
    the job reads it per owner through bootstrap.glue and the real FaceMatcher. Two look-alikes that Rekognition
    scores 90 % are one person under the fixed 80 % bar; a matcher that learned they are not (its cut at 0.95)
    splits them, from the stored searches (no SearchFaces call), and an owner without a matcher is untouched."""
    import numpy as np

    from photo_organizer.adapters.aws.dynamodb_face_matchers import DynamoDbFaceMatcherStore
    from photo_organizer.learning.faces import PAIR_FEATURES, FaceMatcher, logit

    library = FaceLibrary("matcher", rekognition_standin)
    for owner in ("mia", "ned"):
        library.people.set_biometric_consent(owner, True)
    twins = {"mia": (library.add("mia", "tom", 3), library.add("mia", "tim", 3)),
             "ned": (library.add("ned", "ola", 3), library.add("ned", "ole", 3))}
    rekognition_standin.reset(StandinConfig(lookalikes={frozenset({"tom", "tim"}): 90.0,
                                                        frozenset({"ola", "ole"}): 90.0}))
    run(library.config("run-1"), spark)
    assert library.groups("mia").keys() == {frozenset({"tom", "tim"})}  # the fixed threshold merges them
    assert library.groups("ned").keys() == {frozenset({"ola", "ole"})}
    [merged] = library.people.people("mia")
    ned_before = library.items("ned")

    # mia's corrections taught her matcher that 0.90 is not the same person: p = 0.5 at similarity 0.95
    coef = np.zeros(len(PAIR_FEATURES))
    coef[0] = 2.0
    matcher = FaceMatcher("mia", coef, 0.0, np.array([float(logit(0.95)), 0.7, 0.8, 0.27, 0.27]),
                          np.ones(len(PAIR_FEATURES)), info={"pairs": 40})
    assert abs(matcher.threshold - 0.95) < 1e-6
    DynamoDbFaceMatcherStore(library.table).promote("mia", matcher.to_json())

    rekognition_standin.reset(StandinConfig(lookalikes={frozenset({"tom", "tim"}): 90.0,
                                                        frozenset({"ola", "ole"}): 90.0}))
    document = run(library.config("run-2"), spark)

    assert rekognition_standin.attempts["SearchFaces"] == 0  # its cut is above 80 %: the stored searches serve
    assert document["learned_matchers"] == 1 and document["modes"] == {"full": 1, "unchanged": 1}
    groups = library.groups("mia")
    assert groups.keys() == {frozenset({"tom"}), frozenset({"tim"})}
    assert merged.person_id in {person_id for person_id, _ in groups.values()}  # one side keeps the id
    tom, tim = twins["mia"]
    assert {p.face_ids for p in library.people.people("mia") if p.face_ids} == {frozenset(tom), frozenset(tim)}
    assert library.items("ned") == ned_before  # no matcher: nothing changed, nothing written
