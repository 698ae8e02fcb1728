"""Account erasure end to end on the local stack: real HTTP, real sample photos analysed by the local models,
feedback and faces, then DELETE /account. Afterwards every listing, search, photo and blob link of that user is
empty or 404, the audit finds nothing, the sign-in is gone (a token issued before still works until it expires, and
a repeat erases nothing), and another user's library is untouched. A crash half-way is finished by
running erase again, nothing counted twice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from photo_organizer.feedback.dataset import record_from_line
from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library
from photo_organizer.local_stack.client import ApiError, PhotoApiClient

from erasure_traces import files_naming, raw_bytes_naming, sqlite_rows_naming

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
NAMES = ["chelsea.png", "rocket.jpg", "coffee_exif_gps.jpg"]


@pytest.fixture(scope="module")
def library(stack):
    assert (ROOT / LABEL_MODEL).exists(), "run `make label-model` (make test does) to export the label model"
    gail, _ = stack.identity.add_user("gail", "gail's long password")
    hugo, _ = stack.identity.add_user("hugo", "hugo's long password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(gail)) as leaving, \
            PhotoApiClient(stack.url, stack.identity.issue_token(hugo)) as staying:
        mine = {name: leaving.upload(SAMPLES / name) for name in NAMES}
        theirs = {name: staying.upload(SAMPLES / name) for name in NAMES[:2]}
        for client, ids in ((leaving, mine), (staying, theirs)):
            for photo_id in ids.values():
                client.wait_until_processed(photo_id)
        summary = analyse_library(stack.settings.data_dir, workers=1, label_model=ROOT / LABEL_MODEL)
        assert not summary.failures
        yield stack, (gail, leaving, mine), (hugo, staying, theirs)


def test_delete_account_leaves_nothing_of_the_user_and_the_other_library_intact(library) -> None:
    stack, (gail, leaving, mine), (hugo, staying, theirs) = library
    cat = mine["chelsea.png"]
    leaving.feedback({"type": "tag_rejected", "photo_id": cat, "tag": "cat"})
    leaving.feedback({"type": "tag_added", "photo_id": mine["rocket.jpg"], "tag": "launch"})
    staying.feedback({"type": "tag_added", "photo_id": theirs["rocket.jpg"], "tag": "launch"})
    links = leaving.photo(cat)["urls"]
    assert httpx.get(links["thumbnail"]).status_code == 200
    services = stack.services
    assert services.features.image_embeddings(gail.sub), "analysis stored embeddings to erase"
    assert services.account.audit(gail.sub), "before erasure the audit finds the library"
    staying_before = {pid: staying.photo(pid)["analysis"]["tags"] for pid in theirs.values()}

    response = leaving._call("DELETE", "/account")
    assert response.status_code == 200
    body = response.json()
    assert body["deleted"]["photos"] == len(NAMES)
    assert body["remaining"] == {}
    assert body["deleted"]["logins"] == 1 and stack.identity.get_user("gail") is None, "the sign-in went last"
    assert body["deleted"]["settings"] == 0, "gail never chose: the demo's default, nothing stored"
    # A local photo delete leaves its embedding row (reads join the photos, so it is invisible): erasure takes it.
    assert body["deleted"]["image_embeddings"] == len(NAMES)

    assert leaving.list_photos()["items"] == []
    assert leaving.search("")["items"] == [] and leaving.search("rocket")["items"] == []
    for photo_id in mine.values():
        with pytest.raises(ApiError) as missing:
            leaving.photo(photo_id)
        assert missing.value.status == 404
    for name in ("thumbnail", "preview", "original"):
        assert httpx.get(links[name]).status_code == 404, f"the {name} blob is gone"
    assert services.account.audit(gail.sub) == []
    assert services.feedback_store.events(gail.sub) == []
    assert services.people_store.faces(gail.sub) == [] and services.people_store.people(gail.sub) == []
    assert services.search_index.count(gail.sub) == 0
    dataset_owners = [record_from_line(text).owner for path in services.feedback_dataset.files()
                      for text in path.read_text(encoding="utf-8").splitlines() if text.strip()]
    assert body["deleted"]["dataset_lines"] >= 2 and gail.sub not in dataset_owners, "the training dataset too"
    assert hugo.sub in dataset_owners

    # The other user: every photo, its tags, its feedback and its search documents as before.
    assert {p["photo_id"] for p in staying.list_photos()["items"]} == set(theirs.values())
    assert {pid: staying.photo(pid)["analysis"]["tags"] for pid in theirs.values()} == staying_before
    assert len(services.feedback_store.events(hugo.sub)) == 1
    assert services.search_index.count(hugo.sub) == len(theirs)
    assert services.account.audit(hugo.sub), "hugo's library is still there"
    assert stack.identity.get_user("hugo") is not None

    # Nothing under the data folder names gail: no row of any SQLite table (queue, journals, ledgers included), no
    # file name, no byte of any file (deleted rows zeroed, write-ahead logs truncated).
    data = stack.settings.data_dir
    left = sqlite_rows_naming(data, [gail.sub]) + files_naming(data, [gail.sub]) + raw_bytes_naming(data, gail.sub)
    assert left == [], "\n".join(left)

    again = leaving._call("DELETE", "/account").json()
    assert set(again["deleted"].values()) == {0} and again["remaining"] == {}, "a repeat deletes and counts nothing"


def test_an_erasure_that_crashes_half_way_is_finished_by_running_it_again(stack) -> None:
    user, _ = stack.identity.add_user("ines", "ines's long password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(user)) as client:
        ids = [client.upload(SAMPLES / name) for name in NAMES]
        for photo_id in ids:
            client.wait_until_processed(photo_id)
        client.feedback({"type": "tag_added", "photo_id": ids[0], "tag": "mine"})
    account = stack.services.account
    photos = account.photos
    deleted: list[str] = []

    def crash_after_two(owner: str, photo_id: str) -> None:
        if len(deleted) == 2:
            raise RuntimeError("power cut")
        photos.delete(owner, photo_id)
        deleted.append(photo_id)

    class Crashing:
        def __getattr__(self, name):
            return getattr(photos, name)

        delete = staticmethod(crash_after_two)

    crashing = dataclasses.replace(account, photos=Crashing())
    with pytest.raises(RuntimeError):
        crashing.erase(user.sub)
    assert len(account.metadata.photo_ids(user.sub)) == len(NAMES) - 2
    assert account.audit(user.sub), "half-way: something remains and the audit says so"
    token = stack.identity.issue_token(user)
    with PhotoApiClient(stack.url, token) as client:
        with pytest.raises(ApiError) as refused:
            client.upload(SAMPLES / NAMES[0])
        assert refused.value.status == 409 and "account_erasing" in str(refused.value), "no new writes meanwhile"

    report = account.erase(user.sub)
    assert report.photos == len(NAMES) - 2, "the re-run counts only what it deleted itself"
    assert report.remaining == [] and account.audit(user.sub) == []
    with PhotoApiClient(stack.url, token) as client:
        assert client.upload(SAMPLES / NAMES[0]), "finished: the (empty) account takes photos again"
