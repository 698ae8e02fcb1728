"""The one place that wires a backend from settings. Handlers ask for `services()`; nothing else builds adapters."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from photo_organizer.analysis.store import AnalysisStore
from photo_organizer.people.store import PeopleStore, UserSettings
from photo_organizer.ports import BlobStore, MetadataStore
from photo_organizer.services.ingest import IngestService
from photo_organizer.services.people import PeopleService
from photo_organizer.services.photos import PhotoService
from photo_organizer.services.uploads import UploadService
from photo_organizer.settings import Backend, Settings


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

    def __post_init__(self) -> None:
        self.uploads = UploadService(self.originals, self.metadata, self.settings)
        self.ingest = IngestService(self.originals, self.derivatives, self.metadata, self.settings)
        self.people = PeopleService(self.people_store, self.user_settings, self.analysis, self.forget_collection)
        self.photos = PhotoService(
            self.originals, self.derivatives, self.metadata, self.settings, self.analysis, self.people
        )


def build_services(settings: Settings) -> Services:
    if settings.backend is Backend.AWS:
        from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore
        from photo_organizer.adapters.aws.s3_blobs import S3BlobStore

        from photo_organizer.adapters.aws.dynamodb_analysis import DynamoDbAnalysisStore
        from photo_organizer.adapters.aws.dynamodb_people import DynamoDbPeopleStore

        region = settings.region or None
        people = DynamoDbPeopleStore(settings.table_name, default_consent=False)
        return Services(
            settings=settings,
            originals=S3BlobStore(settings.originals_bucket, region=region),
            derivatives=S3BlobStore(settings.derivatives_bucket, region=region),
            metadata=DynamoDbMetadataStore(settings.table_name),
            analysis=DynamoDbAnalysisStore(settings.table_name),
            people_store=people,
            user_settings=people,
            forget_collection=_rekognition_collection_deleter(settings),
        )

    from photo_organizer.adapters.local.disk_blobs import DiskBlobStore
    from photo_organizer.adapters.local.signing import LocalSigner
    from photo_organizer.adapters.local.sqlite_analysis import SqliteAnalysisStore
    from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore
    from photo_organizer.adapters.local.sqlite_people import SqlitePeopleStore

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    signer = LocalSigner.from_file(data_dir / "keys" / "blob-signing.key")
    base_url = settings.public_base_url
    database = data_dir / "photo-organizer.sqlite3"
    # Local is a family's own machine: face grouping is on unless a user turns it off (the cloud default is off).
    people = SqlitePeopleStore(database, default_consent=True)
    return Services(
        settings=settings,
        originals=DiskBlobStore(data_dir / "blobs" / "originals", area="originals", base_url=base_url, signer=signer),
        derivatives=DiskBlobStore(
            data_dir / "blobs" / "derivatives", area="derivatives", base_url=base_url, signer=signer
        ),
        metadata=SqliteMetadataStore(database),
        analysis=SqliteAnalysisStore(database),
        people_store=people,
        user_settings=people,
    )


def _rekognition_collection_deleter(settings: Settings) -> Callable[[str], None]:
    def delete_collection(owner: str) -> None:
        from photo_organizer.adapters.aws.rekognition import RekognitionAnalyzer

        RekognitionAnalyzer(previews_bucket=settings.derivatives_bucket, region=settings.region or None).delete_collection(owner)

    return delete_collection


_lock = threading.Lock()
_services: Services | None = None


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
