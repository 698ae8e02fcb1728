"""The bookkeeping of benchmarks/load.py, kept pure so tests/unit can check it without a server: what counts
as lost, doubled or leaked, percentiles, the memory slope, and the printed table with its targets.

Nothing here measures time; load.py passes in what it measured.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

FINAL_STATUSES = frozenset({"READY", "DUPLICATE", "REJECTED"})


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the samples; NaN for none."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least the first
    return ordered[int(min(rank, len(ordered))) - 1]


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float:
    """Slope of the least-squares line through (x, y) points; 0 for fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def rss_slope_mb_per_min(samples: Sequence[tuple[float, int]], *, skip_fraction: float = 0.25) -> float:
    """MB/min growth of (seconds, RSS bytes) samples, leaving out the first `skip_fraction` of the run (caches
    and lazily loaded modules fill then; growth after that is what leaks)."""
    if not samples:
        return 0.0
    start, end = samples[0][0], samples[-1][0]
    settled = [(t, rss) for t, rss in samples if t >= start + (end - start) * skip_fraction]
    return least_squares_slope([(t / 60.0, rss / 1e6) for t, rss in settled])


@dataclass
class UploadTally:
    """Uploads whose expected end state (READY, DUPLICATE, REJECTED) is compared with what the API lists after."""

    expected: dict[str, str] = field(default_factory=dict)  # photo_id -> expected final status
    failed_requests: int = 0  # POST /uploads or the presigned POST answered with an error

    def expect(self, photo_id: str, status: str) -> None:
        self.expected[photo_id] = status

    def audit(self, statuses: Mapping[str, str], listed: Iterable[str]) -> dict[str, int]:
        """`statuses`: photo_id -> status read back per photo; `listed`: the ids GET /photos lists (READY only).

        lost: expected but missing, or not in a final state; wrong: final but not the expected state;
        unlisted: READY but absent from the listing; extra: listed but never uploaded by this run."""
        listed = list(listed)
        listed_set = set(listed)
        lost = sum(1 for pid in self.expected if statuses.get(pid) not in FINAL_STATUSES)
        wrong = sum(
            1 for pid, want in self.expected.items()
            if statuses.get(pid) in FINAL_STATUSES and statuses[pid] != want
        )
        unlisted = sum(1 for pid, st in statuses.items() if st == "READY" and pid not in listed_set)
        counts = Counter(statuses.get(pid, "MISSING") for pid in self.expected)
        return {
            "uploaded": len(self.expected),
            "lost": lost + self.failed_requests,
            "wrong_status": wrong,
            "unlisted": unlisted,
            "listed_twice": len(listed) - len(listed_set),
            "extra": len(listed_set - set(self.expected)),
            **{f"status_{k.lower()}": v for k, v in sorted(counts.items())},
        }


def cross_tenant_hits(searcher: str, hit_ids: Iterable[str], owner_of: Mapping[str, str]) -> int:
    """Hits that belong to someone else (or to no photo this run made: counted as leaks too)."""
    return sum(1 for pid in hit_ids if owner_of.get(pid) != searcher)


def exactly_once(expected: Mapping[str, int], found: Mapping[str, int]) -> dict[str, tuple[int, int, bool]]:
    """Each count found against its expectation: name -> (expected, found, equal)."""
    return {name: (want, found.get(name, -1), found.get(name, -1) == want) for name, want in expected.items()}


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@dataclass
class Check:
    name: str
    value: float | str
    target: str
    passed: bool

    def row(self) -> str:
        value = f"{self.value:.1f}" if isinstance(self.value, float) else str(self.value)
        return f"  {self.name:38s} {value:>12s}   target {self.target:16s} {'PASS' if self.passed else 'FAIL'}"


def report(title: str, checks: Sequence[Check], facts: Mapping[str, object]) -> str:
    """The printed table: the checks with their targets and PASS/FAIL, then the facts (times, load, counts)."""
    lines = [title]
    lines += [check.row() for check in checks]
    lines += [f"  {name}: {value}" for name, value in facts.items()]
    lines.append(f"  overall: {'PASS' if all(c.passed for c in checks) else 'FAIL'}")
    return "\n".join(lines)
