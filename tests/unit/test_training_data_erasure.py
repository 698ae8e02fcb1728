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


def evaluation(labels: list[str], candidate: list[list], approved: list[list]) -> dict:
    """evaluate.py's evaluation.json (the local registry's metrics.json is its kind's section): per-label scores
    and the held-out evidence whose rows index the labels."""
    per_tag = {label: 0.5 for label in labels}
    return {"tagging": {"candidate": {"macro_f1": 0.8, "per_tag": per_tag, "owners": 2},
                        "approved": {"macro_f1": 0.6, "per_tag": per_tag}, "examples": 4,
                        "held_out": {"examples": 4, "labels": labels, "answers": {"positive tag labels": 3},
                                     "candidate": candidate, "approved": approved}},
            "faces": {"candidate": {"pair_f1": 0.9}, "pairs": 2,
                      "held_out": {"examples": 2, "labels": ["same person"], "answers": {},
                                   "candidate": [[0, 0, 1.0, 0.0, 0.0]], "approved": [[1, 0, 0.0, 1.0, 0.0]]}}}


def test_an_evaluation_loses_the_owners_labels_and_their_held_out_rows_and_stays_one_the_gate_reads():
    from photo_organizer.learning.promotion import decide

    labels = [f"{ANA}/cat", f"{BEN}/white house", f"{ANA}/secret place", f"{BEN}/dog"]
    before = evaluation(labels, candidate=[[0, 0, 1.0, 0, 0], [1, 1, 1.0, 0, 0], [2, 2, 0, 0, 1.0], [3, 3, 1.0, 0, 0]],
                        approved=[[1, 1, 0, 0, 1.0], [2, 2, 0, 1.0, 0], [3, 3, 1.0, 0, 0]])
    stripped = without_owner(json.dumps(before).encode(), BEN, "runs/e/evaluation/evaluation.json")
    after = json.loads(stripped.data)
    assert not stripped.unreadable and BEN.encode() not in stripped.data
    held_out = after["tagging"]["held_out"]
    assert held_out["labels"] == [f"{ANA}/cat", f"{ANA}/secret place"]
    assert held_out["candidate"] == [[0, 0, 1.0, 0, 0], [2, 1, 0, 0, 1.0]]  # ANA's rows, renumbered
    assert held_out["approved"] == [[2, 1, 0, 1.0, 0]]
    assert after["tagging"]["candidate"]["per_tag"] == {f"{ANA}/cat": 0.5, f"{ANA}/secret place": 0.5}
    assert after["faces"] == before["faces"], "nothing names an owner there"
    assert stripped.removed == 2 * 2 + 2 + 4  # per_tag keys (candidate, approved), labels, rows
    assert decide(after, "tagging", 0.01, 1, min_each_answer=1).resamples > 0, "still evidence the gate resamples"
    assert without_owner(stripped.data, BEN, "evaluation.json").removed == 0  # idempotent


def test_a_training_summary_listing_the_owners_loses_the_owners_id():
    summary = {"owners": [ANA, BEN], "skipped": {BEN: "3 reviewed photos"}}
    stripped = without_owner(json.dumps(summary).encode(), BEN, "tagging_training.json")
    assert json.loads(stripped.data) == {"owners": [ANA], "skipped": {}} and not stripped.unreadable


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
