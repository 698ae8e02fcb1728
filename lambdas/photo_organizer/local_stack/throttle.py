"""Failed sign-in throttling for the local gateway's `/auth/token`, per user name and per client address.

After `threshold` failures within `window` seconds, the name (or client) is locked for a back-off that doubles with
each further failure (first lock `base_lock` seconds, at most `max_lock`). A locked attempt is answered 429 with
Retry-After *before* any password hashing, so guessing costs the server nothing. A success clears the user's and the
client's record. Clients get a higher threshold than names: every local client is on loopback.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)  # times of recent failures
    locks: int = 0  # how many times this key has been locked: the back-off's exponent
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        *,
        threshold: int = 5,
        client_threshold: int = 20,
        window: float = 60.0,
        base_lock: float = 30.0,
        max_lock: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._thresholds = {"user": threshold, "client": client_threshold}
        self._window, self._base, self._max, self._clock, self._max_keys = window, base_lock, max_lock, clock, max_keys
        self._records: dict[tuple[str, str], _Record] = {}
        self._lock = threading.Lock()

    def _keys(self, username: str, client: str) -> list[tuple[str, str]]:
        return [("user", username.strip().casefold()[:256]), ("client", client)]

    def retry_after(self, username: str, client: str) -> int:
        """Whole seconds to wait before another attempt is allowed; 0 when it is allowed now."""
        now = self._clock()
        with self._lock:
            waits = [r.locked_until - now for k in self._keys(username, client) if (r := self._records.get(k))]
        wait = max(waits, default=0.0)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, client: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._records) >= self._max_keys:
                self._forget_idle(now)
            for key in self._keys(username, client):
                record = self._records.setdefault(key, _Record())
                record.failures = [t for t in record.failures if now - t < self._window] + [now]
                if len(record.failures) >= self._thresholds[key[0]]:
                    record.locked_until = now + min(self._base * 2**record.locks, self._max)
                    record.locks += 1
                    record.failures.clear()

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            for key in self._keys(username, client):
                self._records.pop(key, None)

    def _forget_idle(self, now: float) -> None:
        idle = [
            k for k, r in self._records.items()
            if r.locked_until <= now and all(now - t >= self._window for t in r.failures)
        ]
        for key in idle:
            del self._records[key]
