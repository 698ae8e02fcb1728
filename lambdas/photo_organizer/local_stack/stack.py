"""Starts the local backend: services, identity, the durable event queue, the background analysis of new photos
(analysis_worker) and the gateway on a loopback port. While it runs, this process is the library's one
search-index writer (bootstrap.library_writer_lock)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import uvicorn
from starlette.responses import Response

from photo_organizer import bootstrap
from photo_organizer.errors import PhotoOrganizerError
from photo_organizer.local_stack.gateway import create_gateway
from photo_organizer.local_stack.identity import LocalIdentityProvider, LocalLogins
from photo_organizer.local_stack.queue import QUEUE_FILE, LocalEventQueue
from photo_organizer.local_stack.web import WebApp
from photo_organizer.settings import Backend, Settings

LOOPBACK = "127.0.0.1"
# Idle keep-alive connections stay open longer than clients keep them (httpx and browsers: 5 s, uvicorn's default
# too): at equal timeouts a client could reuse a connection the server was just closing and see "connection reset"
# (one upload in 300 lost that way under 50 concurrent users, benchmarks/load.py uploads).
KEEP_ALIVE_SECONDS = 75
logger = logging.getLogger(__name__)


def quiet_powertools(verbose: bool = False) -> None:
    """Local runs print a readable console, not Lambda's JSON logs and metric blobs."""
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "photo-organizer")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PhotoOrganizer")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if verbose else "WARNING")


def serial_blas() -> None:
    """BLAS on one thread in the serving process. Its matrices are small (a query's tokens through MiniLM) and
    requests already run on threads: OpenBLAS's own thread pool only spun against them and against the machine's
    other work — a query embedding took 655 ms instead of ~70 ms at load 15 on 2 cores (benchmarks/load.py search).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it numpy keeps its default (OPENBLAS_NUM_THREADS still works)
        return
    threadpool_limits(1, user_api="blas")


def bind_loopback(port: int = 0, host: str = LOOPBACK) -> socket.socket:
    if host not in (LOOPBACK, "localhost", "::1"):
        raise ValueError("the local stack only listens on loopback")
    # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) on accepted connections whose listening
    # socket says proto=TCP; with proto=0 every keep-alive response waited ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    return sock


class LocalStack:
    def __init__(
        self, data_dir: Path, *, port: int = 0, settings: Settings | None = None, web_dir: Path | None = None,
        analyse: bool = True, ingest_workers: int = 0,
    ) -> None:
        """`analyse`: analyse uploads in the background (analysis_worker); off, photos wait for a batch run.
        `ingest_workers`: validate and derive uploads in that many worker processes (ingest_workers.py); 0 runs
        ingest on the queue's thread in this process.
        `web_dir`: the built app (default build/web, or PO_WEB_DIR)."""
        quiet_powertools(verbose=bool(os.environ.get("PO_VERBOSE")))
        serial_blas()
        self._socket = bind_loopback(port)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        base = settings or Settings.from_env({k: v for k, v in os.environ.items() if k.startswith("PO_")} | {"PO_BACKEND": "local"})
        self.settings = replace(base, backend=Backend.LOCAL, data_dir=data_dir, public_base_url=self.url)
        self.services = bootstrap.build_services(self.settings)
        bootstrap.use_services(self.services)
        self.verify_upload = bootstrap.local_upload_verifier(data_dir)  # S3's POST policy check, locally
        self.identity = LocalIdentityProvider(data_dir, issuer=f"{self.url}/auth")
        self.services.account.logins = LocalLogins(self.identity)  # DELETE /account ends with the sign-in, as in the cloud

        # Imported here so the handlers bind to the services installed above.
        from photo_organizer.handlers import api, ingest

        self.api_handler = api.handler
        self.api_handler_if_idle = api.handler_if_idle
        self.ingest_workers = None
        handler = ingest.handler
        if ingest_workers > 0:
            from photo_organizer.local_stack.ingest_workers import IngestWorkers

            # The hook is read at call time: the analysis worker below wraps it.
            self.ingest_workers = handler = IngestWorkers(
                self.settings, workers=ingest_workers, on_ready=lambda photo: self._on_ready(photo)
            )
        # Small batches with several workers, so that both get work from a short burst of uploads.
        self.queue = LocalEventQueue(
            data_dir / QUEUE_FILE, handler, consumers=max(1, ingest_workers),
            batch_size=2 if ingest_workers > 1 else 10,
        )
        self.web = WebApp(web_dir)  # the built single-page app (build/web), served at /
        self.analysis_worker = None
        if analyse:
            from photo_organizer.local_stack.analysis_worker import serving_worker

            self.analysis_worker = worker = serving_worker(data_dir, self.settings)
            progress = self.services.analysis_progress
            progress.version, progress.analysing = worker.version, worker.analysing
            indexed = self.services.ingest.on_ready

            def on_ready(photo) -> None:  # indexed at once (file name, date), analysed soon after
                if indexed is not None:
                    indexed(photo)
                worker.wake()

            self.services.ingest.on_ready = on_ready
        # The library's one search-index writer is this process while it serves (a batch analyze refuses).
        self._writer = ExitStack()
        self._writer_lock = bootstrap.library_writer_lock(data_dir)
        self.app = create_gateway(self)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def _on_ready(self, photo) -> None:
        if self.services.ingest.on_ready is not None:
            self.services.ingest.on_ready(photo)

    def web_page(self) -> Response:
        return self.web.index()

    def _server_config(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=KEEP_ALIVE_SECONDS
        )
        return uvicorn.Server(config)

    def _start_workers(self) -> None:
        self._writer.enter_context(self._writer_lock())  # ConflictError while another process writes the index
        if self.ingest_workers is not None:
            self.ingest_workers.start()
        try:  # writes that failed while the index was unavailable (a full disk, a crash) are caught up first
            caught_up = bootstrap.reconcile_local_search(self.services)
            if caught_up:
                logger.warning("search index caught up", extra={"photos": sum(map(len, caught_up.values()))})
        except PhotoOrganizerError:
            logger.exception("search index reconcile failed; serving, it runs again at the next start")
        self.queue.start()
        if self.analysis_worker is not None:
            self.analysis_worker.start()

    def start_in_background(self) -> LocalStack:
        self._start_workers()
        self._server = self._server_config()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="local-gateway", daemon=True
        )
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the local gateway failed to start")
            threading.Event().wait(0.02)
        return self

    def serve_forever(self) -> None:
        self._start_workers()
        self._server = self._server_config()
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.queue.stop()
        if self.ingest_workers is not None:
            self.ingest_workers.close()
        if self.analysis_worker is not None:
            self.analysis_worker.stop()
        self._writer.close()
        self._socket.close()
        bootstrap.use_services(None)

    def __enter__(self) -> LocalStack:
        return self.start_in_background()

    def __exit__(self, *exc: object) -> None:
        self.stop()
