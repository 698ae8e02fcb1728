"""Glue as deployed: each Glue job of the synthesized analysis stack runs under local Spark with its synthesized
DefaultArguments, in a Python that holds only what AWS Glue 5.0 provides plus the job's --additional-python-modules
wheels and --extra-py-files (tests/cloud/glue_env.py), against a moto server and the Rekognition stand-in of
tests/glue. The job is a spark-submit subprocess started the way Glue starts it: if its code needs a module Glue does
not have, or the wheels do not install without a registry, it fails here.

What is proven: the job imports at all; every photo analysed, with the place and local time of the photo that has a
GPS fix, the MiniLM vector and the label model's image embedding (onnxruntime wheel, model zip) stored and the run
summary written; then cluster_faces groups the consenting owner's faces
into one person; and every AWS call of every Python process of both jobs (driver and Spark workers, recorded by the
rehearsal worker's botocore hook, Rekognition's to the stand-in too) is allowed by a statement of the job's role in
the synthesized template (offline evaluator of the rehearsal, rehearsal/glue_calls.py), listed in
build/rehearsal/glue-calls.md. What is not: Glue's own launcher (awsglue, its pip flags beyond --no-index, what Glue
itself does with the role: script and wheel download, logs, bookmarks), and Spark 3.5.4 exactly (3.5.9 here, same line).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from .rehearsal.assembly import CACHE
from .rehearsal.glue_calls import Created, JobRole, denials, hook_environment, recorded, write_table

ROOT = Path(__file__).resolve().parents[2]
GLUE_TESTS = ROOT / "tests" / "glue"
if str(GLUE_TESTS) not in sys.path:  # the Rekognition stand-in and the fixtures of tests/glue, reused as they are
    sys.path.insert(0, str(GLUE_TESTS))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


glue_env = _load("glue_env", Path(__file__).with_name("glue_env.py"))
_glue_fixtures = _load("tests_glue_conftest", GLUE_TESTS / "conftest.py")
moto_server = _glue_fixtures.moto_server
rekognition_standin = _glue_fixtures.rekognition_standin
aws_endpoint_env = _glue_fixtures.aws_endpoint_env

pytestmark = [pytest.mark.xdist_group("spark")]  # one Spark JVM at a time on a 2-core machine

ANALYZE, CLUSTER = "photo-organizer-dev-analyze-photos", "photo-organizer-dev-cluster-faces"
SAMPLES = ROOT / "samples"
# owner -> (sample, what the stand-in's DetectLabels sees, face identity). ana consented to face processing.
LIBRARY = {
    "ana": [("obama.jpg", "people", "obama"), ("obama2.jpg", "people", "obama"), ("obama3.jpg", "people", "obama"),
            ("coffee_exif_gps.jpg", "scenery", None)],
    "ben": [("text.png", "text", None), ("rocket.jpg", "scenery", None)],
}
CONSENTING = ("ana",)
JOB_TIMEOUT_S = 480
CALLS_TABLE = CACHE / "glue-calls.md"


def _timed(record: dict, name: str):
    class Timer:
        def __enter__(self):
            self.started = time.perf_counter()

        def __exit__(self, *exc):
            record[name] = round(time.perf_counter() - self.started, 1)

    return Timer()


@pytest.fixture(scope="module")
def timings() -> dict:
    record: dict = {}
    yield record
    print(f"\nglue as deployed, seconds: {json.dumps(record, sort_keys=True)}")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, timings):
    """The synthesized jobs (real assembly) and the Glue 5.0 Python with the analysis job's wheels installed."""
    if not all((glue_env.MINILM_DIR / name).is_file() for name in glue_env.MINILM_FILES):
        pytest.skip(f"no packed MiniLM model in {glue_env.MINILM_DIR}: run `make minilm` (scripts/pack_minilm.py)")
    builder = _load("build_glue_deps", ROOT / "scripts" / "build_glue_deps.py")
    try:
        # Under the lock: a second worker must not rebuild (delete and refill) build/glue while the first reads it.
        with _timed(timings, "glue_deps_build"), glue_env.exclusive(glue_env.ENV_ROOT / ".lock"):
            builder.build(builder.DEFAULT_OUT)
    except (SystemExit, subprocess.CalledProcessError) as e:
        pytest.skip(f"the Glue wheels could not be downloaded (package registry out of reach?): {e}")
    work = tmp_path_factory.mktemp("glue-as-deployed")
    assembly = glue_env.synthesize(work / "cdk.out", builder.DEFAULT_OUT)
    timings["synth"] = round(assembly.synth_seconds, 1)
    zips = work / "zips"
    zips.mkdir()
    jobs = assembly.jobs(zips)
    analyze = jobs[ANALYZE]
    # Both jobs name the same wheels: one environment serves both.
    assert [w.name for w in jobs[CLUSTER].wheels] == [w.name for w in analyze.wheels]
    try:
        started = time.perf_counter()
        env = glue_env.glue_python(analyze.wheels, analyze.installer_options)
        timings["glue_env_" + ("cold" if env.built_seconds is not None else "warm")] = round(
            env.built_seconds if env.built_seconds is not None else time.perf_counter() - started, 1)
    except glue_env.GlueEnvUnavailableError as e:
        pytest.skip(str(e))
    return jobs, env, assembly.template


class Library:
    """READY photos with previews in moto, made through the real adapters (as ingest leaves them)."""

    def __init__(self, region: str) -> None:
        from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore, table_definition
        from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
        from photo_organizer.adapters.aws.s3_blobs import S3BlobStore
        from photo_organizer.imaging.derive import derive
        from photo_organizer.keys import PhotoKeys, new_photo_id
        from photo_organizer.models import Photo, PhotoStatus, utcnow

        self.region = region
        self.table, self.derivatives = "glue-as-deployed-table", "glue-as-deployed-derivatives"
        boto3.client("dynamodb", region_name=region).create_table(**table_definition(self.table))
        boto3.client("s3", region_name=region).create_bucket(
            Bucket=self.derivatives, CreateBucketConfiguration={"LocationConstraint": region})
        photos = DynamoDbMetadataStore(self.table, client_factory=self._client("dynamodb"))
        people = DynamoDbPeopleStore(self.table, client_factory=self._client("dynamodb"))
        for owner in CONSENTING:
            people.set_biometric_consent(owner, True)
        previews = S3BlobStore(self.derivatives, region=region, client_factory=self._client("s3"))
        self.ids: dict[str, tuple[str, str]] = {}  # sample -> (owner, photo id)
        self.metadata = {}
        self.kinds, self.identities = {}, {}
        for owner, samples in LIBRARY.items():
            for sample, kind, identity in samples:
                image, photo_id, now = derive((SAMPLES / sample).read_bytes()), new_photo_id(), utcnow()
                pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename=sample,
                                declared_content_type="image/jpeg", declared_size=image.metadata.byte_size,
                                created_at=now, updated_at=now)
                photos.create_photo(pending, pending_ttl=timedelta(hours=1))
                previews.put(PhotoKeys.for_photo(owner, photo_id).preview, image.preview_jpeg,
                             content_type="image/jpeg")
                photos.finish_photo(pending.model_copy(update={"status": PhotoStatus.READY, "metadata": image.metadata}),
                                    expected_status=PhotoStatus.PENDING_UPLOAD)
                self.ids[sample] = (owner, photo_id)
                self.metadata[sample] = image.metadata
                self.kinds[photo_id] = kind
                if identity:
                    self.identities[photo_id] = identity

    def _client(self, service: str):
        return lambda: boto3.client(service, region_name=self.region)

    def analysis(self, sample: str):
        from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore

        owner, photo_id = self.ids[sample]
        return DynamoDbAnalysisStore(self.table, client_factory=self._client("dynamodb")).get(owner, photo_id)

    def people(self, owner: str):
        from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore

        return DynamoDbPeopleStore(self.table, client_factory=self._client("dynamodb")).people(owner)

    def item(self, owner: str, photo_id: str) -> dict:
        """The photo's item as stored (what the DynamoDB stream hands the indexer)."""
        from photo_organizer.adapters.aws.dynamodb_metadata import owner_pk

        return boto3.client("dynamodb", region_name=self.region).get_item(
            TableName=self.table, Key={"PK": {"S": owner_pk(owner)}, "SK": {"S": f"PHOTO#{photo_id}"}},
            ConsistentRead=True)["Item"]

    def faces(self, owner: str):
        from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore

        return DynamoDbPeopleStore(self.table, client_factory=self._client("dynamodb")).faces(owner)

    def summaries(self, prefix: str) -> list[dict]:
        s3 = boto3.client("s3", region_name=self.region)
        listed = s3.list_objects_v2(Bucket=self.derivatives, Prefix=prefix).get("Contents", [])
        return [json.loads(s3.get_object(Bucket=self.derivatives, Key=o["Key"])["Body"].read())
                for o in listed if o["Key"].endswith("/summary.json")]


def _run_job(env, job, library: Library, aws: dict[str, str], calls_file: Path) -> subprocess.CompletedProcess:
    """The job as Glue starts it, with every AWS call of its Python processes appended to `calls_file`."""
    arguments = glue_env.resolve_arguments(job.arguments, {"Table": library.table, "Derivatives": library.derivatives})
    environment = {**glue_env.job_environment(env, aws), **hook_environment(calls_file)}
    return subprocess.run(glue_env.job_command(env, job, arguments), env=environment,
                          capture_output=True, text=True, timeout=JOB_TIMEOUT_S, cwd=job.script.parent)


def _job_role(template: dict, job_name: str, library: Library) -> JobRole:
    """The job's role statements with the storage stack's outputs resolved to what the test created. The deployed
    derivatives bucket is SSE-KMS with the storage stack's data key (stacks/storage.py), so S3 object calls need
    that key too; moto's bucket here is not encrypted, so the key is named, not created."""
    account = json.loads((ROOT / "cdk.json").read_text())["context"]["account"]
    region = library.region
    key = f"arn:aws:kms:{region}:{account}:key/glue-as-deployed-data-key"
    created = {
        "Table": Created(library.table, f"arn:aws:dynamodb:{region}:{account}:table/{library.table}"),
        "Derivatives": Created(library.derivatives, f"arn:aws:s3:::{library.derivatives}"),
        "DataKey": Created(key.rsplit("/", 1)[1], key),
    }
    return JobRole(template, job_name, account=account, region=region, created=created,
                   kms_keys={("s3", library.derivatives): key})


def _tail(done: subprocess.CompletedProcess) -> str:
    """The Python traceback when there is one, else the last lines that are not Spark's INFO/WARN chatter."""
    lines = [line for line in (done.stdout + done.stderr).splitlines() if not re.match(r"^\d\d/\d\d/\d\d .* (INFO|WARN) ", line)]
    start = next((i for i, line in enumerate(lines) if line.startswith("Traceback")), max(0, len(lines) - 40))
    return "\n".join(lines[start:start + 60])


def test_the_glue_environment_holds_only_glue_5_modules_and_the_shipped_wheels(deployed):
    jobs, env, _ = deployed
    installed = env.modules()
    provided = {glue_env_name(n): v for n, v in glue_env.provided_modules().items()}
    shipped = {glue_env_name(w.name.split("-")[0]): w.name.split("-")[1] for w in jobs[ANALYZE].wheels}
    spark = {glue_env_name(p.split("==")[0]): p.split("==")[1] for p in glue_env.SPARK_PACKAGES}
    extra = {name: version for name, version in installed.items()
             if name not in provided and name not in shipped and name not in spark}
    assert extra == {}, "modules in the environment that Glue 5.0 would not have"
    swapped = {name: (provided[name], installed[name]) for name in provided
               if name in installed and installed[name] != provided[name] and name not in shipped}
    assert swapped == {}
    assert installed["numpy"] == provided["numpy"] == "1.26.4"  # no numpy swap under Glue's pandas and pyarrow
    assert installed["boto3"] == provided["boto3"]
    # This machine's glibc is newer than AL2023's: that a wheel installed here does not say Glue can install it.
    builder = _load("build_glue_deps", ROOT / "scripts" / "build_glue_deps.py")
    assert [w.name for w in jobs[ANALYZE].wheels if not builder.glue_installable(w.name)] == []


def glue_env_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_analyze_then_cluster_jobs_run_as_deployed_and_every_aws_call_is_allowed_by_the_job_role(
        deployed, aws_endpoint_env, rekognition_standin, timings, monkeypatch, tmp_path):
    from rekognition_standin import StandinConfig

    from photo_organizer.places.resolvers import place_resolver, resolve_local_time

    jobs, env, template = deployed
    region = jobs[ANALYZE].arguments["--region"]
    for name, value in aws_endpoint_env.items():
        monkeypatch.setenv(name, value)
    library = Library(region)
    rekognition_standin.reset(StandinConfig(kinds=library.kinds, identities=library.identities))

    with _timed(timings, "analyze_photos_job"):
        done = _run_job(env, jobs[ANALYZE], library, aws_endpoint_env, tmp_path / "analyze-calls.jsonl")
    assert done.returncode == 0, f"analyze_photos failed as deployed:\n{_tail(done)}"

    for sample, (owner, photo_id) in library.ids.items():
        analysis = library.analysis(sample)
        assert analysis is not None, f"{sample} was not analysed"
        assert analysis.analysis_version == int(jobs[ANALYZE].arguments["--analysis-version"])
        # the packed model from --extra-py-files: 384 float32 on the photo item, for the stream indexer
        item = library.item(owner, photo_id)
        assert len(item.get("embedding", {}).get("B", b"")) == 1536, sample
        # the label model from its own --extra-py-files zip, run by the shipped onnxruntime wheel on Glue's numpy:
        # the image embedding, 1280 float16
        assert len(item.get("image_embedding", {}).get("B", b"")) == 2560, sample
    # The photo with a GPS fix gets its place and local time in the cloud, as the local backend gives them.
    gps_photo = library.analysis("coffee_exif_gps.jpg")
    meta = library.metadata["coffee_exif_gps.jpg"]
    assert gps_photo.place == place_resolver()(meta.gps) and gps_photo.place.country_code == "US"
    assert gps_photo.time_zone == "America/Chicago"  # timezonefinder 8.1.0 on numpy 1.26, as 9.0.0 says locally
    assert (gps_photo.local_taken_at, gps_photo.time_zone) == resolve_local_time(
        meta.taken_at, meta.taken_at_offset, meta.gps)
    [summary] = library.summaries(jobs[ANALYZE].arguments["--summary-prefix"] + "/")
    assert summary["photos"] == len(library.ids) and summary["failures"] == {}

    with _timed(timings, "cluster_faces_job"):
        done = _run_job(env, jobs[CLUSTER], library, aws_endpoint_env, tmp_path / "cluster-calls.jsonl")
    assert done.returncode == 0, f"cluster_faces failed as deployed:\n{_tail(done)}"
    [person] = library.people("ana")
    photo_of_face = {face.face_id: face.photo_id for face in library.faces("ana")}
    obama_photos = {library.ids[s][1] for s, _, identity in LIBRARY["ana"] if identity == "obama"}
    assert {photo_of_face[face_id] for face_id in person.face_ids} == obama_photos
    assert library.people("ben") == []  # no consent, no faces, no people
    assert library.summaries(jobs[CLUSTER].arguments["--summary-prefix"] + "/")

    # Every AWS call both jobs made, driver and executors, against the statements of each job's role.
    sections, refused = {}, []
    for name, calls_file in ((ANALYZE, tmp_path / "analyze-calls.jsonl"), (CLUSTER, tmp_path / "cluster-calls.jsonl")):
        calls = recorded(calls_file)
        decisions = _job_role(template, name, library).decisions(calls)
        sections[name] = decisions
        refused += [f"{name}: {denial}" for denial in denials(decisions)]
        made = {(c["service"], c["operation"]) for c in calls}
        assert ("dynamodb", "Query") in made or ("dynamodb", "GetItem") in made, f"{name}: no table read recorded"
    analyze_calls = recorded(tmp_path / "analyze-calls.jsonl")
    # The hook reaches Spark's Python workers (other processes than the driver) and the Rekognition stand-in.
    assert len({c["pid"] for c in analyze_calls}) >= 2, "calls of one process only: the executors were not recorded"
    assert {"DetectLabels", "IndexFaces"} <= {c["operation"] for c in analyze_calls if c["service"] == "rekognition"}
    write_table(CALLS_TABLE, sections)
    assert refused == [], "\n".join(refused)
