"""boto3 clients made on first use and cached: a Lambda cold start pays for them once, tests can inject."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyClient:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._client: Any = None

    def __call__(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
        return self._client


def client_factory(service: str, *, region: str | None = None, config: Any = None) -> Callable[[], Any]:
    """A factory, not a client: boto3 clients do not pickle, so a Glue job ships plain settings to its Spark
    executors and each builds its own clients there, on first use."""

    def make() -> Any:
        import boto3

        return boto3.client(service, region_name=region, config=config)

    return make
