"""The one place that wires a backend from settings. Handlers ask for `services()`; nothing else builds adapters."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from photo_organizer.ports import BlobStore, MetadataStore
from photo_organizer.services.ingest import IngestService
from photo_organizer.services.photos import PhotoService
from photo_organizer.services.uploads import UploadService
from photo_organizer.settings import Backend, Settings


@dataclass
class Services:
    settings: Settings
    originals: BlobStore
    derivatives: BlobStore
    metadata: MetadataStore

    def __post_init__(self) -> None:
        self.uploads = UploadService(self.originals, self.metadata, self.settings)
        self.ingest = IngestService(self.originals, self.derivatives, self.metadata, self.settings)
        self.photos = PhotoService(self.originals, self.derivatives, self.metadata, self.settings)


def build_services(settings: Settings) -> Services:
    if settings.backend is Backend.AWS:
        from photo_organizer.adapters.aws.dynamodb_metadata import DynamoDbMetadataStore
        from photo_organizer.adapters.aws.s3_blobs import S3BlobStore

        region = settings.region or None
        return Services(
            settings=settings,
            originals=S3BlobStore(settings.originals_bucket, region=region),
            derivatives=S3BlobStore(settings.derivatives_bucket, region=region),
            metadata=DynamoDbMetadataStore(settings.table_name),
        )

    from photo_organizer.adapters.local.disk_blobs import DiskBlobStore
    from photo_organizer.adapters.local.signing import LocalSigner
    from photo_organizer.adapters.local.sqlite_metadata import SqliteMetadataStore

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    signer = LocalSigner.from_file(data_dir / "keys" / "blob-signing.key")
    base_url = settings.public_base_url
    return Services(
        settings=settings,
        originals=DiskBlobStore(data_dir / "blobs" / "originals", area="originals", base_url=base_url, signer=signer),
        derivatives=DiskBlobStore(
            data_dir / "blobs" / "derivatives", area="derivatives", base_url=base_url, signer=signer
        ),
        metadata=SqliteMetadataStore(data_dir / "photo-organizer.sqlite3"),
    )


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
