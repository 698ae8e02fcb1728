"""After `photo-organizer users delete`, nothing under the local data folder names the user: not a row of any table
of any SQLite file (found by scanning them all, so a table added later is covered without touching this test),
not a file's name, not a line of a text file; and the erasure audit agreed beforehand that nothing remained.
Another user's library stays. The owner id (the token's `sub`) and the sign-in name are both searched for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from photo_organizer.adapters.local.upload_ledger import UsedUploadLedger
from photo_organizer.analysis.models import BoundingBox
from photo_organizer.bootstrap import build_services, local_settings
from photo_organizer.cli import app
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, TagSuggestion, new_feedback_id, overlay_of
from photo_organizer.local_stack.identity import LocalIdentityProvider
from photo_organizer.models import utcnow
from photo_organizer.people.models import MustLink, Person
from photo_organizer.people.store import StoredFace

from erasure_traces import files_naming, raw_bytes_naming, sqlite_rows_naming
from ready_photos import add_ready_photo


def library(services, data: Path, owner: str, photo_ids: list[str]) -> None:
    """Every kind of thing a local user leaves: records, blobs, search documents, faces, people, corrections,
    consent, feedback, embeddings, suggestions, the used upload URLs."""
    now = utcnow()
    services.user_settings.set_biometric_consent(owner, True)
    ledger = UsedUploadLedger(data / "uploads" / "used.sqlite3")
    for n, photo_id in enumerate(photo_ids):
        keys = add_ready_photo(services, owner, photo_id, n, filename="mine.jpg", now=now)
        assert ledger.claim(keys.original)
        services.derivatives.put(keys.preview, b"jpeg", content_type="image/jpeg")
        services.features.save_image_embedding(owner, photo_id, np.ones(1280, dtype=np.float32) / np.sqrt(1280))
        services.suggestion_store.replace_suggestions(owner, photo_id, [TagSuggestion(tag="cat", confidence=0.8)])
        services.people_store.save_faces([StoredFace(
            face_id=f"f{n}", owner=owner, photo_id=photo_id, box=BoundingBox(left=0.2, top=0.1, width=0.2, height=0.3),
            quality=0.7, created_at=now)])
        record = FeedbackRecord(feedback_id=new_feedback_id(), owner=owner, type=FeedbackType.TAG_ADDED,
                                created_at=now, photo_id=photo_id, tag="mine")
        services.feedback_store.record(record, overlay=overlay_of([record]))
    assert services.search.index_photos(owner, photo_ids) == len(photo_ids)
    services.people_store.save_person(Person(owner=owner, person_id="p0", name="Ann", face_ids=frozenset({"f0"})))
    services.people_store.add_constraint(owner, MustLink(a="f0", b="f1", created_at=now))


def test_users_delete_leaves_no_row_or_file_naming_the_user(tmp_path) -> None:
    data = tmp_path / "data"
    identity = LocalIdentityProvider(data, issuer="http://127.0.0.1/auth")
    leaving, _ = identity.add_user("leaving-user", "a long password")
    staying, _ = identity.add_user("staying-user", "a long password")
    identity.issue_sign_in_code(leaving)
    services = build_services(local_settings(data))
    library(services, data, leaving.sub, ["0123456789abcdef0123456789abcdef", "1123456789abcdef0123456789abcdef"])
    library(services, data, staying.sub, ["2123456789abcdef0123456789abcdef"])
    needles = [leaving.sub, "leaving-user"]
    assert sqlite_rows_naming(data, needles), "the scan finds the user before the erasure"

    result = CliRunner().invoke(app, ["users", "delete", "leaving-user", "--data-dir", str(data)], terminal_width=200)

    assert result.exit_code == 0 and "audit: nothing remains" in result.output, result.output
    assert services.account.audit(leaving.sub) == []
    left = sqlite_rows_naming(data, needles)
    assert left == [], "\n".join(left)
    assert files_naming(data, needles) == []
    # Nor do the files' bytes: secure_delete zeroed the deleted rows, the write-ahead logs were truncated.
    assert raw_bytes_naming(data, leaving.sub) == []
    assert sqlite_rows_naming(data, [staying.sub]), "the other user's library stays"
    assert services.metadata.photo_ids(staying.sub) == ["2123456789abcdef0123456789abcdef"]


def test_the_audit_lists_a_consent_setting_left_behind(tmp_path) -> None:
    """A setting is something of the user too: the audit lists it until it is gone."""
    services = build_services(local_settings(tmp_path / "data"))
    owner = "3f1c2b7e-0000-4000-8000-00000000a11c"
    services.user_settings.set_biometric_consent(owner, False)
    assert [(r.store, r.count) for r in services.account.audit(owner)] == [("settings", 1)]
    assert services.account.erase(owner).remaining == []
    assert services.account.audit(owner) == []

