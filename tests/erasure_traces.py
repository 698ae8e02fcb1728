"""What of a user is left in a local data folder: scans that know no table or file layout, so a store added later
is searched too (the account erasure tests assert they find nothing of an erased user)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_rows_naming(data: Path, needles: list[str]) -> list[str]:
    """`file table: row` of every row of every table of every SQLite file under `data` with a needle in a cell."""
    found = []
    for path in sorted(p for p in data.rglob("*") if p.is_file() and _is_sqlite(p)):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names read from the schema
                    cells = [c.decode("latin-1") if isinstance(c, bytes) else str(c) for c in row]
                    if any(needle in cell for needle in needles for cell in cells):
                        found.append(f"{path.relative_to(data)} {table}: {row!r:.160}")
    return found


def files_naming(data: Path, needles: list[str]) -> list[str]:
    """Files under `data` whose path names a needle, or whose text (not SQLite: see above) contains one."""
    found = []
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        relative = str(path.relative_to(data))
        if any(needle in relative for needle in needles):
            found.append(relative)
        elif not _is_sqlite(path) and not path.name.endswith(("-wal", "-shm", "-journal")):
            content = path.read_bytes()
            if any(needle.encode() in content for needle in needles):
                found.append(f"{relative} (content)")
    return found


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER


def raw_bytes_naming(data: Path, needle: str) -> list[str]:
    """Every file under `data` whose bytes contain the needle, SQLite files and their logs included: a deleted row
    left in free space or in the write-ahead log is found here although no query returns it."""
    return sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file() and needle.encode() in p.read_bytes())
