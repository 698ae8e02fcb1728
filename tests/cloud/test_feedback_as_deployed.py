"""Feedback through the deployed API (the rehearsal): the API function records the event and the photo's overlay
in the table with its synthesized role, the table stream brings the photo to the indexer, and the document in
OpenSearch (recorded response shapes) carries what the feedback left. Every AWS call is checked against the
functions' statements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .rehearsal.journey import owner_of, upload, validate_all

pytestmark = pytest.mark.xdist_group("cloud")  # one worker builds the session's rehearsal

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "good" / "gps_exif.jpg"


def _assert_allowed(rehearsal, *names: str) -> None:
    denied = {name: rehearsal.denials(rehearsal.function(name)) for name in names}
    assert {k: v for k, v in denied.items() if v} == {}, json.dumps(denied, indent=1)


def _indexed(rehearsal, owner: str, photo_id: str) -> dict:
    indexing = rehearsal.poll_stream(rehearsal.function("Indexer"))
    assert indexing and all(i.error is None and i.result == {"batchItemFailures": []} for i in indexing)
    return rehearsal.opensearch.documents[f"{owner}#{photo_id}"].source


def test_a_custom_tag_reaches_the_index_through_the_stream_and_its_undo_takes_it_out(rehearsal):
    token, other = rehearsal.sign_in("fay"), rehearsal.sign_in("gus")
    owner = owner_of(rehearsal, token)
    photo_id = upload(rehearsal, token, SAMPLE.read_bytes(), filename=SAMPLE.name)
    assert [v.result for v in validate_all(rehearsal)] == [{"batchItemFailures": []}]
    assert "grandma's house" not in _indexed(rehearsal, owner, photo_id)["tags"]

    body = {"type": "tag_added", "photo_id": photo_id, "tag": "Grandma's House"}
    assert rehearsal.http.request("POST", "/feedback", token=other, body=body)[0] == 404
    status, event = rehearsal.http.request("POST", "/feedback", token=token, body=body)
    assert status == 201, event
    assert "grandma's house" in _indexed(rehearsal, owner, photo_id)["tags"]

    status, listed = rehearsal.http.request("GET", "/feedback", token=token, query={"photo_id": photo_id})
    assert status == 200 and [e["feedback_id"] for e in listed] == [event["feedback_id"]]
    status, undo = rehearsal.http.request("DELETE", f"/feedback/{event['feedback_id']}", token=token)
    assert status == 200 and undo["undoes"] == event["feedback_id"]
    assert "grandma's house" not in _indexed(rehearsal, owner, photo_id)["tags"]
    status, refused = rehearsal.http.request("DELETE", f"/feedback/{undo['feedback_id']}", token=token)
    assert (status, refused["code"]) == (409, "undo_refused")

    status, _ = rehearsal.http.request("POST", "/feedback", token=token,
                                       body={"type": "caption_rejected", "photo_id": photo_id})
    assert status == 201 and _indexed(rehearsal, owner, photo_id)["caption"] == ""
    photo = rehearsal.client("dynamodb").get_item(TableName=rehearsal.ref("storage", "Table"), Key={
        "PK": {"S": f"OWNER#{owner}"}, "SK": {"S": f"PHOTO#{photo_id}"}})["Item"]
    assert photo["feedback"]["M"]["caption_rejected"] == {"BOOL": True}  # this photo had no analysis caption
    _assert_allowed(rehearsal, "Api", "Indexer")

    assert rehearsal.http.request("DELETE", f"/photos/{photo_id}", token=token)[0] == 204
    items = rehearsal.client("dynamodb").scan(TableName=rehearsal.ref("storage", "Table"))["Items"]
    assert [i for i in items if photo_id in json.dumps(i)] == [], "the photo's feedback went with it"
    _assert_allowed(rehearsal, "Api")
