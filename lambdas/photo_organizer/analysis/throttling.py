"""Client-side rate limiting and retries for the paid APIs."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from photo_organizer.errors import ConfigurationError

T = TypeVar("T")


def split_tps(account_tps: float, workers: int) -> float:
    """Each worker's share of an account-wide quota (the quota counts every caller in the account and region)."""
    if account_tps <= 0 or workers < 1:
        raise ConfigurationError("account_tps must be positive and workers >= 1")
    return account_tps / workers


class TokenBucket:
    """Thread-safe token bucket. Each caller reserves its slot under the lock and then sleeps outside it, so
    waiting threads never wake together and spend the same token twice."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ConfigurationError("rate_per_s must be positive and burst >= 1")
        self.rate_per_s, self.burst = float(rate_per_s), float(burst)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self, tokens: float = 1.0) -> float:
        """Takes the tokens now (possibly into debt) and returns how long the caller must wait before using them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
            self._last = now
            self._tokens -= tokens
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s

    def acquire(self, tokens: float = 1.0) -> float:
        wait = self.reserve(tokens)
        if wait > 0:
            self._sleep(wait)
        return wait


@dataclass
class BackoffStats:
    """Accumulates over many calls (one per worker, merged into the run summary)."""

    calls: int = 0
    attempts: int = 0
    throttles: int = 0  # failures the retryable predicate accepted (throttling, time-outs)
    gave_up: int = 0
    slept_s: float = 0.0


@dataclass(frozen=True)
class BackoffResult(Generic[T]):
    value: T
    attempts: int
    throttles: int
    slept_s: float


def call_with_backoff(
    fn: Callable[[], T],
    *,
    retryable: Callable[[Exception], bool],
    max_attempts: int = 8,
    base: float = 0.2,
    cap: float = 10.0,
    rng: Callable[[], float] = random.random,
    sleep: Callable[[float], None] = time.sleep,
    stats: BackoffStats | None = None,
) -> BackoffResult[T]:
    """Calls fn until it succeeds, a non-retryable error occurs, or max_attempts is reached (the last error is
    raised). Waits use "full jitter": uniform in [0, min(cap, base * 2**attempt)), which spreads workers that were
    throttled together instead of retrying them in lockstep."""
    if max_attempts < 1:
        raise ConfigurationError("max_attempts must be >= 1")
    stats = stats if stats is not None else BackoffStats()
    stats.calls += 1
    throttles, slept = 0, 0.0
    for attempt in range(max_attempts):
        stats.attempts += 1
        try:
            value = fn()
        except Exception as exc:
            if not retryable(exc):
                raise
            throttles += 1
            stats.throttles += 1
            if attempt + 1 >= max_attempts:
                stats.gave_up += 1
                raise
            delay = rng() * min(cap, base * 2**attempt)
            slept += delay
            stats.slept_s += delay
            sleep(delay)
        else:
            return BackoffResult(value=value, attempts=attempt + 1, throttles=throttles, slept_s=slept)
    raise AssertionError("unreachable")  # pragma: no cover
