"""Taking one owner out of the training data's files (feedback.erasure) and the service the feedback Lambda runs
(services.training_data_erasure): the other owners' bytes stay as they were, a stripped model archive still loads,
and a file naming the owner in a shape no transform knows is reported, never guessed at."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from photo_organizer.errors import PermanentError
from photo_organizer.feedback.erasure import tombstone_key, without_owner, without_owner_lines
from photo_organizer.ports.training import OwnerErasure
from photo_organizer.services.training_data_erasure import TrainingDataErasure

ANA, BEN = "ana-0001", "ben-0002"


def archive(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_a_model_archive_loses_the_owners_entry_and_reason_and_keeps_the_rest_as_it_was():
    document = {"kind": "faces", "schema": 1, "owners": {ANA: {"coef": [1.0]}, BEN: {"coef": [2.0]}},
                "skipped": {ANA: "3 labelled face pairs", "cy-0003": "none"}, "hyperparameters": {"c": 1.0}}
    other = b'{"owners": 2}'
    stripped = without_owner(archive({"model.json": json.dumps(document).encode(), "notes/other.json": other}),
                             ANA, "runs/e/models/faces/job/output/model.tar.gz")
    assert (stripped.removed, stripped.unreadable) == (2, False)
    out = members(stripped.data)
    assert list(out) == ["model.json", "notes/other.json"] and out["notes/other.json"] == other
    assert json.loads(out["model.json"]) == {**document, "owners": {BEN: {"coef": [2.0]}}, "skipped": {"cy-0003": "none"}}


def test_json_lines_lose_the_owners_lines_and_keep_the_others_bytes_and_order():
    lines = [f'{{"owner":"{BEN}","n":1}}\n', f'{{"n":2,"owner":"{ANA}"}}\n', '\n', f'{{"owner": "{BEN}", "n":3}}\n']
    stripped = without_owner_lines("".join(lines).encode(), ANA)
    assert (stripped.removed, stripped.data) == (1, "".join(lines[:1] + lines[2:]).encode())
    assert without_owner_lines(stripped.data, ANA).removed == 0  # idempotent


def test_a_json_document_whose_records_are_the_owners_drops_them_and_a_whole_one_goes():
    summary = {"runs": [{"owner": ANA, "n": 1}, {"owner": BEN, "n": 2}], "owners": {ANA: 3, BEN: 1}}
    stripped = without_owner(json.dumps(summary).encode(), ANA, "summary.json")
    assert json.loads(stripped.data) == {"runs": [{"owner": BEN, "n": 2}], "owners": {BEN: 1}}
    assert stripped.removed == 2
    assert without_owner(json.dumps({"owner": ANA}).encode(), ANA, "one.json").data == b""


@pytest.mark.parametrize("name, data", [
    ("notes.json", json.dumps({"note": f"trained for {ANA}"}).encode()),  # a value, not a key or a record
    ("weights.bin", f"\x00{ANA}\x00".encode()),
    ("broken.json", f"{{{ANA}".encode()),
])
def test_a_file_naming_the_owner_in_a_shape_no_transform_knows_is_reported_and_left_as_it_was(name, data):
    stripped = without_owner(data, ANA, name)
    assert (stripped.data, stripped.removed, stripped.unreadable) == (data, 0, True)


def test_a_file_without_the_owner_is_left_alone_and_not_reported():
    data = json.dumps({"owners": {BEN: {}}}).encode()
    stripped = without_owner(data, ANA, "model.json")
    assert (stripped.data, stripped.changed, stripped.unreadable) == (data, False, False)


def test_the_tombstone_key_names_a_digest_of_the_owner_never_the_owner():
    assert tombstone_key(ANA).startswith("erasures/") and ANA not in tombstone_key(ANA)
    assert tombstone_key(ANA) == tombstone_key(ANA) != tombstone_key(BEN)


class Eraser:
    def __init__(self, calls: list[str], name: str, result: OwnerErasure) -> None:
        self.calls, self.name, self.result = calls, name, result

    def erase_owner(self, owner: str) -> OwnerErasure:
        self.calls.append(f"{self.name}:{owner}")
        return self.result


def test_the_service_erases_the_dataset_before_the_runs_and_reports_what_still_names_the_owner():
    calls: list[str] = []
    erasure = TrainingDataErasure(
        Eraser(calls, "dataset", OwnerErasure(removed=4, objects=3, versions_deleted=6)),
        Eraser(calls, "runs", OwnerErasure(removed=2, objects=2, versions_deleted=3, unreadable=["runs/e/x.bin"])))
    report = erasure.erase(ANA)
    assert calls == [f"dataset:{ANA}", f"runs:{ANA}"]  # the tombstone first: late lines are refused meanwhile
    assert (report.dataset_lines, report.model_entries, report.files, report.versions_deleted, report.remaining) == \
        (4, 2, 5, 9, ["runs/e/x.bin"])
    with pytest.raises(PermanentError):
        erasure.erase("../other")
