"""What `PRAGMA secure_delete=ON` costs the local SQLite stores: the same bulk writes and deletes with it off
(the baseline) and on, in the same run, interleaved, printing each phase's ON/OFF ratio of wall and CPU time.

Run: .venv/bin/python benchmarks/sqlite_secure_delete.py [faces per owner, default 4000] [rounds, default 3]

The workload is the people store's, the biggest rows of the photos database (a face: a ~300-byte JSON document and
a 512-byte descriptor): 5 owners' faces saved in batches of 200 (insert), saved again (INSERT OR REPLACE rewrites
every row: a delete and an insert each), one owner's faces deleted photo by photo (what account erasure's
per-photo deletes do), another owner's all at once (forget_biometrics), then the write-ahead log checkpointed and
truncated (what the erasure ends with). Median of the rounds per phase.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lambdas")]

import numpy as np  # noqa: E402

from photo_organizer.adapters.local.sqlite_access import truncate_write_ahead_logs  # noqa: E402
from photo_organizer.adapters.local.sqlite_people import SqlitePeopleStore  # noqa: E402
from photo_organizer.analysis.models import BoundingBox  # noqa: E402
from photo_organizer.people.store import StoredFace  # noqa: E402

OWNERS, BATCH = 5, 200
T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
PHASES = ("insert", "replace", "per-photo delete", "owner delete", "wal truncate")


def faces(owner: str, count: int, rng: np.random.Generator) -> list[StoredFace]:
    return [StoredFace(face_id=f"f{n:06d}", owner=owner, photo_id=f"p{n:06d}",
                       box=BoundingBox(left=0.1, top=0.1, width=0.2, height=0.2), quality=0.7, created_at=T0,
                       descriptor=rng.standard_normal(128).astype(np.float32).tobytes())
            for n in range(count)]


def one_round(secure: bool, per_owner: int) -> dict[str, tuple[float, float]]:
    """phase -> (wall s, CPU s) with secure_delete on or off."""
    rng = np.random.default_rng(7)
    owners = [f"owner-{n}" for n in range(OWNERS)]
    library = {owner: faces(owner, per_owner, rng) for owner in owners}
    timings: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlitePeopleStore(Path(tmp) / "photo-organizer.sqlite3")
        store._db.execute(f"PRAGMA secure_delete={'ON' if secure else 'OFF'}")

        def timed(phase: str, work) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            work()
            timings[phase] = (time.perf_counter() - wall, time.process_time() - cpu)

        def save_all() -> None:
            for owner in owners:
                rows = library[owner]
                for start in range(0, len(rows), BATCH):
                    store.save_faces(rows[start:start + BATCH])

        timed("insert", save_all)
        timed("replace", save_all)
        timed("per-photo delete", lambda: [store.delete_faces_of_photo(owners[0], face.photo_id)
                                           for face in library[owners[0]]])
        timed("owner delete", lambda: store.forget_biometrics(owners[1]))
        timed("wal truncate", lambda: truncate_write_ahead_logs(Path(tmp)))
        store.close()
    return timings


def main() -> None:
    per_owner = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    runs: dict[bool, list[dict[str, tuple[float, float]]]] = {False: [], True: []}
    for _ in range(rounds):
        for secure in (False, True):  # interleaved: a load change hits both
            runs[secure].append(one_round(secure, per_owner))
    print(f"{OWNERS} owners x {per_owner} faces, {rounds} rounds, median per phase")
    print(f"{'phase':<18} {'off wall':>9} {'on wall':>9} {'ratio':>6}   {'off cpu':>8} {'on cpu':>8} {'ratio':>6}")
    for phase in PHASES:
        off_wall, on_wall = (statistics.median(r[phase][0] for r in runs[s]) for s in (False, True))
        off_cpu, on_cpu = (statistics.median(r[phase][1] for r in runs[s]) for s in (False, True))
        print(f"{phase:<18} {off_wall:9.3f} {on_wall:9.3f} {on_wall / off_wall:6.2f}   "
              f"{off_cpu:8.3f} {on_cpu:8.3f} {on_cpu / max(off_cpu, 1e-9):6.2f}")


if __name__ == "__main__":
    main()
