"""Understood tags and places rank; they do not filter (issue 12).

A phrase's understood tags and places become QueryParts: a photo satisfies a part when it carries the tag or
place as a keyword (a strong, constant boost, PART_KEYWORD_SCORE, the same in both indexes) or when one of the
part's words appears in its text fields, OCR text included. The strict reading requires every part and free
word; when it finds nothing, the service asks again with `relaxed` (at least one of them) and says which chips
were relaxed. Hard filters stay for what the user picked in the UI (tag, place, person, dates, camera, near) and
for the phrase's people and dates, which are unambiguous.

Parent/child: every document carries its tags' parents, so a part "animal" is satisfied by a dog. Synonyms map
words people use to tags of the library ("puppy" -> dog): understanding turns them into the tag's chip, and the
word typed stays one of the part's words, so a caption or sign saying "puppy" still counts. The library's tags
are all of them (the index's `vocabulary`, not the 20 most common of the facets), weak tags included.

Coverage: under the relaxed reading a photo that satisfies more of the phrase's parts and words ranks above one
that satisfies fewer, whatever their scores: each satisfied part or word adds RELAXED_COVERAGE_SCORE on top of its
own score (Lucene's classic coordination factor, made exact). "fresh bread sign on a brick wall": the bakery's sign
read as FRESHBREADDAILY on a photo named brick_sign satisfies four of five; a "sign"-tagged parking sign only one,
though its tag's constant boost outscored two words found inside a run of OCR letters.

Weak evidence: a tag part is also satisfied by a weak label (what the labeller saw under its threshold,
SearchDocument.weak_tags), at PART_WEAK_SCORE, below every photo that carries the tag; hits say "weak_tags".
"""

from __future__ import annotations

from collections.abc import Mapping

from photo_organizer.search.models import QueryPart

PART_KEYWORD_SCORE = 4.0
# A tag part satisfied only by a weak label (what the classifier saw under its threshold, search.models
# SearchDocument.weak_tags): found, and ranked below every photo that carries the tag (4.0 plus its words).
PART_WEAK_SCORE = 1.0
# Added per satisfied part or word under the relaxed reading: above the largest score one part or word can reach
# (a part's constant boosts and a word's best field at boost 4 times its BM25, a few tens even for a rare word in a
# library of a million photos), so the number satisfied decides first and the scores order photos within it.
RELAXED_COVERAGE_SCORE = 1000.0

# word -> tag. Used only for tags the owner's library has (QueryVocabulary.build checks).
SYNONYMS: Mapping[str, str] = {
    "puppy": "dog", "pup": "dog", "doggy": "dog", "pooch": "dog", "hound": "dog",
    "kitten": "cat", "kitty": "cat", "feline": "cat",
    "seaside": "beach", "shore": "beach", "seashore": "beach", "coast": "beach",
    "ocean": "sea",
    "automobile": "car", "auto": "car",
    "espresso": "coffee", "cappuccino": "coffee",
    "spacecraft": "rocket", "spaceship": "rocket",
    "blossom": "flower", "bloom": "flower",
    "meal": "food", "dish": "food",
    "kid": "child", "kids": "child", "toddler": "child",
    "bicycle": "bike", "cycle": "bike",
    "hills": "mountain", "peak": "mountain",
    "puss": "cat",
    "bike": "bicycle",
    # kinds people name that the tags hold under a broader name (the local labeller's and Rekognition's)
    "dahlia": "flower", "rose": "flower", "tulip": "flower", "daisy": "flower", "sunflower": "flower",
    "orchid": "flower", "lily": "flower", "daffodil": "flower", "peony": "flower", "poppy": "flower",
    "man": "person", "woman": "person", "boy": "person", "girl": "person",
    "lady": "person", "guy": "person", "gentleman": "person",
    "photographer": "photography", "photoshoot": "photography",
    "motorbike": "motorcycle", "scooter": "motorcycle", "moped": "motorcycle",
    "temple": "place of worship", "church": "place of worship", "mosque": "place of worship",
    "shrine": "place of worship", "cathedral": "place of worship", "chapel": "place of worship",
    "monastery": "place of worship", "pagoda": "place of worship",
    "palace": "castle", "fortress": "castle",
    "mug": "cup",
    "telephone": "phone", "smartphone": "phone",
    "laptop": "computer",
    "television": "screen", "tv": "screen", "monitor": "screen",
    "sneaker": "shoe",
    "necklace": "jewelry",
    "plane": "airplane", "jet": "airplane", "airliner": "airplane",
    "sailboat": "boat", "yacht": "boat",
    "lorry": "truck",
    "sofa": "couch",
}


def query_part(kind: str, value: str, typed: str | None) -> QueryPart:
    words = [value]
    if typed and typed.casefold() != value.casefold():
        words.append(typed)
    return QueryPart(kind=kind, value=value, words=tuple(words))


__all__ = ["PART_KEYWORD_SCORE", "PART_WEAK_SCORE", "RELAXED_COVERAGE_SCORE", "SYNONYMS", "query_part"]
