"""The Captioner port. Default: a caption composed from what was detected (nothing invented); optional adapters
(a SageMaker endpoint) write prose from the same structured inputs and fall back to the composed one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from photo_organizer.analysis.captions import compose_caption
from photo_organizer.analysis.models import Label, TextLine


@dataclass(frozen=True)
class CaptionInputs:
    """Everything a captioner may use. Only structured results: a captioner never sees the image, so it cannot
    describe what the analysis did not find."""

    people_names: Sequence[str | None] = ()  # one entry per detected face; None for a face not named yet
    labels: Sequence[Label] = ()
    place_name: str | None = None  # "Lagos, Portugal", from offline reverse geocoding
    taken_at: datetime | date | None = None
    text_lines: Sequence[TextLine] = ()


class Captioner(Protocol):
    def caption(self, inputs: CaptionInputs) -> str:
        """One short caption; "" when nothing is known. Never raises for bad model output: falls back instead."""
        ...


class ComposedCaptioner:
    """"Ana and 2 others on a beach in Lagos, Portugal · July 2024": a fixed grammar over detected facts."""

    def __init__(self, *, min_confidence: float = 80.0) -> None:
        self._min_confidence = min_confidence

    def caption(self, inputs: CaptionInputs) -> str:
        return compose_caption(
            inputs.people_names, inputs.labels, inputs.place_name, inputs.taken_at,
            min_confidence=self._min_confidence,
        )
