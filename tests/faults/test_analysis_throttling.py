"""Throttling in the cloud's analysis use cases, in-process under moto (Rekognition answered with its recorded
shapes): the analyze_photos job's partition over two ingested photos of an owner who consented to face grouping,
the cluster_faces job's partition over that owner, and the table scan a search reindex or reconcile reads.

Each call site is throttled once. The job never fails for one photo: a photo whose analysis hit a throttle is
recorded as failed (retryable) and stays pending, the next run analyses it; a clustering run that hit one reports the
owner failed and the next run clusters them. Either way the library ends as an unthrottled run leaves it: each photo
analysed once, its faces stored once, one person, one clustering mark; the photo audit clean."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aws_faults import throttle
from fault_library import DERIVATIVES, OWNER, REGION, TABLE
from test_recorded_shape_throttling import rekognition_answers
from throttling import OK, RETRY, Caller, Outcome, api_outcome, call_api, covers, raised_outcome

GLUE_JOBS = Path(__file__).resolve().parents[2] / "glue_jobs"
if str(GLUE_JOBS) not in sys.path:
    sys.path.insert(0, str(GLUE_JOBS))  # the jobs' own modules, as Glue sees them (tests/glue does the same)

VERSION = 1
ANALYSIS = covers(
    "analysis",
    "dynamodb_analysis:dynamodb.Scan",
    "dynamodb_analysis:dynamodb.Query",
    "dynamodb_features:dynamodb.GetItem",
)
# The image embedding the training reads (the job's default; needs the exported label model, made by `make`).
EMBEDDINGS = covers("analysis", "dynamodb_features:dynamodb.UpdateItem")
LABEL_MODEL = Path(__file__).resolve().parents[2] / "build" / "models" / "efficientnet_lite0.onnx"
CLUSTERING = covers(
    "people",
    "dynamodb_clustering:dynamodb.Scan",
    "dynamodb_clustering:dynamodb.PutItem",
    "dynamodb_clustering:dynamodb.UpdateItem",
)
REINDEX = covers("search indexing", "table_documents:dynamodb.Scan")


def analysis_config(run_id: str, *, image_embeddings: bool = False):
    from analyze_photos.job import JobConfig

    return JobConfig(table=TABLE, previews_bucket=DERIVATIVES, summary_bucket=DERIVATIVES, summary_prefix="runs",
                     analysis_version=VERSION, workers=1, run_id=run_id, region=REGION, backoff_base_s=0.0,
                     metrics_namespace="Tests/faults", collection_prefix="po-faults", embeddings=False,
                     image_embeddings=image_embeddings)


def cluster_config(run_id: str):
    from cluster_faces.job import JobConfig

    return JobConfig(table=TABLE, summary_bucket=DERIVATIVES, run_id=run_id, region=REGION, workers=1,
                     backoff_base_s=0.0, collection_prefix="po-faults", min_cluster_size=1, full=True)


def jobs(library, calls, *, image_embeddings: bool = False) -> dict:
    from analyze_photos.job import _all_pending, analyze_partition
    from cluster_faces.job import cluster_partition

    from photo_organizer.bootstrap import glue as wiring

    from photo_organizer.adapters.aws.table_documents import documents_in_table

    calls.paused = True
    photos = [library.upload("obama2.jpg"), library.upload("rocket.jpg")]
    library.drain()
    library.services.user_settings.set_biometric_consent(OWNER, True)
    calls.paused = False
    calls.answers.update(rekognition_answers())
    caller, store, runs = Caller(calls), library.services.analysis, iter(range(100))

    def analysis_run() -> Outcome:
        pending = store.pending(VERSION, owner=OWNER, limit=100).photos
        rows = [(0, {**record.__dict__, "status": record.status.value}) for record in pending]
        config = analysis_config(f"run-{next(runs)}", image_embeddings=image_embeddings)
        (line,) = analyze_partition(config, rows) or [""]
        summary = json.loads(line)["summary"]
        return Outcome(RETRY if summary["failed_photos"] else OK, summary)

    def clustering_run() -> Outcome:
        (line,) = cluster_partition(cluster_config(f"cluster-{next(runs)}"), [OWNER])
        summary = json.loads(line)
        return Outcome(RETRY if summary["failures"] else OK, summary)

    # The drivers list the work first (every owner's pending photos; every consenting owner), then the partitions.
    listed = caller.step("analysis driver", lambda: raised_outcome(lambda: len(list(_all_pending(store, VERSION, None)))))
    caller.step("analysis run", lambda: raised_outcome(lambda: _unwrap(analysis_run())))
    owners = caller.step("clustering driver", lambda: raised_outcome(
        lambda: wiring.clustering_state(cluster_config("list")).consenting_owners()))
    # The app shows an analysed photo (its suggestions are read beside the analysis).
    detail = caller.step("photo detail", lambda: api_outcome(call_api("GET", f"/photos/{photos[0]}")))
    caller.step("clustering run", lambda: raised_outcome(lambda: _unwrap(clustering_run())))
    documents = caller.step("reindex scan", lambda: raised_outcome(lambda: sorted(
        (d.photo_id, d.version) for d in documents_in_table(TABLE))))
    calls.paused = True
    library.drain()
    people = library.services.people_store.people(OWNER)
    left = {
        "listed": (listed, owners),
        "detail": detail["status"],
        "embeddings": len(library.services.features.image_embeddings(OWNER)),
        "analysed": sorted(store.get(OWNER, p).analysis_version for p in photos if store.get(OWNER, p)),
        "failures": [f.photo_id for f in store.failures(OWNER)],
        "faces": len(library.services.people_store.faces(OWNER)),
        "people": len(people),
        "documents": len(documents),
        "clustered": library.services.clustering.last_clustering(OWNER) is not None,
    }
    library.assert_clean(ready=2)
    calls.paused = False
    return left


class _Retry(Exception):
    pass


def _unwrap(outcome: Outcome):
    """A run that recorded a retryable failure is, for its caller (the next scheduled run), a retry."""
    if outcome.kind == RETRY:
        from photo_organizer.errors import StorageUnavailableError

        raise StorageUnavailableError(f"the run recorded failures: {outcome.value}")
    return outcome.value


UNTHROTTLED = {"listed": (2, [OWNER]), "detail": "READY", "embeddings": 0, "analysed": [VERSION, VERSION], "failures": [], "faces": 2, "people": 1,
               "documents": 2, "clustered": True}


def test_the_jobs_make_exactly_these_calls(calls, aws_library):
    left = jobs(aws_library, calls)
    assert {*ANALYSIS, *CLUSTERING, *REINDEX} <= set(calls.sites)
    assert left == UNTHROTTLED


@pytest.mark.parametrize("site", (*ANALYSIS, *CLUSTERING, *REINDEX), ids=str)
def test_a_throttled_job_call_is_retried_by_the_next_run_and_nothing_is_done_twice(calls, aws_library, site):
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    left = jobs(aws_library, calls)
    assert fault.fired, f"{site} was never throttled: the jobs no longer make it"
    assert left == UNTHROTTLED


@pytest.mark.skipif(not LABEL_MODEL.is_file(), reason="the exported label model (build/models, made by `make`) is missing")
@pytest.mark.parametrize("site", EMBEDDINGS, ids=str)
def test_a_throttled_image_embedding_write_is_retried_by_the_next_run(calls, aws_library, site):
    calls.fault = fault = throttle(site.service, site.operation, module=site.module)
    left = jobs(aws_library, calls, image_embeddings=True)
    assert fault.fired, f"{site} was never throttled: the job no longer makes it"
    assert left == UNTHROTTLED | {"embeddings": 2}
