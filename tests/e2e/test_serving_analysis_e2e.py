"""Analysis while serving, over real HTTP: photos uploaded to the running local server get tags, faces, people and
search hits from its background worker, with no restart and no `photo-organizer analyze`; GET /analysis/progress
shows it happening; a batch `photo-organizer analyze` refuses while the server holds the index writer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from photo_organizer.cli import app
from photo_organizer.local_stack.analysis_runner import LABEL_MODEL
from photo_organizer.local_stack.client import PhotoApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
NAMES = ["chelsea.png", "obama.jpg", "obama2.jpg", "obama3.jpg"]


@pytest.fixture(scope="module")
def uploaded(serving_stack):
    assert (ROOT / LABEL_MODEL).exists(), "run `make label-model` (make test does) to export the label model"
    user, _ = serving_stack.identity.add_user("sam", "sam's long password")
    client = PhotoApiClient(serving_stack.url, serving_stack.identity.issue_token(user))
    seen: list[dict] = []
    with client:
        ids = {name: client.upload(SAMPLES / name) for name in NAMES}
        uploaded_at = time.monotonic()
        for photo_id in ids.values():
            assert client.wait_until_processed(photo_id)["status"] == "READY"
        progress = client.wait_until_analysed(timeout=300, on_progress=seen.append)
        print(f"\nupload complete -> {len(NAMES)} photos analysed, people grouped, re-indexed: "
              f"{time.monotonic() - uploaded_at:.2f} s (models loading in the background since server start)")
    return user, ids, progress, seen


def test_uploads_are_analysed_while_serving_and_progress_shows_it(serving_stack, uploaded):
    user, ids, progress, seen = uploaded
    assert progress == {"waiting": 0, "analysing": 0, "done": len(NAMES), "failed": 0}
    assert all(set(p) == {"waiting", "analysing", "done", "failed"} for p in seen)
    assert all(sum(p.values()) == len(NAMES) for p in seen)  # every READY photo is counted exactly once


def test_tags_faces_people_and_search_without_restarting(serving_stack, uploaded):
    user, ids, _, _ = uploaded
    with PhotoApiClient(serving_stack.url, serving_stack.identity.issue_token(user)) as client:
        cat = client.photo(ids["chelsea.png"])["analysis"]
        assert {"Cat", "Animal"} <= set(cat["tags"]) and cat["caption"]
        assert all(client.photo(ids[name])["analysis"]["face_count"] >= 1 for name in NAMES[1:])
        people = client.people()
        assert len(people) == 1 and people[0]["photo_count"] == 3
        hits = client.search("cat")["items"]
        assert hits and hits[0]["photo_id"] == ids["chelsea.png"]
        assert any(m["field"] == "tags" for m in hits[0]["matched"])


def test_progress_is_the_callers_own(serving_stack, uploaded):
    stranger, _ = serving_stack.identity.add_user("stranger", "stranger's long password")
    with PhotoApiClient(serving_stack.url, serving_stack.identity.issue_token(stranger)) as client:
        assert client.analysis_progress() == {"waiting": 0, "analysing": 0, "done": 0, "failed": 0}


def test_batch_analyze_refuses_while_the_server_holds_the_writer(serving_stack, uploaded):
    result = CliRunner().invoke(app, ["analyze", "--data-dir", str(serving_stack.settings.data_dir)])
    assert result.exit_code == 2, result.output
    assert "stop the server" in result.output and "/analysis/progress" in result.output


def test_a_restarted_server_resumes_the_photo_it_was_analysing_when_it_died(tmp_path):
    """The journal a killed server leaves (its photo in hand "analysing"), on the real SQLite library: the next
    server counts the interrupted attempt, analyses the photo once, and it is searchable; nothing else is needed."""
    import sqlite3

    from photo_organizer.local_stack.stack import LocalStack

    with LocalStack(tmp_path, port=0, analyse=False) as batch_only:  # a library with one READY, unanalysed photo
        user, _ = batch_only.identity.add_user("rae", "rae's long password")
        with PhotoApiClient(batch_only.url, batch_only.identity.issue_token(user)) as client:
            photo_id = client.upload(SAMPLES / "chelsea.png")
            assert client.wait_until_processed(photo_id)["status"] == "READY"
    with sqlite3.connect(tmp_path / "analysis-worker.sqlite3") as journal:  # what the dead worker left behind
        journal.execute("CREATE TABLE in_progress (owner TEXT NOT NULL, photo_id TEXT NOT NULL, state TEXT NOT NULL,"
                        " since REAL NOT NULL, PRIMARY KEY (owner, photo_id))")
        journal.execute("INSERT INTO in_progress VALUES (?, ?, 'analysing', 0)", (user.sub, photo_id))

    with LocalStack(tmp_path, port=0) as restarted:
        with PhotoApiClient(restarted.url, restarted.identity.issue_token(user)) as client:
            progress = client.wait_until_analysed(timeout=300)
            assert progress == {"waiting": 0, "analysing": 0, "done": 1, "failed": 0}
            assert "Cat" in client.photo(photo_id)["analysis"]["tags"]
            assert [hit["photo_id"] for hit in client.search("cat")["items"]] == [photo_id]
        assert restarted.services.analysis.failures() == []  # the interrupted attempt was cleared by the success
    with sqlite3.connect(tmp_path / "analysis-worker.sqlite3") as journal:
        assert journal.execute("SELECT COUNT(*) FROM in_progress").fetchone()[0] == 0
