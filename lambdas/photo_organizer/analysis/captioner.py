"""The Captioner port. Default: a caption composed from what was detected (nothing invented); optional adapters
(a SageMaker endpoint) write prose from the same structured inputs and fall back to the composed one."""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

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


class ComposedCaptioner:
    """"Ana and 2 others on a beach in Lagos, Portugal · July 2024": a fixed grammar over detected facts."""

    def __init__(self, *, min_confidence: float = 80.0) -> None:
        self._min_confidence = min_confidence

    def caption(self, inputs: CaptionInputs) -> str:
        return compose_caption(
            inputs.people_names, inputs.labels, inputs.place_name, inputs.taken_at,
            min_confidence=self._min_confidence,
        )


# Words any caption may use whatever was found: grammar, counting, and what a photo is. Everything else in a
# model-written caption must come from the inputs (a label or its ancestors, a name, the place, the date, text
# read in the photo): "friends", "enjoying", "evening" or "sunset" are guesses the analysis never made.
_FUNCTION_WORDS = frozenset(
    "a an the and or with of in on at by near beside behind under over from to for into onto during around "
    "across along between among this that these those its their his her there here is are was were be being "
    "one two three four five six seven eight nine ten several some few many others other another more people "
    "person everyone someone together group photo photograph picture image shot snapshot scene view".split()
)
_MONTHS = frozenset(m.casefold() for m in calendar.month_name if m)
_WORD = re.compile(r"[^\W\d_]+|\d+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and len(word) > 3 and (word[-3] in "sxz" or word[-4:-2] in ("ch", "sh")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _grounded_vocabulary(inputs: CaptionInputs) -> set[str]:
    known = set(_FUNCTION_WORDS) | _MONTHS
    for label in inputs.labels:
        for name in (label.name, *label.parents):
            known.update(_words(name))
    for name in inputs.people_names:
        known.update(_words(name or ""))
    known.update(_words(inputs.place_name or ""))
    if inputs.taken_at is not None:
        known.add(str(inputs.taken_at.year))
    for line in inputs.text_lines:
        known.update(_words(line.text))
    return known


def ungrounded_words(caption: str, inputs: CaptionInputs) -> list[str]:
    """The words of a model-written caption that nothing in the inputs supports (empty: the caption only rewords
    what was found). Plurals match their singular ("beaches" is grounded by a Beach label)."""
    known = _grounded_vocabulary(inputs)
    return [word for word in _words(caption) if word not in known and _singular(word) not in known]
