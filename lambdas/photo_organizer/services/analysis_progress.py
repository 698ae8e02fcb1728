"""How far analysis has come for one owner's library: photos waiting, being analysed, done, and failed.

Read from the analysis store, so both backends answer the same way: `waiting` are READY photos whose stored
analysis is older than the current version (not yet analysed), `done` are READY photos analysed at that version,
`failed` are waiting photos whose failures at that version reached `max_attempts` (the local server's worker gives
up on them after a few attempts; the cloud's Glue batch retries every failed photo on its next run, so there one
failure already counts), and `analysing` are those the local worker holds right now, from the start of their
analysis until they are re-indexed for search (the cloud's batch is not observed per photo: 0). A photo counts once.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from photo_organizer.ports.analysis import AnalysisStore

# The local worker's attempts per photo before it is reported failed and skipped (a server restart does not
# retry it; `photo-organizer analyze` on the stopped library does).
LOCAL_MAX_ATTEMPTS = 3


class AnalysisProgress(BaseModel):
    model_config = ConfigDict(frozen=True)

    waiting: int = Field(ge=0, description="Photos not analysed yet (queued).")
    analysing: int = Field(ge=0, description="Photos being analysed right now.")
    done: int = Field(ge=0, description="Photos analysed at the current analysis version.")
    failed: int = Field(ge=0, description="Photos whose analysis failed and is not being retried now.")


class AnalysisProgressService:
    def __init__(
        self,
        store: AnalysisStore,
        *,
        version: int,
        max_attempts: int = 1,
        analysing: Callable[[str], set[str]] | None = None,
        ids_by_analysis: Callable[[str, int], tuple[set[str], set[str]]] | None = None,
    ) -> None:
        self._store = store
        # (owner, version) -> (pending ids, analysed ids) in one light query, where the store has one (SQLite)
        self._ids_by_analysis = ids_by_analysis
        self.version = version
        self.max_attempts = max_attempts
        # owner -> ids being analysed now: the local server's worker installs it; None where nobody knows.
        self.analysing = analysing

    def of(self, owner: str) -> AnalysisProgress:
        if self._ids_by_analysis is not None:
            pending, analysed = self._ids_by_analysis(owner, self.version)
        else:
            pending, analysed = self._pending(owner), {
                p.photo_id for p in self._store.analysed(owner, min_version=self.version)}
        busy = self.analysing(owner) if self.analysing is not None else set()
        failed = {
            f.photo_id
            for f in self._store.failures(owner)
            if f.analysis_version == self.version and f.attempts >= self.max_attempts
        } & pending - busy
        return AnalysisProgress(
            waiting=len(pending - failed - busy),
            analysing=len(busy & (pending | analysed)),
            done=len(analysed - busy),
            failed=len(failed),
        )

    def _pending(self, owner: str) -> set[str]:
        pending: set[str] = set()
        after = None
        while True:
            page = self._store.pending(self.version, owner=owner, limit=500, after=after)
            pending.update(p.photo_id for p in page.photos)
            after = page.next_key
            if after is None:
                return pending
