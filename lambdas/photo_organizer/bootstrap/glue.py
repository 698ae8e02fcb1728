"""The Glue jobs' wiring: the same composition root as the Lambdas, one function per need of a job.

A job parses its arguments into plain values (its JobConfig), ships them to the Spark executors, and asks here for
what a partition needs: boto3 clients do not pickle, so every adapter below is built inside the executor that
uses it, and each client on its first call. The analysis job gets the same places resolver, local-time resolver
and captioner as the local runner (photo_organizer.bootstrap.analysis_enrichment), and the same image embedder
(adapters.image_embedding, the label model's penultimate layer) with the table's FeatureStore.

Models are loaded once per Python worker and lazily (Spark reuses its Python workers between tasks): MiniLM by
adapters.minilm, the label model's onnxruntime session by the embedder cached here (`_image_embedder`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from photo_organizer.analysis.models import ApiCall
from photo_organizer.analysis.planning import AnalysisSettings
from photo_organizer.services.analysis import AnalysisService
from photo_organizer.analysis.throttling import TokenBucket, split_tps
from photo_organizer.bootstrap import analysis_enrichment, photo_people_writer
from photo_organizer.errors import LabelModelUnavailableError
from photo_organizer.services.clustering import ClusteringConfig, ClusteringService
from photo_organizer.services.people import PeopleService

if TYPE_CHECKING:  # boto3-backed: imported where the adapters are built
    from photo_organizer.adapters.aws.cloudwatch_metrics import CloudWatchMetrics
    from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
    from photo_organizer.adapters.aws.dynamodb_clustering import DynamoDbClusteringState
    from photo_organizer.adapters.aws.dynamodb_face_matchers import DynamoDbFaceMatcherStore
    from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
    from photo_organizer.adapters.aws.face_safe import FaceSafeAnalyzer
    from photo_organizer.adapters.image_embedding import OnnxImageEmbedder
    from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer
    from photo_organizer.adapters.minilm import ModelLocation
    from photo_organizer.ports.storage import BlobStore


class JobConfig(Protocol):
    """What every job's config holds (the jobs' own JobConfig dataclasses)."""

    table: str
    region: str | None
    collection_prefix: str
    max_attempts: int
    backoff_base_s: float
    workers: int


class AnalysisJobConfig(JobConfig, Protocol):
    previews_bucket: str
    analysis_version: int
    embeddings: bool
    image_embeddings: bool
    caption_endpoint: str | None

    def account_tps_of(self, api: ApiCall) -> float: ...


class ClusteringJobConfig(JobConfig, ClusteringConfig, Protocol):
    search_tps_per_worker: float


def _dynamodb(config: JobConfig) -> Callable[[], Any]:
    from photo_organizer.adapters.aws.clients import client_factory
    from photo_organizer.adapters.aws.dynamodb_metadata import DYNAMODB_CLIENT_CONFIG

    return client_factory("dynamodb", region=config.region, config=DYNAMODB_CLIENT_CONFIG)


def analysis_store(config: JobConfig) -> DynamoDbAnalysisStore:
    from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore

    return DynamoDbAnalysisStore(config.table, client_factory=_dynamodb(config))


def people_store(config: JobConfig) -> DynamoDbPeopleStore:
    from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore

    # Biometric processing is opt-in: an owner who never chose has not consented.
    return DynamoDbPeopleStore(config.table, client_factory=_dynamodb(config), default_consent=False)


def blob_store(config: JobConfig, bucket: str) -> BlobStore:
    from photo_organizer.adapters.aws.clients import client_factory
    from photo_organizer.adapters.aws.s3_blobs import S3_CLIENT_CONFIG, S3BlobStore

    return S3BlobStore(bucket, region=config.region,
                       client_factory=client_factory("s3", region=config.region, config=S3_CLIENT_CONFIG))


def metrics(config: JobConfig) -> CloudWatchMetrics:
    from photo_organizer.adapters.aws.cloudwatch_metrics import CloudWatchMetrics

    return CloudWatchMetrics(region=config.region)


def rekognition(
    config: JobConfig, *, previews_bucket: str | None, throttle: Callable[[ApiCall], None] | None = None
) -> RekognitionAnalyzer:
    from photo_organizer.adapters.aws.clients import client_factory
    from photo_organizer.adapters.aws.rekognition import REKOGNITION_CLIENT_CONFIG, RekognitionAnalyzer

    return RekognitionAnalyzer(
        previews_bucket=previews_bucket,
        collection_prefix=config.collection_prefix,
        region=config.region,
        client_factory=client_factory("rekognition", region=config.region, config=REKOGNITION_CLIENT_CONFIG),
        throttle=throttle,
        max_attempts=config.max_attempts,
        backoff_base_s=config.backoff_base_s,
    )


def is_refusal(reason: str) -> bool:
    """Whether a recorded analysis failure is Rekognition refusing the image: the same preview gets the same
    answer, so the job does not retry it at this analysis version."""
    from photo_organizer.adapters.aws.rekognition import REFUSED_CODES

    return reason.split(":", 1)[0].strip() in REFUSED_CODES


def embedding_model() -> ModelLocation:
    """Where the MiniLM model is (the packed one on Glue): EmbeddingModelUnavailableError when none was shipped."""
    from photo_organizer.adapters.minilm import locate_model

    return locate_model()


def _embedder(config: AnalysisJobConfig):
    """The embed hook, or None. Loaded once per Python worker (~0.2 s; Spark reuses workers between tasks)."""
    if not config.embeddings:
        return None
    from photo_organizer.adapters.minilm import text_embedder

    # No hashing fallback: its vectors would be stored as if they were MiniLM's and mislead every later query.
    return text_embedder().embed


# The exported label model as shipped to Glue: the data-only package of its --extra-py-files zip
# (stacks/analysis.py LABEL_MODEL_PACKAGE); elsewhere $PO_LABEL_MODEL or the local export.
LABEL_MODEL_PACKAGE = "photo_organizer_label_model"
LABEL_MODEL_FILE = "efficientnet_lite0.onnx"
LABEL_MODEL_ENV = "PO_LABEL_MODEL"
_EXPORT_HINT = "run `make label-model` (scripts/export_label_model.py); the analysis stack ships the result"
_extracting = threading.Lock()


def label_model() -> Path:
    """The exported label model as a file onnxruntime can open, first found wins: $PO_LABEL_MODEL (an error when
    set but missing: never a silent fallback); the shipped package (inside a zip on Glue: copied once, under its
    content hash, into the temporary directory, which the executor's Python workers then share); the local export
    (adapters.image_embedding.DEFAULT_MODEL_PATH). LabelModelUnavailableError when there is none."""
    configured = os.environ.get(LABEL_MODEL_ENV)
    if configured:
        if not Path(configured).is_file():
            raise LabelModelUnavailableError(f"${LABEL_MODEL_ENV} names {configured}, which is not a file")
        return Path(configured)
    shipped = _shipped_label_model()
    if shipped is not None:
        return shipped
    from photo_organizer.adapters.image_embedding import DEFAULT_MODEL_PATH

    if DEFAULT_MODEL_PATH.is_file():
        return DEFAULT_MODEL_PATH
    raise LabelModelUnavailableError(f"no label model: neither the {LABEL_MODEL_PACKAGE} package nor "
                                     f"{DEFAULT_MODEL_PATH}; {_EXPORT_HINT}")


@functools.cache
def _shipped_label_model() -> Path | None:
    """Once per Python worker: the zip member is read (and hashed) on the first partition only."""
    try:
        resource = importlib.resources.files(LABEL_MODEL_PACKAGE).joinpath(LABEL_MODEL_FILE)
    except ModuleNotFoundError:
        return None
    if not resource.is_file():
        return None
    if isinstance(resource, Path):  # a folder on sys.path (a Lambda-style bundle): read in place
        return resource
    with _extracting:
        data = resource.read_bytes()
        target = Path(tempfile.gettempdir()) / f"{LABEL_MODEL_PACKAGE}-{hashlib.sha256(data).hexdigest()[:16]}.onnx"
        if not target.is_file() or target.stat().st_size != len(data):
            # Another worker may be writing the same file: each writes its own and renames it into place.
            partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
            partial.write_bytes(data)
            partial.replace(target)
    return target


_embedders: dict[Path, OnnxImageEmbedder] = {}


def _image_embedder(config: AnalysisJobConfig) -> OnnxImageEmbedder | None:
    """The embed_image hook, or None with --image-embeddings false. One per Python worker: the onnxruntime session
    (~19 MB, one intra-op thread, as Glue runs one task per vCPU) loads on the first photo and serves every later
    partition this worker runs."""
    if not config.image_embeddings:
        return None
    from photo_organizer.adapters.image_embedding import OnnxImageEmbedder

    path = label_model()
    with _extracting:
        embedder = _embedders.get(path)
        if embedder is None:
            embedder = _embedders[path] = OnnxImageEmbedder(path, threads=1)
    return embedder


def check_image_embedding_model() -> tuple[Path, list[str]]:
    """The driver's check before any paid call: the label model is there, loads, and has the `embedding` output
    (an export older than EXPORT_FORMAT 2 has not). Returns its path and outputs; LabelModelUnavailableError else."""
    from photo_organizer.adapters.image_embedding import EMBEDDING, LabelModelSession

    path = label_model()
    outputs = LabelModelSession(path).output_names()
    if EMBEDDING not in outputs:
        raise LabelModelUnavailableError(f"the label model {path.name} has no `{EMBEDDING}` output (outputs: "
                                         f"{outputs}): re-export it; {_EXPORT_HINT}")
    return path, outputs


def feature_store(config: JobConfig):
    from photo_organizer.adapters.aws.dynamodb_features import DynamoDbFeatureStore

    return DynamoDbFeatureStore(config.table, client_factory=_dynamodb(config))


@dataclass
class AnalysisJob:
    """One partition's analysis: the service, and the Rekognition side whose counters go in the run summary."""

    service: AnalysisService
    rekognition: RekognitionAnalyzer
    face_safe: FaceSafeAnalyzer


def analysis_job(config: AnalysisJobConfig) -> AnalysisJob:
    """The per-partition AnalysisService of the analyze_photos job, on DynamoDB, S3 and Rekognition."""
    from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore
    from photo_organizer.adapters.aws.face_safe import (
        FaceSafeAnalyzer,
        consent_checked_face_recorder,
        stored_faces_forgetter,
    )

    buckets = {api: TokenBucket(split_tps(config.account_tps_of(api), config.workers), burst=1.0) for api in ApiCall}
    # Rekognition reads the preview from S3: never the original.
    faces_api = rekognition(config, previews_bucket=config.previews_bucket, throttle=lambda api: buckets[api].acquire())
    face_safe = FaceSafeAnalyzer(faces_api, stored_faces_forgetter(config.table, _dynamodb(config)))
    store = analysis_store(config)
    people = people_store(config)
    enrichment = analysis_enrichment(caption_endpoint=config.caption_endpoint, region=config.region)
    service = AnalysisService(
        previews=blob_store(config, config.previews_bucket),
        photos=DynamoDbMetadataStore(config.table, client_factory=_dynamodb(config)),
        store=store,
        analyzer=face_safe,
        settings=AnalysisSettings(analysis_version=config.analysis_version, workers=config.workers),
        face_consent=people.biometric_consent,  # read per photo: a withdrawal stops indexing at the next photo
        resolve_place=enrichment.resolve_place,
        resolve_local_time=enrichment.resolve_local_time,
        captioner=enrichment.captioner,
        record_faces=consent_checked_face_recorder(
            people.biometric_consent,
            PeopleService(people=people, user_settings=people, analysis=store).record_faces,
            faces_api,
        ),
        # A new analysis version keeps the faces it finds here instead of indexing the photo again under new ids.
        indexed_face_ids=lambda owner, photo_id: {f.face_id for f in people.faces_of_photo(owner, photo_id)},
        embed=_embedder(config),
        embed_image=_image_embedder(config),
        features=feature_store(config) if config.image_embeddings else None,
    )
    return AnalysisJob(service=service, rekognition=faces_api, face_safe=face_safe)


def clustering_state(config: JobConfig) -> DynamoDbClusteringState:
    from photo_organizer.adapters.aws.dynamodb_clustering import DynamoDbClusteringState

    return DynamoDbClusteringState(config.table, client_factory=_dynamodb(config))


def clustering_job(config: ClusteringJobConfig) -> ClusteringService:
    """The per-partition ClusteringService of the cluster_faces job: the people store, the searches kept between
    runs, SearchFaces (its own quota, split over the workers), and the photos' `people` for the stream indexer."""
    from photo_organizer.adapters.aws.dynamodb_photo_search import DynamoDbPhotoPeople

    people = people_store(config)
    return ClusteringService(
        config=config,
        people=people,
        state=clustering_state(config),
        rekognition=rekognition(config, previews_bucket=None),  # no image is read: SearchFaces works on the collection
        bucket=TokenBucket(config.search_tps_per_worker, burst=1.0),
        publish_people=photo_people_writer(people, DynamoDbPhotoPeople(config.table, client_factory=_dynamodb(config))),
        matchers=face_matchers(config),  # the owner's promoted matcher replaces the fixed threshold when present
    )


def face_matchers(config: JobConfig) -> DynamoDbFaceMatcherStore:
    """The owners' promoted face matchers (`SETTINGS#face_matcher`): read by the clustering job, written by the
    retraining's re-application."""
    from photo_organizer.adapters.aws.dynamodb_face_matchers import DynamoDbFaceMatcherStore

    return DynamoDbFaceMatcherStore(config.table, client_factory=_dynamodb(config))
