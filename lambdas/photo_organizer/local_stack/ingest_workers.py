"""The ingest Lambda handler in worker processes, as Lambda runs concurrent containers of one function.

Ingest is CPU work (decode, resample, encode, hash) and one serving process does it one photo at a time. Here each
worker process installs its own ingest services (bootstrap.local_ingest_worker: the stores, no search index) and
runs the unchanged handler on whole SQS-shaped batches; the local queue feeds it from one consumer thread per
worker. The serving process stays the search index's one writer: a worker reports the photos its invocation made
READY and the caller's `on_ready` (index, wake the analysis worker) runs for them here, after the batch.

The workers run at a lower CPU priority than the server (Settings.background_niceness): ingest is bulk work, and
at the server's priority two workers decoding and resampling camera photos took both cores while a person waited
for a presign (benchmarks/load.py throughput prints presign latency while 12 MP photos ingest, at both
priorities). Lower, they still get every cycle the server leaves idle.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from photo_organizer.models import Photo
from photo_organizer.settings import Settings

_PRELOAD = (
    "aws_xray_sdk.core", "aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.tracing", "aws_lambda_powertools.metrics", "pydantic", "numpy", "PIL.Image", "pillow_heif",
)
_handler: Callable[[dict, object], dict] | None = None
_made_ready: list[Photo] = []


def _init_worker(settings: Settings, environment: dict[str, str]) -> None:
    global _handler
    os.environ.update(environment)  # the forkserver's environment is the one it started with, maybe not ours
    # Before anything else runs here: on Linux a niceness is a thread's, and threads started later inherit it.
    os.nice(settings.background_niceness)
    from photo_organizer import bootstrap

    services = bootstrap.local_ingest_worker(settings)
    services.ingest.on_ready = _made_ready.append
    bootstrap.use_services(services)
    from photo_organizer.handlers import ingest  # binds to the services installed above

    _handler = ingest.handler


def _ready_check() -> bool:
    return _handler is not None


def _invoke(event: dict) -> tuple[dict, list[Photo]]:
    from photo_organizer.local_stack.events import LambdaContextStub

    assert _handler is not None, "worker not initialised"
    _made_ready.clear()
    try:
        return _handler(event, LambdaContextStub()), list(_made_ready)
    finally:
        _made_ready.clear()


class IngestWorkers:
    """A LocalEventQueue handler that runs each batch in one of `workers` processes."""

    def __init__(self, settings: Settings, *, workers: int = 2, on_ready: Callable[[Photo], None] | None = None) -> None:
        self.workers = workers
        self.on_ready = on_ready
        self._settings = settings
        self._pool = self._new_pool()
        self._warming: list = []

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver, not fork: the serving process has threads (gateway, queue, analysis) that may hold SQLite's
        # or Python's locks at the moment of a fork (see analysis_runner). The forkserver imports the handler's
        # heavy dependencies once and workers fork from it: importing them in each worker took 6-10 s on a loaded
        # machine (mostly Powertools' X-Ray SDK), while the first uploads waited. Third-party modules only: the
        # forkserver ignores the parent's sys.path, so it could preload another copy of this package.
        # (The list is ignored when this process's forkserver runs already.)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(_PRELOAD))
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_init_worker,
            initargs=(self._settings, {k: v for k, v in os.environ.items() if k.startswith("POWERTOOLS_")}),
        )

    def start(self) -> None:
        """Starts the worker processes now rather than at the first upload (one no-op each, not waited for)."""
        self._warming = [self._pool.submit(_ready_check) for _ in range(self.workers)]

    def wait_started(self, timeout: float = 120.0) -> bool:
        """True once every worker process has imported and installed its services."""
        return all(future.result(timeout=timeout) for future in self._warming)

    def __call__(self, event: dict, context: object = None) -> dict:
        try:
            response, made_ready = self._pool.submit(_invoke, event).result()
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the queue makes the batch visible again, as SQS does after
            # a crashed invocation; the next batch gets fresh workers.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            raise
        if self.on_ready is not None:
            for photo in made_ready:
                self.on_ready(photo)
        return response

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
