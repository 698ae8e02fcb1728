"""A local analysis run killed half-way and run again (the serving process's worker and its journal, with the real
CPU models): the photo analysed but not re-indexed is re-indexed, the one in hand counts one interrupted attempt
and is analysed by the next run, nothing is analysed twice; the audit then finds nothing lost or doubled."""

from __future__ import annotations

import pytest

from photo_organizer import bootstrap
from photo_organizer.local_stack.analysis_runner import LABEL_MODEL
from photo_organizer.local_stack.analysis_worker import INTERRUPTED, serving_worker

from fault_library import OWNER

pytestmark = pytest.mark.skipif(
    not (bootstrap.repository_root() / LABEL_MODEL).is_file(),
    reason="the exported label model (build/models, made by `make`) is missing",
)


class Killed(BaseException):
    """The process dying: nothing in the worker catches a BaseException that is not an Exception."""


def test_a_killed_analysis_run_is_finished_by_the_next_one_without_doing_anything_twice(local_library):
    library = local_library
    first, second = library.upload("rocket.jpg"), library.upload("coffee_exif_gps.jpg")
    library.drain()
    data_dir, settings = library.services.settings.data_dir, library.services.settings
    worker = serving_worker(data_dir, settings)
    service = worker._make_analysis()  # the models load once for both runs (the real loader, as the server's)
    saves: list[str] = []

    class KilledAtTheSecondPhoto:
        """The real analysis, with the process killed as the second photo starts (the first is analysed and
        journalled, its re-index not yet done)."""

        def run(self, pending, *, run_id, on_photo_done=None, on_photo_start=None):
            def start(record):
                on_photo_start(record)
                if len(saves) == 1:
                    raise Killed

            def done(record):
                saves.append(record.photo_id)
                on_photo_done(record)

            return service.run(pending, run_id=run_id, on_photo_start=start, on_photo_done=done)

    worker._make_analysis = KilledAtTheSecondPhoto
    with pytest.raises(Killed):
        worker.run_once()
    analysed_first = saves[0]
    analysis = library.services.analysis
    assert analysis.get(OWNER, analysed_first) is not None

    rerun = serving_worker(data_dir, settings)  # a new process: same library, same journal
    rerun._make_analysis = lambda: service
    rerun.recover()
    interrupted = {f.photo_id: f for f in analysis.failures(OWNER)}
    other = ({first, second} - {analysed_first}).pop()
    assert list(interrupted) == [other] and interrupted[other].reason == INTERRUPTED
    assert interrupted[other].attempts == 1
    while rerun.run_once():
        pass
    assert analysis.failures(OWNER) == []  # the second run analysed it
    assert {p.photo_id for p in analysis.pending(rerun.version, owner=OWNER).photos} == set()
    assert analysis.get(OWNER, first) is not None and analysis.get(OWNER, second) is not None
    report = library.assert_clean(ready=2)
    assert report.records == {"READY": 2}
