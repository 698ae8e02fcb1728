"""SageMakerCaptioner against botocore's Stubber (moto's SageMaker runs nothing): the exact InvokeEndpoint request,
and the Hugging Face TGI / JumpStart text-generation response shapes, `[{"generated_text": ...}]` and the bare
`{"generated_text": ...}`. Every failure falls back to the composed caption."""

from __future__ import annotations

import io
import json
from datetime import datetime

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from photo_organizer.adapters.aws.sagemaker_captioner import SageMakerCaptioner, build_prompt
from photo_organizer.analysis.captioner import CaptionInputs, ComposedCaptioner, ungrounded_words
from photo_organizer.analysis.models import Label, TextLine

ENDPOINT = "po-captioner"
INPUTS = CaptionInputs(
    people_names=["Ana", None, None],
    labels=[Label(name="Beach", confidence=96.5), Label(name="Sea", confidence=96.5), Label(name="Sand", confidence=61)],
    place_name="Lagos, Portugal",
    taken_at=datetime(2024, 7, 14, 18, 30),
    text_lines=[TextLine(text="IT'S", confidence=99.4), TextLine(text="MONDAY", confidence=99.1)],
)
COMPOSED = "Ana and 2 others on a beach in Lagos, Portugal · July 2024"


def body(payload: object) -> StreamingBody:
    raw = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return StreamingBody(io.BytesIO(raw), len(raw))


def expected_request() -> dict[str, object]:
    return {
        "EndpointName": ENDPOINT,
        "ContentType": "application/json",
        "Accept": "application/json",
        "Body": json.dumps({"inputs": build_prompt(INPUTS), "parameters": {"max_new_tokens": 40}}),
    }


@pytest.fixture
def runtime():
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield stubber, SageMakerCaptioner(ENDPOINT, fallback=ComposedCaptioner(), client_factory=lambda: client)


def test_composed_caption_uses_only_detections():
    assert ComposedCaptioner().caption(INPUTS) == COMPOSED
    assert ComposedCaptioner().caption(CaptionInputs()) == ""


def test_prompt_holds_only_the_structured_results():
    prompt = build_prompt(INPUTS)

    assert "People: Ana, 2 unnamed" in prompt
    assert "Things seen: Beach, Sea\n" in prompt  # Sand (61%) is below the prompt's confidence floor
    assert "Place: Lagos, Portugal" in prompt and "Date: July 2024" in prompt
    assert 'Text in the photo: "IT\'S", "MONDAY"' in prompt
    assert prompt.endswith("Caption:")
    assert "People" not in build_prompt(CaptionInputs(place_name="Porto"))


@pytest.mark.parametrize(
    "response",
    [
        [{"generated_text": " Ana and two others on the beach by the sea in Lagos, July 2024.\nCaption 2: x"}],
        {"generated_text": "Ana and two others on the beach by the sea in Lagos, July 2024."},
    ],
    ids=["tgi-list", "bare-object"],
)
def test_generated_caption_request_and_documented_response_shape(runtime, response):
    stubber, captioner = runtime
    stubber.add_response(
        "invoke_endpoint", {"Body": body(response), "ContentType": "application/json"}, expected_request()
    )

    assert captioner.caption(INPUTS) == "Ana and two others on the beach by the sea in Lagos, July 2024."
    stubber.assert_no_pending_responses()


def test_prompt_echo_is_removed_request_and_documented_response_shape(runtime):
    stubber, captioner = runtime
    echoed = build_prompt(INPUTS) + " Ana and others at the beaches"
    stubber.add_response("invoke_endpoint", {"Body": body([{"generated_text": echoed}])}, expected_request())

    assert captioner.caption(INPUTS) == "Ana and others at the beaches"


@pytest.mark.parametrize(
    "answer",
    [
        "Ana and two friends enjoying a July evening on the beach in Lagos.",  # friends, enjoying, evening
        "Ana with her dog on the beach in Lagos.",  # no dog was found
        "Ana on a beach in Faro, July 2024.",  # another place
    ],
    ids=["relationship-and-activity", "object", "place"],
)
def test_a_caption_saying_what_was_not_found_falls_back_request_and_documented_response_shape(runtime, answer):
    stubber, captioner = runtime
    stubber.add_response("invoke_endpoint", {"Body": body([{"generated_text": answer}])}, expected_request())

    assert captioner.caption(INPUTS) == COMPOSED


def test_grounding_accepts_label_ancestors_text_read_and_plurals():
    inputs = CaptionInputs(
        labels=[Label(name="Golden Retriever", confidence=92, parents=("Dog", "Pet", "Animal"))],
        text_lines=[TextLine(text="HAPPY BIRTHDAY", confidence=98)],
        taken_at=datetime(2023, 5, 1),
    )
    assert ungrounded_words("A pet dog under a Happy Birthday banner, May 2023", inputs) == ["banner"]
    assert ungrounded_words("Two dogs and a golden retriever, May 2023", inputs) == []


@pytest.mark.parametrize(
    "payload",
    [[{"generated_text": "   "}], [], {"error": "Input validation error"}, [{"text": "x"}], b"not json"],
    ids=["blank", "empty-list", "error-object", "wrong-key", "not-json"],
)
def test_empty_or_unexpected_answer_falls_back_request_and_documented_response_shape(runtime, payload):
    stubber, captioner = runtime
    stubber.add_response("invoke_endpoint", {"Body": body(payload)}, expected_request())

    assert captioner.caption(INPUTS) == COMPOSED


@pytest.mark.parametrize(
    "code, status", [("ModelError", 424), ("ServiceUnavailable", 503), ("ValidationError", 400),
                     ("ModelNotReadyException", 429)],
)
def test_endpoint_error_falls_back_request_and_documented_response_shape(runtime, code, status):
    stubber, captioner = runtime
    stubber.add_client_error(
        "invoke_endpoint", service_error_code=code, http_status_code=status, expected_params=expected_request()
    )

    assert captioner.caption(INPUTS) == COMPOSED
    stubber.assert_no_pending_responses()


def test_unreachable_endpoint_falls_back():
    class Unreachable:
        def invoke_endpoint(self, **_: object) -> None:
            raise EndpointConnectionError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com")

    captioner = SageMakerCaptioner(ENDPOINT, fallback=ComposedCaptioner(), client_factory=Unreachable)

    assert captioner.caption(CaptionInputs(place_name="Porto")) == "Porto"
