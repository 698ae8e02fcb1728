"""Glue 5.0 (Spark 3.5, Python 3.11) job: group each consenting owner's indexed faces into people.

Thin by design: the driver lists the owners who opted in to face processing and spreads them over partitions;
each partition runs photo_organizer.services.clustering.ClusteringService, wired by photo_organizer.bootstrap.glue.
Per owner, the service
1. reads the owner's faces (DynamoDbPeopleStore.faces) and their stored searches (bootstrap.glue.clustering_state);
2. calls Rekognition SearchFaces for the faces not searched yet (every face with --full), held to
   `search_tps / workers` by a token bucket (SearchFaces has its own quota), and stores each face's matches on its
   face item as soon as it has them, so a killed run resumes where it stopped and never pays twice;
3. unless nothing changed since the last clustering (same faces, matches, corrections and settings), clusters:
   `attach_new_faces` when few faces are new (nobody is reshuffled), else `cluster_people`, both obeying the
   user's corrections and keeping person ids stable; then `replace_people` (only changed people are written).
Consent is read again before the owner's faces are searched and before the people are written: an owner who
withdraws during the run gets nothing written back. The driver adds up the partitions' summaries and writes
s3://<summary-bucket>/<summary-prefix>/<run-id>/summary.json and CloudWatch metrics (dimension Job=cluster_faces).

A face that fails to be searched (throttling beyond the retries) fails its owner for this run only: the owner's
searches so far are kept, its people are left as they were, and the next run goes on from there.

Run (Glue passes the same arguments):
    spark-submit glue_jobs/cluster_faces/job.py --table T --summary-bucket S [--workers 4] [--search-tps 5] \\
        [--full true] [--owners a,b] [--region eu-west-1]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from photo_organizer.analysis.job_args import flag
from photo_organizer.analysis.throttling import split_tps
from photo_organizer.bootstrap import glue as wiring
from photo_organizer.services.people import MIN_PERSON_FACES

try:  # the job's import point for its transforms (glue_jobs/cluster_faces is shipped with the script)
    from cluster_faces.transforms import DEFAULT_SEARCH_TPS, ClusterSummary
except ImportError:  # Glue runs this file as a script: its folder, not its parent, is on sys.path
    from transforms import DEFAULT_SEARCH_TPS, ClusterSummary

log = logging.getLogger("cluster_faces")

METRICS_NAMESPACE = "PhotoOrganizer/Analysis"


@dataclass(frozen=True)
class JobConfig:
    """Plain values, so Spark can ship it to the executors."""

    table: str
    summary_bucket: str
    summary_prefix: str = "cluster-runs"
    run_id: str = ""
    region: str | None = None
    collection_prefix: str = ""  # the template's --collection-prefix; the adapter refuses an empty one
    account_tps: float = 50.0
    search_tps: float | None = None  # account SearchFaces TPS; default min(account_tps, DEFAULT_SEARCH_TPS)
    workers: int = 2
    threshold: float = 80.0  # FaceMatchThreshold (percent); clustering uses the same bar on the 0..1 scale
    max_faces: int = 100  # matches per SearchFaces; clustering caps pairs the same way (neighbour_cap)
    min_cluster_size: int = MIN_PERSON_FACES  # the local backend's rule: a face seen once is not yet somebody
    incremental_max_ratio: float = 0.2  # new faces / all faces at or below which new faces are only attached
    full_every_days: float = 7.0
    full: bool = False
    owners: tuple[str, ...] = ()  # only these (on-demand runs); default every consenting owner
    max_attempts: int = 6
    backoff_base_s: float = 0.2
    metrics_namespace: str = METRICS_NAMESPACE
    clock: Any = field(default=None, compare=False)  # tests: () -> datetime

    @property
    def search_tps_per_worker(self) -> float:
        account = self.search_tps if self.search_tps is not None else min(self.account_tps, DEFAULT_SEARCH_TPS)
        return split_tps(account, self.workers)

    def settings(self) -> dict[str, Any]:
        """What a clustering's result depends on besides its inputs (part of the inputs' digest)."""
        return {"threshold": self.threshold, "max_faces": self.max_faces, "min_cluster_size": self.min_cluster_size}

    def now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(timezone.utc)


def parse_args(argv: Sequence[str]) -> JobConfig:
    """`--name value` pairs; Glue's own options are ignored; `-` and `_` spellings both accepted."""
    parser = argparse.ArgumentParser(prog="cluster_faces", allow_abbrev=False)

    def option(name: str, **kwargs: Any) -> None:
        parser.add_argument(f"--{name}", f"--{name.replace('-', '_')}", **kwargs)

    option("table", required=True)
    option("summary-bucket", required=True)
    option("summary-prefix", default="cluster-runs")
    option("run-id", default=None, help="default: the start time, run-YYYYmmddTHHMMSSZ")
    option("region", default=None)
    # No default: the API deletes <this>-<owner> when a user withdraws consent, with the prefix the stack gives both.
    option("collection-prefix", required=True)
    option("account-tps", type=float, default=50.0, help="the account's Rekognition TPS (caps the default below)")
    option("search-tps", type=float, default=None, help=f"account SearchFaces TPS (default {DEFAULT_SEARCH_TPS:g})")
    option("workers", type=int, default=2, help="partitions running at once; each gets search_tps / workers")
    option("threshold", type=float, default=80.0)
    option("max-faces", type=int, default=100)
    option("min-cluster-size", type=int, default=MIN_PERSON_FACES)
    option("incremental-max-ratio", type=float, default=0.2)
    option("full-every-days", type=float, default=7.0)
    option("full", type=flag, default=False, help="search every face again and cluster from scratch")
    option("owners", default="", help="comma-separated owners (default: every owner who consented)")
    option("max-attempts", type=int, default=6)
    option("backoff-base-s", type=float, default=0.2)
    option("metrics-namespace", default=METRICS_NAMESPACE)
    args, _glue_own = parser.parse_known_args(list(argv))
    return JobConfig(
        table=args.table,
        summary_bucket=args.summary_bucket,
        summary_prefix=args.summary_prefix.strip("/"),
        run_id=args.run_id or datetime.now(timezone.utc).strftime("run-%Y%m%dT%H%M%SZ"),
        region=args.region,
        collection_prefix=args.collection_prefix,
        account_tps=args.account_tps,
        search_tps=args.search_tps,
        workers=max(1, args.workers),
        threshold=args.threshold,
        max_faces=args.max_faces,
        min_cluster_size=args.min_cluster_size,
        incremental_max_ratio=args.incremental_max_ratio,
        full_every_days=args.full_every_days,
        full=args.full,
        owners=tuple(sorted({o.strip() for o in args.owners.split(",") if o.strip()})),
        max_attempts=args.max_attempts,
        backoff_base_s=args.backoff_base_s,
        metrics_namespace=args.metrics_namespace,
    )


# ---- one partition ----------------------------------------------------------------------------------------------


def cluster_partition(config: JobConfig, owners: Iterable[str]) -> Iterator[str]:
    """Clusters one partition's owners; yields its summary as JSON. Runs in a Spark executor's Python worker."""
    owners = list(owners)
    if not owners:
        return
    summary = wiring.clustering_job(config).run(owners, run_id=config.run_id)
    yield json.dumps(summary.to_document())


# ---- the driver ----------------------------------------------------------------------------------------------------


def summary_key(config: JobConfig) -> str:
    return f"{config.summary_prefix}/{config.run_id}/summary.json" if config.summary_prefix else f"{config.run_id}/summary.json"


def publish(summary: ClusterSummary, config: JobConfig) -> dict[str, Any]:
    document = {**summary.to_document(), "full": config.full, "search_tps_per_worker": config.search_tps_per_worker}
    body = json.dumps(document, sort_keys=True, indent=2).encode()
    wiring.blob_store(config, config.summary_bucket).put(summary_key(config), body, content_type="application/json")
    wiring.metrics(config).put(config.metrics_namespace, summary.metric_data(timestamp=datetime.now(timezone.utc)))
    return document


def run(config: JobConfig, spark: Any) -> dict[str, Any]:
    """Lists the consenting owners, clusters them, summarises. Returns the summary document written to S3."""
    consenting = wiring.clustering_state(config).consenting_owners()
    owners = [o for o in consenting if o in set(config.owners)] if config.owners else consenting
    summary = ClusterSummary(config.run_id)
    if owners:
        results = (
            spark.sparkContext.parallelize(owners, min(config.workers, len(owners)))
            .mapPartitions(lambda part: cluster_partition(config, part))
            .collect()
        )
        for result in map(json.loads, results):
            summary = summary.merge(ClusterSummary.from_document(result))
    document = publish(summary, config)
    log.info("clustering run %s: %s", config.run_id, json.dumps(document, sort_keys=True))
    return document


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    logging.basicConfig(level=logging.INFO)
    config = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("cluster_faces").getOrCreate()
    return run(config, spark)


if __name__ == "__main__":
    main()
