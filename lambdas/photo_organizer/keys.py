"""Blob keys are built on the server only: a client's filename never becomes part of a key."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from photo_organizer.errors import PermanentError

_ID = r"[A-Za-z0-9_-]{1,128}"
_ORIGINAL_KEY = re.compile(rf"^originals/(?P<owner>{_ID})/(?P<photo_id>{_ID})$")
_OWNER = re.compile(rf"^{_ID}$")


class UnexpectedKeyError(PermanentError):
    """An object key that this application did not build."""


def new_photo_id() -> str:
    """A time-ordered, unguessable id: UUIDv7-like prefix for locality, random tail for secrecy."""
    return uuid.UUID(int=(_unix_ms() << 80) | secrets.randbits(80)).hex


def _unix_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def check_owner(owner: str) -> str:
    """Owners come from token `sub` claims; anything that could escape a key prefix is refused."""
    if not _OWNER.fullmatch(owner):
        raise PermanentError(f"owner id {owner!r} cannot be used in a key")
    return owner


# Which store holds each kind of a photo's blobs (PhotoKeys has one property per kind).
BLOB_KINDS = (("original", "originals"), ("quarantine", "originals"), ("preview", "derivatives"),
              ("thumbnail", "derivatives"))


@dataclass(frozen=True)
class PhotoKeys:
    owner: str
    photo_id: str

    @property
    def original(self) -> str:
        return f"originals/{self.owner}/{self.photo_id}"

    @property
    def quarantine(self) -> str:
        return f"quarantine/{self.owner}/{self.photo_id}"

    @property
    def preview(self) -> str:
        return f"previews/{self.owner}/{self.photo_id}.jpg"

    @property
    def thumbnail(self) -> str:
        return f"thumbnails/{self.owner}/{self.photo_id}.webp"

    @classmethod
    def for_photo(cls, owner: str, photo_id: str) -> PhotoKeys:
        check_owner(owner)
        if not re.fullmatch(_ID, photo_id):
            raise PermanentError(f"photo id {photo_id!r} cannot be used in a key")
        return cls(owner, photo_id)

    @classmethod
    def blob_layout(cls, owner: str) -> tuple[tuple[str, str, str, str], ...]:
        """(kind, store, prefix, suffix) of every blob a photo of owner may have, read from the properties above
        (so there is one layout): a key of that kind is prefix + photo_id + suffix."""
        probe = cls(check_owner(owner), "\x00")
        layout = []
        for kind, store in BLOB_KINDS:
            prefix, suffix = getattr(probe, kind).split("\x00")
            layout.append((kind, store, prefix, suffix))
        return tuple(layout)

    @classmethod
    def from_original_key(cls, key: str) -> PhotoKeys:
        match = _ORIGINAL_KEY.fullmatch(key)
        if match is None:
            raise UnexpectedKeyError(f"{key!r} is not an originals key")
        return cls(match["owner"], match["photo_id"])
