"""`photo-organizer users delete <name>`: the local library of that user is erased (blob, record, feedback,
embedding), the sign-in goes, the audit prints nothing remains; another user's photo stays."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from typer.testing import CliRunner

from photo_organizer.bootstrap import build_services, local_settings
from photo_organizer.cli import app
from photo_organizer.feedback.models import FeedbackRecord, FeedbackType, new_feedback_id, overlay_of
from photo_organizer.keys import PhotoKeys
from photo_organizer.local_stack.identity import LocalIdentityProvider
from photo_organizer.models import ImageFormat, ImageMetadata, Photo, PhotoStatus, utcnow
from photo_organizer.services.account_erasure import Remaining


def add_photo(services, owner: str, photo_id: str) -> None:
    now = utcnow()
    pending = Photo(owner=owner, photo_id=photo_id, status=PhotoStatus.PENDING_UPLOAD, filename="a.jpg",
                    declared_content_type="image/jpeg", declared_size=4, created_at=now, updated_at=now)
    services.metadata.create_photo(pending, pending_ttl=timedelta(days=1))
    metadata = ImageMetadata(format=ImageFormat.JPEG, width=4, height=4, byte_size=4,
                             sha256=(owner + photo_id).encode().hex().ljust(64, "0")[:64], phash="0123456789abcdef")
    services.metadata.finish_photo(
        pending.model_copy(update={"status": PhotoStatus.READY, "metadata": metadata, "original_version": "v1"}),
        expected_status=PhotoStatus.PENDING_UPLOAD)
    services.originals.put(PhotoKeys.for_photo(owner, photo_id).original, b"jpeg", content_type="image/jpeg")
    services.features.save_image_embedding(owner, photo_id, np.ones(1280, dtype=np.float32) / np.sqrt(1280))
    record = FeedbackRecord(feedback_id=new_feedback_id(), owner=owner, type=FeedbackType.TAG_ADDED,
                            created_at=now, photo_id=photo_id, tag="mine")
    services.feedback_store.record(record, overlay=overlay_of([record]))


def library_of_jo_and_kim(tmp_path):
    """jo (the user to delete) and kim (who stays), with the local services over their data folder."""
    data = tmp_path / "data"
    identity = LocalIdentityProvider(data, issuer="http://127.0.0.1/auth")
    leaving, _ = identity.add_user("jo", "jo's long password")
    staying, _ = identity.add_user("kim", "kim's long password")
    return data, identity, leaving, staying, build_services(local_settings(data))


def test_users_delete_erases_the_library_and_the_sign_in_and_audits_nothing_left(tmp_path) -> None:
    data, identity, leaving, staying, services = library_of_jo_and_kim(tmp_path)
    add_photo(services, leaving.sub, "0123456789abcdef0123456789abcdef")
    add_photo(services, staying.sub, "fedcba9876543210fedcba9876543210")

    audit = CliRunner().invoke(app, ["users", "delete", "jo", "--audit-only", "--data-dir", str(data)])
    assert audit.exit_code == 1 and "photo records: 1" in audit.output and "blobs: 1" in audit.output

    result = CliRunner().invoke(app, ["users", "delete", "jo", "--data-dir", str(data)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "photos=1" in result.output and "image_embeddings=1" in result.output
    assert "nothing remains" in result.output
    assert identity.get_user("jo") is None
    assert not services.originals.exists(PhotoKeys.for_photo(leaving.sub, "0123456789abcdef0123456789abcdef").original)
    assert services.feedback_store.events(leaving.sub) == []
    assert services.metadata.photo_ids(staying.sub) == ["fedcba9876543210fedcba9876543210"]
    assert services.originals.exists(PhotoKeys.for_photo(staying.sub, "fedcba9876543210fedcba9876543210").original)
    assert len(services.feedback_store.events(staying.sub)) == 1
    assert services.account.audit(staying.sub), "kim's library is still there"


def test_users_delete_takes_the_user_out_of_the_models_and_waits_for_a_running_retraining(tmp_path) -> None:
    """The local registry's model files hold every owner: the audit lists them until the user's entries are out.
    While a retraining runs (it may have read the user's data already) the erasure is not finished: it says so,
    the account stays marked, and running it again afterwards finishes."""
    import json

    from photo_organizer.adapters.local.run_lock import LocalRunLock
    from photo_organizer.bootstrap import local_model_registry

    data, identity, leaving, staying, services = library_of_jo_and_kim(tmp_path)
    add_photo(services, staying.sub, "fedcba9876543210fedcba9876543210")
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    owners = {leaving.sub: {"tags": ["jo's secret"]}, staying.sub: {"tags": ["kim's tag"]}}
    (candidate / "model.json").write_text(json.dumps({"kind": "tagging", "owners": owners}))
    version = local_model_registry(data).register("tagging", candidate, {"examples": 3}, approve=True)
    assert services.account.audit(leaving.sub) == [Remaining("training files", 1)]

    with LocalRunLock(data / "retraining" / ".lock")():  # `photo-organizer retrain` in another terminal
        busy = CliRunner().invoke(app, ["users", "delete", "jo", "--data-dir", str(data)], terminal_width=200)
    assert busy.exit_code == 1 and "retraining under way: 1" in busy.output and "training files: 1" in busy.output
    assert identity.get_user("jo") is not None and services.user_settings.account_erasing(leaving.sub)

    done = CliRunner().invoke(app, ["users", "delete", "jo", "--data-dir", str(data)], terminal_width=200)
    assert done.exit_code == 0 and "model_entries=1" in done.output and "nothing remains" in done.output, done.output
    document = json.loads((version.path / "model.json").read_text())
    assert document["owners"] == {staying.sub: {"tags": ["kim's tag"]}}
    assert local_model_registry(data).approved("tagging").version == version.version
