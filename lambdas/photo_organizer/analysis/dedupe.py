"""Duplicates: copy an analysed photo's results instead of paying for the same picture twice."""

from __future__ import annotations

from collections.abc import Iterable

from photo_organizer.analysis.planning import PhotoRecord, needs_analysis
from photo_organizer.models import PhotoStatus


class _NearIndex:
    """Hashes within distance k share at least one of k+1 disjoint bit blocks (pigeonhole), so only photos that
    share a block are compared: near-linear instead of all pairs for an owner with 100k photos."""

    def __init__(self, max_distance: int) -> None:
        self.max_distance = max_distance
        blocks = max_distance + 1
        self._brute = blocks > 16
        widths = [64 // blocks + (1 if i < 64 % blocks else 0) for i in range(blocks)] if not self._brute else []
        self._spans = []
        shift = 64
        for width in widths:
            shift -= width
            self._spans.append((shift, (1 << width) - 1))
        self._tables: list[dict[int, list[tuple[int, str]]]] = [{} for _ in self._spans]
        self._all: list[tuple[int, str]] = []

    def add(self, phash: str, photo_id: str) -> None:
        value = int(phash, 16)
        self._all.append((value, photo_id))
        for table, (shift, mask) in zip(self._tables, self._spans):
            table.setdefault((value >> shift) & mask, []).append((value, photo_id))

    def nearest(self, phash: str) -> str | None:
        value = int(phash, 16)
        if self._brute:
            candidates: Iterable[tuple[int, str]] = self._all
        else:
            candidates = (
                entry
                for table, (shift, mask) in zip(self._tables, self._spans)
                for entry in table.get((value >> shift) & mask, ())
            )
        best: tuple[int, str] | None = None
        for other, photo_id in candidates:
            distance = (value ^ other).bit_count()
            if distance <= self.max_distance and (best is None or (distance, photo_id) < best):
                best = (distance, photo_id)
        return best[1] if best else None


def dedupe(photos: Iterable[PhotoRecord], *, current_version: int, max_distance: int = 4) -> dict[str, str]:
    """Maps each photo that needs analysis and duplicates another photo of the SAME owner to that photo.

    Sources are photos already analysed at current_version, or the earliest upload of a group of pending copies
    (the job analyses sources first, then copies). Exact copies (same sha256) win over near ones (phash Hamming
    distance <= max_distance); among near ones the closest, then the earliest. A source is never itself mapped, so
    there are no chains and no drift (A~B and B~C do not make C a copy of A).
    """
    by_owner: dict[str, list[PhotoRecord]] = {}
    for photo in photos:
        if photo.status is PhotoStatus.READY:
            by_owner.setdefault(photo.owner, []).append(photo)
    mapping: dict[str, str] = {}
    for owned in by_owner.values():
        analysed = sorted((p for p in owned if p.analysis_version >= current_version), key=lambda p: p.photo_id)
        pending = sorted((p for p in owned if needs_analysis(p, current_version)), key=lambda p: p.photo_id)
        exact: dict[str, str] = {}
        near = _NearIndex(max_distance)
        for photo in analysed + pending:
            is_pending = photo.analysis_version < current_version
            source = exact.get(photo.sha256) if photo.sha256 else None
            if source is None and photo.phash:
                source = near.nearest(photo.phash)
            if source is not None and is_pending:
                mapping[photo.photo_id] = source
                continue
            if photo.sha256:
                exact.setdefault(photo.sha256, photo.photo_id)
            if photo.phash:
                near.add(photo.phash, photo.photo_id)
    return mapping
