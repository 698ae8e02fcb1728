"""Runs hostile files through the real ingest (local backend) in a child process, one file after the other, and
keeps the suite's own books per file: outcome, wall and CPU seconds, and peak resident memory above the level
before the file (the kernel's high-water mark, reset before each file through /proc/self/clear_refs).

The child is a separate process so that a crash, a hang or a runaway allocation costs one file, not the test
session: the parent records it as not handled cleanly and carries on with a fresh child for the rest. Nothing here
asserts a duration; the per-file watchdog only stops a file that never ends.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .corpus import HostileFile

OWNER = "hostile-owner"
WATCHDOG_SECONDS = 300.0  # a file still running after this is a hang, whatever the machine's load
ADDRESS_SPACE_LIMIT = 8 << 30  # a runaway allocation fails in the child instead of taking the machine's memory


@dataclass(frozen=True)
class FileResult:
    name: str
    photo_id: str | None
    outcome: str | None  # the ingest service's IngestOutcome value, or None when it did not end cleanly
    error: str | None  # what escaped the service (a crash), the child dying, or the watchdog
    seconds: float
    cpu_seconds: float
    peak_extra_bytes: int
    input_bytes: int

    @property
    def clean(self) -> bool:
        return self.error is None and self.outcome is not None


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _child(data_dir: str, names: list[str], connection) -> None:
    """Builds the local services once, then ingests each named file and sends one FileResult per file."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    from photo_organizer.bootstrap import build_services
    from photo_organizer.keys import PhotoKeys
    from photo_organizer.models import UploadRequest
    from photo_organizer.services.ingest import ObjectCreated
    from photo_organizer.settings import Settings

    from .corpus import CORPUS

    by_name = {case.name: case for case in CORPUS}
    services = build_services(Settings(data_dir=Path(data_dir)))
    for name in names:
        case = by_name[name]
        try:
            data = case.build()
        except Exception as exc:  # a defect of the corpus, not of the product: said so, never counted as clean
            connection.send(FileResult(name, None, None, f"corpus builder failed: {exc!r}"[:500], 0.0, 0.0, 0, 0))
            continue
        ticket = services.uploads.start(
            OWNER, UploadRequest(filename=f"{name}.bin", content_type=case.declared_content_type, size=len(data))
        )
        key = PhotoKeys.for_photo(OWNER, ticket.photo_id).original
        services.originals.put(key, data, content_type=case.declared_content_type)
        connection.send(("started", name, ticket.photo_id))
        try:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        except OSError:
            pass  # not allowed here: the mark keeps earlier files' peaks, so the figure can only be too high
        baseline = _status_kib("VmRSS")
        started, cpu_started = time.perf_counter(), time.process_time()
        outcome = error = None
        try:
            outcome = services.ingest.process(ObjectCreated(bucket="originals", key=key, size=len(data))).value
        except BaseException as exc:  # anything that escapes the service is a finding, MemoryError included
            error = "".join(traceback.format_exception_only(exc)).strip()[:500]
        connection.send(FileResult(
            name=name,
            photo_id=ticket.photo_id,
            outcome=outcome,
            error=error,
            seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu_started,
            peak_extra_bytes=max(0, _status_kib("VmHWM") - baseline) * 1024,
            input_bytes=len(data),
        ))
    connection.close()


def run_through_ingest(data_dir: Path, cases: list[HostileFile]) -> dict[str, FileResult]:
    """Every case through IngestService.process on the local backend in `data_dir`; one result per case."""
    context = multiprocessing.get_context("spawn")  # never fork a test process that may hold threads and locks
    pending = [case.name for case in cases]
    results: dict[str, FileResult] = {}
    while pending:
        receiving, sending = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(str(data_dir), pending, sending), daemon=True)
        child.start()
        sending.close()
        current: tuple[str, str | None] | None = None
        started = time.perf_counter()
        try:
            while pending:
                if not receiving.poll(WATCHDOG_SECONDS):
                    raise TimeoutError(f"no answer within {WATCHDOG_SECONDS:.0f} s")
                message = receiving.recv()
                if isinstance(message, FileResult):
                    results[message.name] = message
                    pending.remove(message.name)
                    current = None
                else:
                    _, name, photo_id = message
                    current, started = (name, photo_id), time.perf_counter()
        except (EOFError, TimeoutError, OSError) as stopped:
            child.join(timeout=5)  # a child that died has its exit code by now; a hung one is stopped
            if child.exitcode is None:
                child.kill()
                child.join()
            name, photo_id = current if current else (pending[0], None)
            reason = f"child ended (exit {child.exitcode})" if isinstance(stopped, EOFError) else repr(stopped)
            results[name] = FileResult(name, photo_id, None, reason, time.perf_counter() - started, 0.0, 0, 0)
            pending.remove(name)
            continue
        finally:
            receiving.close()
        child.join(timeout=60)
    return results
