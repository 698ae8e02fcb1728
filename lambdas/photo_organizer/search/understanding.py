"""Query understanding: a natural phrase becomes structured filters plus plain free text, never query syntax.

"beach with Ana in Lisbon 2023" -> tag beach, person Ana, place Lisbon, taken in 2023. Only words the owner's own
library knows (their people, places and tags, from facets) become people/place/tag filters; dates are parsed
against an injected `now`; stop words are dropped; everything else stays, as typed, in the free text. Quotes,
colons, brackets and `*` carry no meaning here: they separate words and are dropped, so the text handed to a
backend is only words (which the backend still treats as plain text).

Rules worth knowing:
- People and tags are conjunctive ("Ana and Ben" = photos with both; "dogs and cats" = both tags).
- One place filter; a second known place stays free text.
- Several date expressions give the span covering all of them ("2019 to 2021" = 2019-01-01 .. 2022-01-01).
- Seasons are meteorological and **northern-hemisphere** (spring Mar–May, summer Jun–Aug, autumn Sep–Nov, winter
  Dec–Feb, winter Y = Dec Y .. Mar Y+1): most of the expected users are there. A query whose place is in the
  southern hemisphere ("summer in Sydney") means Dec–Feb; flipping on the place's latitude is left for later.
- "last summer" is the most recent *completed* summer; "summer" alone is the most recent one that has begun;
  "this summer" is this year's. Likewise "last March" vs "March"/"in march" (the most recent March that has
  begun). "last week" is the previous Monday-start week; "2 years ago" is the whole calendar year two back;
  "last 7 days" / "past 3 months" are rolling windows ending at `now`.
- Ranges are [start, end) in `now`'s time zone (naive `now` gives naive ranges).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from photo_organizer.search.models import DateRange, SearchQuery

MAX_QUERY_WORDS = 64  # the API caps the query's length; this bounds the work if a caller forgets
MAX_PHRASE_WORDS = 5

STOP_WORDS = frozenset(
    "photos photo pictures picture pics pic images image shots shot videos video "
    "of with in at from and the my a an on to for during taken show me all any some our".split()
)
PLACE_HINTS = frozenset({"in", "at", "from", "near"})
PERSON_HINTS = frozenset({"with", "of", "and"})

MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
# Month words that are also ordinary words count as months only next to a year or after "in"/"last"/"this".
AMBIGUOUS_MONTHS = frozenset({"may", "mar", "jan", "jun", "sep", "oct", "dec", "march", "august"})
SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}  # first month (northern hemisphere)
UNITS = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month", "months": "month",
         "year": "year", "years": "year"}
NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"]

# Words: letters/digits, with . ' ’ - allowed inside ("12.50", "o'brien", "ana-maria", "2024-07-14").
_WORD = re.compile(r"\w+(?:[.'’\-]\w+)*")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")
_DECADE = re.compile(r"(\d{4})s")


def fold(text: str) -> str:
    """Case- and accent-insensitive key: "Lisbôa" and "LISBOA" both give "lisboa"."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _phrase_key(text: str) -> str:
    """Key of a vocabulary phrase: folded words joined by one space ("Ana-Maria" == "ana maria")."""
    return " ".join(w for w in re.split(r"[\s\-]+", " ".join(_WORD.findall(fold(text)))) if w)


def _plurals(tag: str) -> set[str]:
    head, _, last = tag.rpartition(" ")
    prefix = head + " " if head else ""
    irregular = {"person": "people", "child": "children", "man": "men", "woman": "women", "mouse": "mice",
                 "goose": "geese", "foot": "feet", "tooth": "teeth", "leaf": "leaves", "knife": "knives"}
    forms = {last + "s"}
    if last in irregular:
        forms = {irregular[last]}
    elif re.search(r"(s|x|z|ch|sh)$", last):
        forms = {last + "es"}
    elif re.search(r"[^aeiou]y$", last):
        forms = {last[:-1] + "ies"}
    elif re.search(r"[^aeiou]o$", last):
        forms = {last + "s", last + "es"}  # photos, potatoes
    return {prefix + f for f in forms}


@dataclass(frozen=True)
class QueryVocabulary:
    """What this owner's library knows, keyed by `_phrase_key`: built from their facets, never shared."""

    people: Mapping[str, str] = field(default_factory=dict)  # key -> person_id
    person_names: Mapping[str, str] = field(default_factory=dict)  # person_id -> display name
    places: Mapping[str, str] = field(default_factory=dict)  # key -> place as stored (city/region/country)
    tags: Mapping[str, str] = field(default_factory=dict)  # key (tag, plural or synonym) -> tag

    @classmethod
    def build(cls, *, people: Iterable[tuple[str, str]] = (), places: Iterable[str] = (), tags: Iterable[str] = (),
              synonyms: Mapping[str, str] | None = None) -> QueryVocabulary:
        """people: (person_id, name) pairs. A person is also found by first name when no one else of the owner
        shares it. Tags get their plural forms; synonyms map extra words to a tag (only tags that exist)."""
        by_key: dict[str, str] = {}
        names: dict[str, str] = {}
        first_names: dict[str, set[str]] = {}
        for person_id, name in people:
            key = _phrase_key(name or "")
            if not key:
                continue
            names[person_id] = " ".join(name.split())
            by_key.setdefault(key, person_id)
            first_names.setdefault(key.split(" ")[0], set()).add(person_id)
        for first, ids in first_names.items():
            if len(ids) == 1 and first not in by_key:
                by_key[first] = next(iter(ids))
        place_keys = {k: p for p in places if (k := _phrase_key(p))}
        tag_keys: dict[str, str] = {}
        known = {_phrase_key(t): t for t in tags if _phrase_key(t)}
        for key, tag in known.items():
            for plural in _plurals(key):
                tag_keys.setdefault(plural, tag)
        for word, tag in (synonyms or {}).items():
            if _phrase_key(tag) in known and (word_key := _phrase_key(word)):
                for form in {word_key, *_plurals(word_key)}:
                    tag_keys.setdefault(form, known[_phrase_key(tag)])
        tag_keys.update(known)  # a tag itself wins over another tag's plural or synonym
        return cls(people=by_key, person_names=names, places=place_keys, tags=tag_keys)


class ChipKind(StrEnum):
    PERSON = "person"
    PLACE = "place"
    TAG = "tag"
    DATE = "date"
    TEXT = "text"


class Chip(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: ChipKind
    value: str  # person id, place, tag, "start/end" (ISO) or the free text
    display: str
    relaxed: bool = False  # the strict reading found nothing: this part was made optional (search.parts)


class ParsedQuery(BaseModel):
    model_config = ConfigDict(frozen=True)
    query: SearchQuery
    chips: tuple[Chip, ...]
    remaining_text: str
    semantic_text: str  # what to embed: the words that carry meaning (no dates, no stop words)
    typed: dict[str, str] = {}  # tag or place chip value -> the words as the user typed them


@dataclass(frozen=True)
class _Word:
    raw: str
    key: str  # folded


@dataclass(frozen=True)
class _Span:
    start: datetime
    end: datetime
    display: str


# --- dates ------------------------------------------------------------------------------------------------------


def _at(now: datetime, d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=now.tzinfo)


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _month(now: datetime, year: int, month: int) -> _Span:
    start = date(year, month, 1)
    return _Span(_at(now, start), _at(now, _add_months(start, 1)), f"{MONTH_NAMES[month - 1]} {year}")


def _season(now: datetime, name: str, year: int) -> _Span:
    start = date(year, SEASONS[name], 1)
    label = name.capitalize() + (f" {year}–{(year + 1) % 100:02d}" if name == "winter" else f" {year}")
    return _Span(_at(now, start), _at(now, _add_months(start, 3)), label)


def _year(now: datetime, year: int) -> _Span:
    return _Span(_at(now, date(year, 1, 1)), _at(now, date(year + 1, 1, 1)), str(year))


def _day(now: datetime, d: date, label: str | None = None) -> _Span:
    return _Span(_at(now, d), _at(now, d + timedelta(days=1)), label or f"{d.day} {d:%b %Y}")


def _week(now: datetime, monday: date, label: str) -> _Span:
    return _Span(_at(now, monday), _at(now, monday + timedelta(days=7)), label)


def _calendar_unit(now: datetime, unit: str, back: int, label: str) -> _Span:
    today = now.date()
    if unit == "day":
        return _day(now, today - timedelta(days=back), label)
    if unit == "week":
        return _week(now, today - timedelta(days=today.weekday() + 7 * back), label)
    if unit == "month":
        start = _add_months(today.replace(day=1), -back)
        return _Span(_at(now, start), _at(now, _add_months(start, 1)), label)
    return _Span(_at(now, date(today.year - back, 1, 1)), _at(now, date(today.year - back + 1, 1, 1)), label)


def _months_back(d: date, months: int) -> date:
    first = _add_months(d.replace(day=1), -months)
    last_day = (_add_months(first, 1) - timedelta(days=1)).day
    return first.replace(day=min(d.day, last_day))


def _rolling(now: datetime, unit: str, count: int, label: str) -> _Span:
    today = now.date()
    if unit in ("month", "year"):
        start = _months_back(today, count * (12 if unit == "year" else 1))
    else:
        start = today - timedelta(days=count * (7 if unit == "week" else 1))
    return _Span(_at(now, start), now, label)


def _as_year(key: str) -> int | None:
    return int(key) if key.isdigit() and len(key) == 4 and 1900 <= int(key) <= 2100 else None


def _as_count(key: str) -> int | None:
    if key.isdigit() and 0 < int(key) <= 200:
        return int(key)
    return NUMBER_WORDS.get(key)


def _season_start_year(now: datetime, name: str, *, completed: bool) -> int:
    """Year of the most recent season `name` that has begun (or, if completed, ended) by `now`."""
    today = now.date()
    year = today.year
    start = date(year, SEASONS[name], 1)
    while True:
        end = _add_months(start, 3)
        if (end if completed else start) <= today:
            return start.year
        year -= 1
        start = date(year, SEASONS[name], 1)


def _recent_month_year(now: datetime, month: int, *, completed: bool) -> int:
    today = now.date()
    year = today.year
    while True:
        start = date(year, month, 1)
        if (_add_months(start, 1) if completed else start) <= today:
            return year
        year -= 1


def _match_date(words: list[_Word], i: int, now: datetime, prev: str | None) -> tuple[int, _Span] | None:
    """The longest date expression starting at words[i]: (number of words, span)."""
    k = [w.key for w in words[i : i + 4]] + [""] * 4
    a, b, c = k[0], k[1], k[2]
    today = now.date()

    if a in ("today", "tonight"):
        return 1, _day(now, today, "Today")
    if a == "yesterday":
        return 1, _day(now, today - timedelta(days=1), "Yesterday")
    # "2 years ago", "a week ago"
    if (n := _as_count(a)) is not None and b in UNITS and c == "ago":
        unit = UNITS[b]
        return 3, _calendar_unit(now, unit, n, f"{a} {b} ago")
    if a in ("last", "past", "previous", "this", "current"):
        # "last 7 days", "past three months": rolling windows ending now
        if (n := _as_count(b)) is not None and c in UNITS and a != "this":
            return 3, _rolling(now, UNITS[c], n, f"{a.capitalize()} {b} {c}")
        back = 0 if a in ("this", "current") else 1
        if b in UNITS and b in ("day", "week", "month", "year"):
            if a == "past":
                return 2, _rolling(now, UNITS[b], 1, f"Past {b}")
            return 2, _calendar_unit(now, UNITS[b], back, f"{a.capitalize()} {b}")
        if b == "weekend":
            saturday = today - timedelta(days=(today.weekday() - 5) % 7)
            if back and saturday + timedelta(days=2) > today:
                saturday -= timedelta(days=7)
            return 2, _Span(_at(now, saturday), _at(now, saturday + timedelta(days=2)), f"{a.capitalize()} weekend")
        if b in SEASONS:
            name = "autumn" if b == "fall" else b
            year = today.year if back == 0 else _season_start_year(now, name, completed=True)
            if back == 0 and name == "winter" and today.month < 3:
                year -= 1  # January's "this winter" began last December
            return 2, _season(now, name, year)
        if b in MONTHS:
            year = today.year if back == 0 else _recent_month_year(now, MONTHS[b], completed=True)
            return 2, _month(now, year, MONTHS[b])
    # "summer 2023", "summer of 2023", "summer"
    if a in SEASONS:
        name = "autumn" if a == "fall" else a
        if (y := _as_year(b)) is not None:
            return 2, _season(now, name, y)
        if b == "of" and (y := _as_year(c)) is not None:
            return 3, _season(now, name, y)
        if a == "fall" and prev not in ("in", "during", "last", "this"):
            return None  # "fall" is also a verb and a noun ("water fall")
        return 1, _season(now, name, _season_start_year(now, name, completed=False))
    # "July 2024", "march of 2021", "in march"
    if a in MONTHS:
        if (y := _as_year(b)) is not None:
            return 2, _month(now, y, MONTHS[a])
        if b == "of" and (y := _as_year(c)) is not None:
            return 3, _month(now, y, MONTHS[a])
        if a in AMBIGUOUS_MONTHS and prev not in ("in", "during", "since"):
            return None
        return 1, _month(now, _recent_month_year(now, MONTHS[a], completed=False), MONTHS[a])
    if (y := _as_year(a)) is not None:
        return 1, _year(now, y)
    if m := _DECADE.fullmatch(a):
        start = int(m.group(1))
        if start % 10 == 0 and 1900 <= start <= 2090:
            return 1, _Span(_at(now, date(start, 1, 1)), _at(now, date(start + 10, 1, 1)), f"{start}s")
    if m := _ISO_DATE.fullmatch(a):
        year, month = int(m.group(1)), int(m.group(2))
        try:
            if m.group(3):
                return 1, _day(now, date(year, month, int(m.group(3))))
            if 1 <= month <= 12:
                return 1, _month(now, year, month)
        except ValueError:
            return None
    return None


# --- vocabulary ----------------------------------------------------------------------------------------------------


def _match_vocabulary(words: list[_Word], i: int, vocabulary: QueryVocabulary, prev: str | None):
    """Longest known phrase at words[i] -> (length, kind, value); ties between kinds go by the word before
    ("with Rose" is a person, "in Florence" a place), then person > place > tag."""
    for length in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
        key = _phrase_key(" ".join(w.raw for w in words[i : i + length]))
        if length == 1 and words[i].key in STOP_WORDS:
            return None
        found = []
        if key in vocabulary.people:
            found.append((ChipKind.PERSON, vocabulary.people[key]))
        if key in vocabulary.places:
            found.append((ChipKind.PLACE, vocabulary.places[key]))
        if key in vocabulary.tags:
            found.append((ChipKind.TAG, vocabulary.tags[key]))
        if not found:
            continue
        preferred = ChipKind.PLACE if prev in PLACE_HINTS else ChipKind.PERSON if prev in PERSON_HINTS else None
        for kind, value in found:
            if kind == preferred:
                return length, kind, value
        return length, *found[0]
    return None


def understand(text: str, *, owner: str, now: datetime, vocabulary: QueryVocabulary) -> ParsedQuery:
    words = [_Word(m.group(0), fold(m.group(0))) for m in _WORD.finditer(text or "")][:MAX_QUERY_WORDS]
    chips: list[Chip] = []
    free: list[str] = []
    meaning: list[str] = []
    tags: list[str] = []
    people: list[str] = []
    place: str | None = None
    spans: list[_Span] = []
    typed: dict[str, str] = {}
    prev: str | None = None  # folded word just before, for hints
    i = 0
    while i < len(words):
        if (date_match := _match_date(words, i, now, prev)) is not None:
            length, span = date_match
            spans.append(span)
        elif (known := _match_vocabulary(words, i, vocabulary, prev)) is not None:
            length, kind, value = known
            if kind is ChipKind.PERSON and value not in people:
                people.append(value)
                chips.append(Chip(kind=kind, value=value, display=vocabulary.person_names.get(value, value)))
            elif kind is ChipKind.TAG and value not in tags:
                tags.append(value)
                typed[value] = " ".join(w.raw for w in words[i : i + length])
                chips.append(Chip(kind=kind, value=value, display=value))
            elif kind is ChipKind.PLACE and place is None:
                place = value
                typed[value] = " ".join(w.raw for w in words[i : i + length])
                chips.append(Chip(kind=kind, value=value, display=value))
            elif kind is ChipKind.PLACE and fold(value) != fold(place or ""):
                free.extend(w.raw for w in words[i : i + length])
            meaning.extend(w.raw for w in words[i : i + length])
        else:
            length = 1
            if words[i].key not in STOP_WORDS:
                free.append(words[i].raw)
                meaning.append(words[i].raw)
        prev = words[i + length - 1].key
        i += length

    dates = None
    if spans:
        start, end = min(s.start for s in spans), max(s.end for s in spans)
        dates = DateRange(start=start, end=end)
        display = spans[0].display if len(spans) == 1 else " – ".join(s.display for s in spans)
        chips.append(Chip(kind=ChipKind.DATE, value=f"{start.date().isoformat()}/{end.date().isoformat()}",
                          display=display))
    remaining = " ".join(free)
    if remaining:
        chips.append(Chip(kind=ChipKind.TEXT, value=remaining, display=remaining))
    query = SearchQuery(owner=owner, text=remaining, tags=tuple(tags), people=tuple(people), place=place, dates=dates)
    return ParsedQuery(query=query, chips=tuple(chips), remaining_text=remaining, semantic_text=" ".join(meaning),
                       typed=typed)
