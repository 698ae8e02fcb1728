"""A durable local stand-in for SQS with a dead-letter queue, feeding the unchanged ingest Lambda handler.

Messages live in SQLite, so a crash or Ctrl-C half-way loses nothing: on the next start the worker picks up
what was not acknowledged. Like SQS with ReportBatchItemFailures, only the failed records of a batch come
back (after a visibility delay that grows with each receive), and a message received `max_receives` times
moves to the dead-letter table.
"""

from __future__ import annotations

import logging
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path


from photo_organizer.keys import PhotoKeys, UnexpectedKeyError, check_owner
from photo_organizer.local_stack.events import LambdaContextStub, sqs_event, sqs_record

logger = logging.getLogger(__name__)

LambdaHandler = Callable[[dict, object], dict]
# A deleted row's bytes are zeroed, not left in free pages (adapters.local.sqlite_access.SECURE_DELETE: the same
# setting; the local stack reaches adapters only through bootstrap).
SECURE_DELETE = "PRAGMA secure_delete=ON"
QUEUE_FILE = "queue.sqlite3"  # under the data folder: the local stack's queue and account erasure's view of it


class LocalEventQueue:
    def __init__(
        self,
        path: Path,
        handler: LambdaHandler | None,  # None: a view of the rows only (account erasure), never run
        *,
        batch_size: int = 10,
        max_receives: int = 5,
        visibility_seconds: float = 1.0,
        in_flight_seconds: float = 900.0,
        poll_seconds: float = 0.05,
        consumers: int = 1,
    ) -> None:
        """`consumers`: threads receiving and invoking at once (each its own batch), as Lambda scales an SQS
        source out to concurrent invocations; one per ingest worker process (ingest_workers.py)."""
        self._path = path
        self._handler = handler
        self._batch_size = batch_size
        self._max_receives = max_receives
        self._visibility = visibility_seconds  # the retry delay after a failure, growing with each receive
        # A received batch stays invisible while its handler runs (SQS: the visibility timeout, set above the
        # function timeout): with several consumers, a short one would hand a batch in flight to another.
        self._in_flight = in_flight_seconds
        self._poll = poll_seconds
        self._consumers = consumers
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._threads: list[threading.Thread] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        # The writes (send, receive, acknowledge) share one connection, kept, under self._lock: a connection opened
        # per call and an fsync per commit held the lock ~12 ms per upload at load, with the gateway's threads
        # queued behind it (benchmarks/load.py uploads). WAL with synchronous=NORMAL, as the photo records: a
        # message survives a crash of this process; a power cut may lose the last ones, like the records beside it.
        self._db = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
        with self._lock, self._db as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SECURE_DELETE)
            db.execute(
                "CREATE TABLE IF NOT EXISTS messages (id TEXT PRIMARY KEY, body TEXT NOT NULL,"
                " receive_count INTEGER NOT NULL DEFAULT 0, visible_at REAL NOT NULL, sent_at REAL NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS dead_letters (id TEXT PRIMARY KEY, body TEXT NOT NULL,"
                " receive_count INTEGER NOT NULL, failed_at REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30)
        db.execute(SECURE_DELETE)
        return db

    def send(self, body: dict | str) -> str:
        message_id = str(uuid.uuid4())
        text = body if isinstance(body, str) else json.dumps(body)
        now = time.time()
        with self._lock, self._db as db:
            db.execute("INSERT INTO messages VALUES (?, ?, 0, ?, ?)", (message_id, text, now, now))
        self._idle.clear()
        self._wake.set()
        return message_id

    def start(self) -> None:
        if not self._threads:
            self._stop.clear()
            # This process now owns the queue: what an earlier one held in flight when it died is visible at once.
            with self._lock, self._db as db:
                db.execute("UPDATE messages SET visible_at = ? WHERE visible_at > ?", (time.time(), time.time()))
            self._threads = [
                threading.Thread(target=self._run, name=f"local-ingest-queue-{n}", daemon=True)
                for n in range(self._consumers)
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    def depth(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def dead_letters(self) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT id, body, receive_count FROM dead_letters ORDER BY failed_at").fetchall()
        return [{"id": r[0], "body": r[1], "receive_count": r[2]} for r in rows]

    def owner_events(self, owner: str) -> int:
        """Queued and dead-lettered events naming the owner's keys (what account erasure must leave at 0)."""
        return sum(len(ids) for ids in self._owner_rows(owner).values())

    def forget_owner(self, owner: str) -> int:
        """Account erasure: the owner's events go, queued or dead-lettered (a dead letter keeps the key, i.e. the
        owner id, for ever otherwise); an event being processed right now finds its original deleted."""
        with self._lock, self._db as db:
            rows = self._owner_rows(owner, db)
            for table, ids in rows.items():
                db.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])  # noqa: S608 - fixed names
        return sum(len(ids) for ids in rows.values())

    def _owner_rows(self, owner: str, db: sqlite3.Connection | None = None) -> dict[str, list[str]]:
        check_owner(owner)
        connection = db or self._connect()
        try:
            return {table: [mid for mid, body in connection.execute(f"SELECT id, body FROM {table}")  # noqa: S608
                            if _event_owner(body) == owner]
                    for table in ("messages", "dead_letters")}
        finally:
            if db is None:
                connection.close()

    def wait_until_empty(self, timeout: float = 60.0) -> bool:
        """Blocks until every message was processed or dead-lettered; True when that happened in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.depth() == 0:
                return True
            time.sleep(0.05)
        return self.depth() == 0

    def run_once(self) -> int:
        """Receives and processes one batch; returns how many messages it received."""
        if self._handler is None:
            raise RuntimeError("this queue has no handler: it only reads and forgets rows")
        batch = self._receive()
        if not batch:
            return 0
        records = [sqs_record(body, receive_count=count) | {"messageId": mid} for mid, body, count in batch]
        try:
            response = self._handler(sqs_event(records), LambdaContextStub()) or {}
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except Exception:  # the whole invocation failed: SQS makes every message visible again
            logger.exception("ingest invocation failed")
            failed = {mid for mid, _, _ in batch}
        with self._lock, self._db as db:
            for mid, body, count in batch:
                if mid not in failed:
                    db.execute("DELETE FROM messages WHERE id = ?", (mid,))
                elif count >= self._max_receives:
                    db.execute("DELETE FROM messages WHERE id = ?", (mid,))
                    db.execute("INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?)", (mid, body, count, time.time()))
                    logger.error("message moved to the dead-letter queue", extra={"message_id": mid})
                else:
                    db.execute(
                        "UPDATE messages SET visible_at = ? WHERE id = ?", (time.time() + self._visibility * count, mid)
                    )
        return len(batch)

    def _receive(self) -> list[tuple[str, str, int]]:
        now = time.time()
        with self._lock, self._db as db:
            rows = db.execute(
                "SELECT id, body, receive_count FROM messages WHERE visible_at <= ? ORDER BY sent_at LIMIT ?",
                (now, self._batch_size),
            ).fetchall()
            received = []
            for mid, body, count in rows:
                count += 1
                db.execute(
                    "UPDATE messages SET receive_count = ?, visible_at = ? WHERE id = ?",
                    (count, now + self._in_flight, mid),
                )
                received.append((mid, body, count))
        return received

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
            except Exception:
                logger.exception("local queue worker error")
            self._wake.wait(self._poll)
            self._wake.clear()


def _event_owner(body: str) -> str | None:
    """The owner of the originals key an S3 'Object Created' event names; None for anything else (a poison)."""
    try:
        key = json.loads(body)["detail"]["object"]["key"]
        return PhotoKeys.from_original_key(key).owner
    except (ValueError, KeyError, TypeError, UnexpectedKeyError):
        return None
