"""Storage faults: the search index unavailable (both backends), a full disk under the local blob store and under
SQLite, and a killed local analysis run re-run. Each ends with the library audit: nothing lost, nothing doubled."""

from __future__ import annotations

import errno
import os

import pytest

from photo_organizer import bootstrap
from photo_organizer.errors import StorageFullError, StorageUnavailableError

from fault_library import OWNER, SAMPLES, SMALL


class UnavailableIndex:
    """The local index's port while its disk or writer lock is gone: every write raises the retryable error the
    adapter raises then; reads still answer."""

    def __init__(self, index) -> None:
        self._index = index
        self.down = True
        self.refused = 0

    def __getattr__(self, name):
        return getattr(self._index, name)

    def _write(self, name):
        def refuse(*args, **kwargs):
            if self.down:
                self.refused += 1
                raise StorageUnavailableError("local search index: the writer lock is held by another process")
            return getattr(self._index, name)(*args, **kwargs)
        return refuse

    @property
    def upsert(self):
        return self._write("upsert")

    @property
    def delete(self):
        return self._write("delete")


def index_down(library) -> UnavailableIndex:
    if library.kind == "aws":
        library.cluster.down = True
        return None
    down = UnavailableIndex(library.services.search.index)
    library.services.search.index = down
    return down


def index_up(library, down) -> None:
    if library.kind == "aws":
        library.cluster.down = False
    else:
        down.down = False


def test_index_unavailable_for_one_delivery_is_completed_by_the_redelivery(library):
    photo_id = library.upload("rocket.jpg")
    down = index_down(library)
    library.queue.run_once()  # local: the record is READY, indexing failed, the message stays for a redelivery
    if library.kind == "local":
        assert down.refused and library.queue.depth() == 1
    library.after_drain()  # cloud: the stream indexer fails the record; the stream keeps it
    assert [f.finding.value for f in library.audit().findings] == ["ready_not_indexed"]
    index_up(library, down)
    library.drain()
    assert library.status(photo_id) == "READY" and library.queue.dead_letters() == []
    library.assert_clean(ready=1)


def test_index_unavailable_for_a_long_time_is_reconciled_when_it_is_back(library):
    kept = library.upload("rocket.jpg")
    gone = library.upload("coffee_exif_gps.jpg")
    library.drain()
    down = index_down(library)
    new = [library.upload(sample) for sample in SMALL[2:]]
    library.drain()  # every delivery fails to index (local: to the dead-letter queue after its receives)
    library.services.photos.delete(OWNER, gone)  # succeeds: the record is the truth, the document waits
    found = sorted(f.finding.value for f in library.audit().findings)
    assert found == ["document_without_searchable_record"] + ["ready_not_indexed"] * len(new), found
    index_up(library, down)
    if library.kind == "local":
        assert bootstrap.reconcile_local_search(library.services) == {OWNER: sorted([gone, *new])}
    else:
        library.after_drain()  # the stream's retries carry the kept records to the index
    assert library.status(kept) == "READY"
    library.assert_clean(ready=1 + len(new))


def test_local_server_start_reconciles_the_index(local_library):
    down = index_down(local_library)
    photo_id = local_library.upload("rocket.jpg")
    local_library.drain()
    index_up(local_library, down)
    assert not local_library.audit().clean
    from photo_organizer.local_stack.stack import LocalStack

    data_dir = local_library.services.settings.data_dir
    stack = LocalStack(data_dir, analyse=False)
    try:
        stack._start_workers()  # what start_in_background does first, without a listening server
    finally:
        stack.stop()
    bootstrap.use_services(local_library.services)
    assert local_library.status(photo_id) == "READY"
    local_library.assert_clean(ready=1)


def full_disk(handle, data):
    handle.write(data[: len(data) // 2])  # part of it went out before the disk filled
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def leftovers(root) -> list[str]:
    return [p.name for p in root.rglob(".*.tmp")]


@pytest.mark.parametrize("store", ["originals", "derivatives"])
def test_a_full_disk_under_the_blob_store_is_a_clear_retryable_error_and_resumes(local_library, store):
    blobs = getattr(local_library.services, store)
    if store == "originals":  # the upload itself cannot be written: the gateway answers, nothing is stored
        blobs.write_file = full_disk
        with pytest.raises(StorageFullError, match="no space left"):
            local_library.upload("rocket.jpg")
        blobs.write_file = lambda handle, data: handle.write(data)
        assert leftovers(blobs.root) == [] and blobs.keys("") == []
        local_library.upload("rocket.jpg")  # the client tries again once there is space
    else:
        photo_id = local_library.upload("rocket.jpg")
        blobs.write_file = full_disk
        local_library.queue.run_once()
        assert local_library.status(photo_id) == "PENDING_UPLOAD" and local_library.queue.depth() == 1
        assert leftovers(blobs.root) == [] and blobs.keys("") == []
        blobs.write_file = lambda handle, data: handle.write(data)
    local_library.drain()
    assert local_library.queue.dead_letters() == []
    local_library.assert_clean(ready=1)


def test_a_full_sqlite_database_is_a_clear_retryable_error_and_the_store_recovers(local_library):
    metadata = local_library.services.metadata
    photo_id = local_library.upload("coffee_exif_gps.jpg")
    db = metadata._db  # SQLite's own limit stands in for the disk: writes that need a new page get SQLITE_FULL
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StorageFullError, match="full"):
        for sample in SMALL * 4:
            local_library.start_upload(sample)
    local_library.queue.run_once()
    db.execute("PRAGMA max_page_count = 1073741823")  # space is back
    local_library.drain()
    assert local_library.status(photo_id) == "READY" and local_library.queue.dead_letters() == []
    report = local_library.audit()
    # Uploads refused while full left no record; those made before kept theirs (pending, bytes uploaded).
    assert report.records["READY"] == 1 and [f.finding.value for f in report.findings] == [], report.lines()


def test_users_audit_command_reports_the_drift_and_reconcile_repairs_it(local_library):
    from typer.testing import CliRunner

    from photo_organizer.cli import app
    from photo_organizer.local_stack.identity import LocalIdentityProvider

    data_dir = local_library.services.settings.data_dir
    user, _ = LocalIdentityProvider(data_dir, issuer="http://127.0.0.1/auth").add_user("ana", "ana's long password")
    down = index_down(local_library)
    photo_id = local_library.upload("rocket.jpg", owner=user.sub)
    local_library.drain()
    index_up(local_library, down)
    runner = CliRunner()
    before = runner.invoke(app, ["users", "audit", "ana", "--data-dir", str(data_dir)], terminal_width=200)
    assert before.exit_code == 1 and f"ready_not_indexed {photo_id}" in before.output, before.output
    after = runner.invoke(app, ["users", "audit", "ana", "--reconcile", "--data-dir", str(data_dir)],
                          terminal_width=200)
    assert after.exit_code == 0 and "reconciled 1 documents" in after.output and "nothing lost" in after.output
    bootstrap.use_services(local_library.services)
    local_library.assert_clean(user.sub, ready=1)


@pytest.mark.e2e
def test_an_upload_refused_by_a_full_disk_can_be_sent_again_through_the_same_url(tmp_path):
    import httpx

    from photo_organizer.local_stack.client import PhotoApiClient
    from photo_organizer.local_stack.stack import LocalStack

    with LocalStack(tmp_path / "library", analyse=False) as stack:
        stack.services.search.embed = None
        user, _ = stack.identity.add_user("ana", "ana's long password")
        data = (SAMPLES / "rocket.jpg").read_bytes()
        with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
            ticket = client.start_upload("rocket.jpg", "image/jpeg", len(data))
            stack.services.originals.write_file = full_disk
            refused = httpx.post(ticket["url"], data=ticket["fields"],
                                 files={"file": ("rocket.jpg", data, "image/jpeg")}, timeout=30)
            assert refused.status_code == 503 and "<Code>SlowDown</Code>" in refused.text
            assert leftovers(stack.services.originals.root) == []
            stack.services.originals.write_file = lambda handle, chunk: handle.write(chunk)
            client.send_file(ticket, data, "rocket.jpg", "image/jpeg")  # the same URL, once there is space
            assert stack.queue.wait_until_empty(60)
            assert client.photo(ticket["photo_id"])["status"] == "READY"
        report = stack.services.library_audit.audit(user.sub)
        assert report.clean and report.records == {"READY": 1}, report.lines()
