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
