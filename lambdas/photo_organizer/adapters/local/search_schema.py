"""The local search index's tantivy side: its schema and analyzers, the owner-prefixed terms of tags, people
and places, and a document's field values. See search_index."""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone

import tantivy

from photo_organizer.errors import ValidationError
from photo_organizer.search.grams import text_grams
from photo_organizer.search.models import SearchDocument

FACET_SIZE = 20
VOCABULARY_SIZE = 2000  # tags query understanding knows per owner (opensearch_requests says the same)


MAX_QUERY_TOKENS = 32


SEP = "\x1f"  # inside raw terms; never in owners, photo ids or prefixes (stripped/refused)


RECENCY_SPREAD = 1e-3  # weight field range; tantivy multiplies the score by log2(2 + weight)


CENTURY_MICROS = 36_525 * 86_400 * 1_000_000


TEXT_FIELDS: tuple[tuple[str, float], ...] = (
    ("people", 4.0),
    ("tags", 4.0),
    ("place", 2.5),
    ("caption", 1.5),
    ("camera", 1.0),
    ("ocr_text", 1.0),
    ("filename", 1.0),
)


CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def micros(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@functools.lru_cache(maxsize=65_536)  # tags, names and places repeat across a library
def clean_term(value: str) -> str:
    """Display text without control characters (SEP among them) or runs of whitespace."""
    if not value.isprintable():
        value = CONTROL_CHARS.sub(" ", value)
    return " ".join(value.split())


@functools.lru_cache(maxsize=65_536)
def keyword_term(value: str) -> str:
    return clean_term(value).casefold()


class OwnerTerms:
    """One owner's tag, person and place terms, each computed once: a library repeats its owners' tags, people and
    places on every photo, and bulk loads are bound by Python work per document (plain dict lookups here cost a
    third of what an lru_cache call with several arguments did). Bounded: a dict is cleared when it grows past
    LIMIT values. The lists returned are shared between documents: they are only read (by from_dict)."""

    LIMIT = 8192
    __slots__ = ("owner", "tags", "tag_sets", "people", "places")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.tags: dict[str, str] = {}
        self.tag_sets: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
        self.people: dict[tuple[str, str | None], tuple[str, str, tuple[str, ...]]] = {}
        self.places: dict[tuple, tuple[list[str], list[str], tuple[str, ...], list[str]]] = {}

    def tag(self, tag: str) -> str:
        """The owner-prefixed keyword term, or "" for a tag with no text."""
        if len(self.tags) >= self.LIMIT:
            self.tags.clear()
        kw = keyword_term(tag)
        term = self.tags[tag] = f"{self.owner}{SEP}{kw}" if kw else ""
        return term

    def tag_set(self, tags: tuple[str, ...]) -> tuple[list[str], list[str]]:
        """(text value, keyword terms) of a photo's tags, duplicates dropped."""
        if len(self.tag_sets) >= self.LIMIT:
            self.tag_sets.clear()
        unique = tuple(dict.fromkeys(tags))
        known = self.tags
        terms = [known[tag] if tag in known else self.tag(tag) for tag in unique]
        found = self.tag_sets[tags] = ([" ".join(unique)], [term for term in terms if term])
        return found

    def person(self, person_id: str, name: str | None) -> tuple[str, str, tuple[str, ...]]:
        """(facet term, display name, suggest terms): "ana silva" is suggested for "an" and for "sil"."""
        if len(self.people) >= self.LIMIT:
            self.people.clear()
        clean = clean_term(name or "")
        words = clean.casefold().split()
        suggest = tuple(f"{self.owner}{SEP}p{SEP}{' '.join(words[i:])}{SEP}{person_id}{SEP}{clean}"
                        for i in range(len(words)))
        found = self.people[(person_id, name)] = (f"{person_id}{SEP}{clean}", clean, suggest)
        return found

    def place(self, ident: tuple) -> tuple[list[str], list[str], tuple[str, ...], list[str]]:
        """(text value, keyword terms, suggest terms, city facet) for (city, region, country, code)."""
        if len(self.places) >= self.LIMIT:
            self.places.clear()
        city, region, country, code = ident
        names = [clean_term(n) for n in (city, region, country) if n]
        keywords = [n.casefold() for n in (*names, code or "") if n]
        suggest = tuple(f"{self.owner}{SEP}l{SEP}{n.casefold()}{SEP}{n}{SEP}" for n in names)
        found = self.places[ident] = ([" ".join(names)] if names else [], keywords, suggest,
                                      [clean_term(city)] if city else [])
        return found


@functools.lru_cache(maxsize=4096)
def owner_terms(owner: str) -> OwnerTerms:
    return OwnerTerms(owner)


def text_analyzer(*, stopwords: bool) -> tantivy.TextAnalyzer:
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if stopwords:
        builder = builder.filter(tantivy.Filter.stopword("english"))
    return builder.filter(tantivy.Filter.stemmer("english")).build()


def tantivy_schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    b.add_unsigned_field("key", indexed=True, fast=True)
    b.add_text_field("owner", tokenizer_name="raw", index_option="basic")
    b.add_text_field("photo_id", stored=True, tokenizer_name="raw", index_option="basic")
    b.add_integer_field("t", indexed=True, fast=True)
    b.add_integer_field("year", indexed=True, fast=True)
    b.add_float_field("recency", fast=True)
    b.add_unsigned_field("hidden", indexed=True)
    b.add_unsigned_field("sensitive", indexed=True)
    for name in ("tags_kw", "people_facet", "city_facet"):
        b.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    for name in ("people_ids", "place_kw", "camera_kw", "suggest"):
        b.add_text_field(name, tokenizer_name="raw", index_option="basic")
    for name, _ in TEXT_FIELDS:
        b.add_text_field(name, stored=True, tokenizer_name="po_text", index_option="freq")
    return b.build()


def document_fields(doc: SearchDocument, t: int) -> dict[str, list]:
    """The document's values but the unsigned ones (key, hidden, sensitive), each of its field's Python type."""
    owner = doc.owner
    f: dict[str, list] = {
        "owner": [owner], "photo_id": [doc.photo_id], "t": [t], "year": [(doc.taken_at or doc.uploaded_at).year],
        "recency": [RECENCY_SPREAD * min(1.0, max(0.0, t / CENTURY_MICROS))],
    }
    # Text fields get one value each, the values joined by a space: they index term frequencies, not positions,
    # so a document's values score exactly as one text (same frequencies, same field length), and build time is
    # mostly per-value work (conversion, then indexing). Keyword fields keep one value per term.
    suggest: list[str] = []
    terms = owner_terms(owner)
    tags = doc.tags
    if tags:
        # owner-prefixed keywords: the same terms filter, facet and suggest (a separate suggest term per tag
        # cost ~6 of the ~42 values per document)
        f["tags"], f["tags_kw"] = terms.tag_sets.get(tags) or terms.tag_set(tags)
    if doc.people:
        known_people = terms.people
        f["people_ids"] = [p.person_id for p in doc.people]
        people = [known_people.get((p.person_id, p.name)) or terms.person(p.person_id, p.name)
                  for p in doc.people]
        f["people_facet"] = [facet for facet, _, _ in people]
        names = " ".join(name for _, name, _ in people if name)
        if names:
            f["people"] = [names]
        for _, _, person_suggest in people:
            suggest.extend(person_suggest)
    place = doc.place
    if place:
        ident = (place.city, place.region, place.country, place.country_code)
        text, place_kw, place_suggest, city = terms.places.get(ident) or terms.place(ident)
        if text:
            f["place"] = text
            suggest.extend(place_suggest)
        if place_kw:
            f["place_kw"] = place_kw
        if city:
            f["city_facet"] = city
    for name in ("ocr_text", "caption", "filename"):
        value = getattr(doc, name)
        if value:
            f[name] = [value]
    if doc.ocr_text:
        # OCR trigrams (search.grams) as owner-prefixed raw terms of the suggest field: a word inside a run of
        # letters ("NOPARKINGANYTIME") is found by its grams. The suggest field's prefixes never end in SEP "g"
        # SEP, so suggestions never see them; a field of their own would have changed the on-disk schema.
        suggest.extend(gram_term(owner, gram) for gram in sorted(text_grams(doc.ocr_text)))
    # Weak tags (search evidence below the tags) as owner-prefixed raw terms of the suggest field too, for the same
    # reason as the grams: no new field, no on-disk schema change. Never facets, never suggestions (prefix "w").
    suggest.extend(weak_tag_term(owner, tag) for tag in doc.weak_tags)
    if doc.camera:
        f["camera"] = [doc.camera]
        f["camera_kw"] = [keyword_term(doc.camera)]
    if suggest:
        f["suggest"] = list(dict.fromkeys(suggest)) if len(suggest) > 1 else suggest
    return f


def gram_term(owner: str, gram: str) -> str:
    return f"{owner}{SEP}g{SEP}{gram}"


def weak_tag_term(owner: str, tag: str) -> str:
    return f"{owner}{SEP}w{SEP}{keyword_term(tag)}"


WEAK_TAG_PREFIX = f"{SEP}w{SEP}"


def check_owner(owner: str) -> None:
    if not owner or CONTROL_CHARS.search(owner):
        raise ValidationError("invalid owner")
