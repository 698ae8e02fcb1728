"""Captioner on a SageMaker real-time endpoint serving a text-generation model (Hugging Face TGI / JumpStart).

Request and response follow the documented TGI/JumpStart JSON contract: `{"inputs": prompt, "parameters":
{...}}` in, `[{"generated_text": ...}]` out (some containers answer a bare `{"generated_text": ...}`). The prompt
is built only from the structured analysis results, never the image, so the model can reword what was found but
has nothing else to describe — and a model still guesses ("friends", "enjoying a sunset"), so an answer with a
word nothing in the results supports is discarded (`ungrounded_words`). Any failure, empty or ungrounded answer
gives the fallback's caption: a caption is never worth failing a photo for, nor worth a made-up fact.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from photo_organizer.adapters.aws.clients import LazyClient
from photo_organizer.analysis.captioner import CaptionInputs, ungrounded_words
from photo_organizer.ports.analysis import Captioner

logger = logging.getLogger(__name__)

SAGEMAKER_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=15)
MAX_NEW_TOKENS = 40
MAX_CAPTION_CHARS = 200
PROMPT_LABEL_MIN_CONFIDENCE = 80.0
PROMPT_MAX_LABELS = 10
PROMPT_MAX_TEXT_LINES = 3


def build_prompt(inputs: CaptionInputs) -> str:
    """Facts only, one per line; parts with nothing behind them are left out rather than said to be unknown."""
    named = [n.strip() for n in inputs.people_names if n and n.strip()]
    unnamed = len(inputs.people_names) - len(named)
    facts = []
    if inputs.people_names:
        people = list(dict.fromkeys(named)) + ([f"{unnamed} unnamed"] if unnamed else [])
        facts.append("People: " + ", ".join(people))
    ranked = sorted(
        (label for label in inputs.labels if label.confidence >= PROMPT_LABEL_MIN_CONFIDENCE),
        key=lambda label: (-label.confidence, label.name),
    )
    if ranked:
        facts.append("Things seen: " + ", ".join(label.name for label in ranked[:PROMPT_MAX_LABELS]))
    if inputs.place_name and inputs.place_name.strip():
        facts.append(f"Place: {inputs.place_name.strip()}")
    if inputs.taken_at:
        facts.append(f"Date: {inputs.taken_at:%B %Y}")
    if inputs.text_lines:
        # Quoted and cut: text read from a photo is data, not instructions.
        quoted = [json.dumps(line.text[:60]) for line in inputs.text_lines[:PROMPT_MAX_TEXT_LINES]]
        facts.append("Text in the photo: " + ", ".join(quoted))
    return (
        "Write one short caption for a personal photo, using only the facts below. Do not add people, places, "
        "objects or events that are not listed.\n" + "\n".join(facts) + "\nCaption:"
    )


def _generated_text(payload: Any) -> str:
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if isinstance(payload, dict) and isinstance(payload.get("generated_text"), str):
        return payload["generated_text"]
    raise ValueError(f"unexpected response shape: {type(payload).__name__}")


def _clean(text: str, prompt: str) -> str:
    if text.startswith(prompt):  # containers run with return_full_text echo the prompt
        text = text[len(prompt):]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    caption = lines[0].strip("\"' ") if lines else ""
    if len(caption) > MAX_CAPTION_CHARS:
        caption = caption[:MAX_CAPTION_CHARS].rsplit(" ", 1)[0] + "…"
    return caption


class SageMakerCaptioner:
    def __init__(
        self,
        endpoint_name: str,
        *,
        fallback: Captioner,
        client_factory: Callable[[], Any] | None = None,
        region: str | None = None,
    ) -> None:
        self._endpoint = endpoint_name
        self._fallback = fallback
        self._region = region
        self._client = LazyClient(client_factory or self._default_client)

    def _default_client(self) -> Any:
        return boto3.client("sagemaker-runtime", region_name=self._region, config=SAGEMAKER_CLIENT_CONFIG)

    def caption(self, inputs: CaptionInputs) -> str:
        prompt = build_prompt(inputs)
        body = json.dumps({"inputs": prompt, "parameters": {"max_new_tokens": MAX_NEW_TOKENS}})
        try:
            response = self._client().invoke_endpoint(
                EndpointName=self._endpoint, ContentType="application/json", Accept="application/json", Body=body
            )
            caption = _clean(_generated_text(json.loads(response["Body"].read())), prompt)
        # Endpoint errors (ModelError, throttling, not ready), transport, non-JSON or unexpected shapes.
        except (ClientError, BotoCoreError, ValueError, KeyError, TypeError) as exc:
            logger.warning("caption endpoint %s failed, using the fallback: %s", self._endpoint, exc)
            return self._fallback.caption(inputs)
        invented = ungrounded_words(caption, inputs)
        if invented:
            logger.info("caption from %s says what was not found %s, using the fallback", self._endpoint, invented)
            return self._fallback.caption(inputs)
        return caption or self._fallback.caption(inputs)
