"""Steps of the journey that several tests share: upload through the deployed API and the browser's presigned POST,
then let the event sources deliver (the upload queue to the validator, the table stream to the indexer)."""

from __future__ import annotations


def upload(rehearsal, token: str, data: bytes, *, filename: str, content_type: str = "image/jpeg") -> str:
    status, ticket = rehearsal.http.request("POST", "/uploads", token=token, body={
        "filename": filename, "content_type": content_type, "size": len(data)})
    assert status == 201, ticket
    assert rehearsal.browser_post(ticket, data, filename=filename) == 204
    return ticket["photo_id"]


def validate_all(rehearsal) -> list:
    validator = rehearsal.function("Validator")
    invocations = []
    while (invocation := rehearsal.poll_queue(validator)) is not None:
        invocations.append(invocation)
    return invocations


def owner_of(rehearsal, token: str) -> str:
    return rehearsal.http.claims(rehearsal.http.routes["GET /photos"], token)["sub"]
