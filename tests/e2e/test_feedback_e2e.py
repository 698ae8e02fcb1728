"""Feedback end to end on the local stack: real HTTP on a loopback port, real sample photos analysed by the local
models, then corrections that change the photo view and search in the same request, undo, isolation, the
dataset files in the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from photo_organizer.feedback.dataset import record_from_line
from photo_organizer.local_stack.analysis_runner import LABEL_MODEL, analyse_library
from photo_organizer.local_stack.client import ApiError, PhotoApiClient

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
NAMES = ["chelsea.png", "rocket.jpg", "coffee_exif_gps.jpg"]


@pytest.fixture(scope="module")
def library(stack):
    assert (ROOT / LABEL_MODEL).exists(), "run `make label-model` (make test does) to export the label model"
    erin, _ = stack.identity.add_user("erin", "erin's long password")
    finn, _ = stack.identity.add_user("finn", "finn's long password")
    with PhotoApiClient(stack.url, stack.identity.issue_token(erin)) as owner, \
            PhotoApiClient(stack.url, stack.identity.issue_token(finn)) as stranger:
        ids = {name: owner.upload(SAMPLES / name) for name in NAMES}
        for photo_id in ids.values():
            owner.wait_until_processed(photo_id)
        summary = analyse_library(stack.settings.data_dir, workers=1, label_model=ROOT / LABEL_MODEL)
        assert summary.photos == len(NAMES) and not summary.failures
        yield owner, stranger, ids


def tagged(client: PhotoApiClient, tag: str) -> set[str]:
    page = client._call("GET", "/search", params={"q": "", "tag": tag}).json()
    return {item["photo_id"] for item in page["items"]}


def found_by_words(client: PhotoApiClient, query: str) -> set[str]:
    """Hits matched by their words (tags, caption, ...), not only by meaning: the local MiniLM may place any photo
    near any phrase."""
    return {item["photo_id"] for item in client.search(query)["items"] if not item["semantic_only"]}


def test_rejecting_a_tag_takes_it_off_the_photo_its_caption_and_search_until_undone(library):
    owner, _, ids = library
    cat = ids["chelsea.png"]
    before = owner.photo(cat)["analysis"]
    assert "Cat" in before["tags"] and cat in tagged(owner, "cat")
    assert before["caption"].startswith("A cat"), before["caption"]

    event = owner.feedback({"type": "tag_rejected", "photo_id": cat, "tag": "cat"})
    after = owner.photo(cat)["analysis"]
    assert "Cat" not in after["tags"]
    assert "cat" not in after["caption"].casefold()
    assert cat not in tagged(owner, "cat")

    owner.undo_feedback(event["feedback_id"])
    assert owner.photo(cat)["analysis"] == before
    assert cat in tagged(owner, "cat")
    with pytest.raises(ApiError) as twice:
        owner.undo_feedback(event["feedback_id"])
    assert twice.value.status == 409 and "already_undone" in twice.value.body


def test_a_custom_tag_is_searchable_in_the_same_request(library):
    owner, _, ids = library
    rocket = ids["rocket.jpg"]
    assert rocket not in found_by_words(owner, "school trip")
    owner.feedback({"type": "tag_added", "photo_id": rocket, "tag": "School Trip"})
    assert "school trip" in owner.photo(rocket)["analysis"]["tags"]
    hit = next(i for i in owner.search("school trip")["items"] if i["photo_id"] == rocket)
    assert {"field": "tags", "terms": ["school trip"]} in hit["matched"] and not hit["semantic_only"], hit
    assert tagged(owner, "school trip") == {rocket}


def test_another_users_photo_and_feedback_are_404_and_nothing_is_recorded(stack, library):
    owner, stranger, ids = library
    coffee = ids["coffee_exif_gps.jpg"]
    mine = owner.feedback({"type": "caption_rejected", "photo_id": coffee})
    assert owner.photo(coffee)["analysis"]["caption"] == ""
    for attempt in (
        lambda: stranger.feedback({"type": "tag_rejected", "photo_id": coffee, "tag": "cup"}),
        lambda: stranger.undo_feedback(mine["feedback_id"]),
        lambda: stranger.feedback_for(coffee),
    ):
        with pytest.raises(ApiError) as refused:
            attempt()
        assert refused.value.status == 404
    assert [e["feedback_id"] for e in owner.feedback_for(coffee)] == [mine["feedback_id"]]
    lines = [record_from_line(line)
             for path in (stack.settings.data_dir / "datasets").glob("feedback/date=*/events.jsonl")
             for line in path.read_text().splitlines()]
    assert mine["feedback_id"] in {r.feedback_id for r in lines}
    assert {r.owner for r in lines} == {stack.identity.get_user("erin").sub}, "the stranger recorded nothing"


def test_malformed_feedback_is_422_with_the_field(library):
    owner, _, ids = library
    with pytest.raises(ApiError) as bad:
        owner.feedback({"type": "tag_loved", "photo_id": ids["rocket.jpg"], "tag": "x"})
    assert bad.value.status == 422 and '"type"' in bad.value.body
