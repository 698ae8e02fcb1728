"""The local stack's one secret: HMAC-SHA256 signatures for blob URLs and upload policies."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from photo_organizer.errors import ConfigurationError

SECRET_BYTES = 32


class LocalSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigurationError("the local signing secret must be at least 16 bytes")
        self._secret = bytes(secret)

    @classmethod
    def from_file(cls, path: Path) -> LocalSigner:
        """Loads the secret, making a random one (mode 0600) on first run."""
        path = Path(path)
        try:
            return cls(path.read_bytes())
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(SECRET_BYTES)
        try:
            # O_EXCL: when two processes start at once, the second one reads the first one's secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(path.read_bytes())
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
        return cls(secret)

    def sign(self, message: bytes) -> str:
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, message: bytes, signature: str) -> bool:
        if not isinstance(signature, str):
            return False
        return hmac.compare_digest(self.sign(message).encode(), signature.encode("utf-8", "replace"))

    def sigv4(self, date: str, region: str, service: str) -> LocalSigner:
        """A signer with the SigV4 key derived for one credential scope (date 'YYYYMMDD', region, service),
        treating the local secret as the secret access key."""
        key = hmac.new(b"AWS4" + self._secret, date.encode(), hashlib.sha256).digest()
        for part in (region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return LocalSigner(key)
