"""The sign-in side of an account: what account erasure removes after the library (the cloud's Cognito user)."""

from __future__ import annotations

from typing import Protocol


class Logins(Protocol):
    def delete(self, username: str) -> bool:
        """Deletes the sign-in of `username` (the verified token's own username, never a client's choice).
        False when there was none (already deleted): safe to repeat."""
        ...
