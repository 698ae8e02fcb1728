"""Settings read once from the environment (Lambda env vars, or the local stack's own defaults)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from photo_organizer.errors import ConfigurationError

MiB = 1024 * 1024


class Backend(StrEnum):
    LOCAL = "local"
    AWS = "aws"


class RejectedAction(StrEnum):
    DELETE = "delete"
    QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Settings:
    backend: Backend = Backend.LOCAL
    max_upload_bytes: int = 50 * MiB
    max_pixels: int = 100_000_000
    upload_url_ttl: timedelta = timedelta(minutes=10)
    download_url_ttl: timedelta = timedelta(minutes=15)
    pending_upload_ttl: timedelta = timedelta(days=1)
    rejected_action: RejectedAction = RejectedAction.DELETE
    # aws backend
    originals_bucket: str = ""
    derivatives_bucket: str = ""
    table_name: str = ""
    region: str = ""
    cursor_secret: str = ""  # signs search cursors (aws); the local backend derives one from its signing key
    cursor_secret_arn: str = ""  # aws: the Secrets Manager secret holding it (cursor_secret overrides)
    # A SageMaker text-generation endpoint that rewords each photo's caption (analysis.captioner); off when empty
    caption_endpoint: str = ""
    # The analysis version photos are analysed at (aws: the Glue job's --analysis-version, from the same stack
    # setting): GET /analysis/progress counts photos analysed at an older one as waiting.
    analysis_version: int = 1
    # Per-user Rekognition collections are <this>-<owner>: the deploy sets it (stacks/settings.py, the one source),
    # the same value the Glue jobs index faces under, so withdrawing consent deletes the collection they fill.
    face_collection_prefix: str = ""
    # aws: the Cognito user pool whose user account erasure deletes last (the caller's own sign-in); empty: kept
    user_pool_id: str = ""
    # local backend
    data_dir: Path = field(default_factory=lambda: Path("photo-organizer-data"))
    public_base_url: str = "http://127.0.0.1:8787"
    # How much lower than the server the local stack's ingest worker processes run (an os.nice increment, 0-19):
    # they are bulk work, and the server answers people meanwhile (local_stack/ingest_workers.py).
    background_niceness: int = 5

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def get(name: str, default: str = "") -> str:
            return env.get(f"PO_{name}", default).strip()

        try:
            settings = cls(
                backend=Backend(get("BACKEND", "local").lower()),
                max_upload_bytes=int(get("MAX_UPLOAD_BYTES", str(50 * MiB))),
                max_pixels=int(get("MAX_PIXELS", "100000000")),
                upload_url_ttl=timedelta(seconds=int(get("UPLOAD_URL_TTL_SECONDS", "600"))),
                download_url_ttl=timedelta(seconds=int(get("DOWNLOAD_URL_TTL_SECONDS", "900"))),
                pending_upload_ttl=timedelta(seconds=int(get("PENDING_UPLOAD_TTL_SECONDS", "86400"))),
                rejected_action=RejectedAction(get("REJECTED_ACTION", "delete").lower()),
                originals_bucket=get("ORIGINALS_BUCKET"),
                derivatives_bucket=get("DERIVATIVES_BUCKET"),
                table_name=get("TABLE_NAME"),
                cursor_secret=get("CURSOR_SECRET"),
                cursor_secret_arn=get("CURSOR_SECRET_ARN"),
                caption_endpoint=get("CAPTION_ENDPOINT"),
                analysis_version=int(get("ANALYSIS_VERSION", "1")),
                face_collection_prefix=get("FACE_COLLECTION_PREFIX"),
                user_pool_id=get("USER_POOL_ID"),
                region=get("REGION") or env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", ""),
                data_dir=Path(get("DATA_DIR", "photo-organizer-data")),
                public_base_url=get("PUBLIC_BASE_URL", "http://127.0.0.1:8787").rstrip("/"),
                background_niceness=int(get("BACKGROUND_NICENESS", "5")),
            )
        except ValueError as exc:
            raise ConfigurationError(f"invalid setting: {exc}") from exc
        settings.check()
        return settings

    def check(self) -> None:
        if self.max_upload_bytes <= 0 or self.max_pixels <= 0:
            raise ConfigurationError("PO_MAX_UPLOAD_BYTES and PO_MAX_PIXELS must be positive")
        if self.analysis_version < 1:
            raise ConfigurationError("PO_ANALYSIS_VERSION must be at least 1")
        if not 0 <= self.background_niceness <= 19:
            raise ConfigurationError("PO_BACKGROUND_NICENESS must be between 0 and 19")
        if self.backend is Backend.AWS:
            missing = [
                name
                for name, value in (
                    ("PO_ORIGINALS_BUCKET", self.originals_bucket),
                    ("PO_DERIVATIVES_BUCKET", self.derivatives_bucket),
                    ("PO_TABLE_NAME", self.table_name),
                    # No default: a guessed prefix would delete a collection nobody fills, and leave the user's faces.
                    ("PO_FACE_COLLECTION_PREFIX", self.face_collection_prefix),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(f"the aws backend needs {', '.join(missing)}")
