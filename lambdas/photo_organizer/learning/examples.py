"""From the feedback dataset and a feature snapshot to per-owner labelled examples with their folds (preprocess.py).

Labels come from the active feedback only (an undone event and the undo itself teach nothing):
- tagging: on a photo the owner gave any tag feedback ("reviewed"), every tag of the owner's vocabulary (the tags
  they added, confirmed or rejected anywhere) is a target: added/confirmed = 1 and rejected = 0 (weight 1, the
  last word wins); otherwise a tag analysis put on the photo is a weak positive and any other a weak negative
  (weight WEAK_WEIGHT, WEAK_NEGATIVE_WEIGHT for the negatives: the owner looked at the photo and left it so).
  A weak positive is only as good as the owner's own answers about its tag where analysis put it: it weighs
  WEAK_WEIGHT x keep_rate(confirmed, rejected) in training (1 for a tag never rejected there; weak_trust, from
  the examples trained on: a fold model's from its folds), and the gate counts it at WEAK_EVAL_WEIGHT x the share
  kept where asked (learning.evidence.judged_trust). A review-queue answer is one question about
  one tag of a photo, not a look at all its tags: an owner who rejected "clothing" on the seven photos they were
  asked about and never confirmed it did not keep it on the thirty other reviewed photos, yet at full weight those
  thirty outvoted the seven answers and the tag was never suppressed. Down-weighted, not dropped: where the
  rejections fell on odd photos (a "mammal" on a blurred face) the weak positives still rank the photos the tag
  fits (cats) above them.
- faces: face_assigned confirms a face as a person, face_not_person rejects it for one. Pairs of confirmed faces
  are the same person or not; a rejected face against the confirmed faces of that person is a "not the same".

Every labelled example is written once, with its fold (learning.cross_fitting: by photo, a face with its photo,
from a hash of the photo's content digest): the candidate trains on all of them, and the evaluation cross-fits over
the folds. A face pair whose photos are in two folds is trained on (by the models whose held-back fold is neither)
but never judged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from photo_organizer.learning.cross_fitting import FOLDS, fold_of
from photo_organizer.learning.datasets import (
    FaceFeatures,
    FacePair,
    PhotoFeatures,
    read_faces,
    read_feedback,
    read_pairs,
    read_photos,
)
from photo_organizer.learning.faces import similarities_from_distances
from photo_organizer.learning.features import parse_time
from photo_organizer.learning.tagging import analysis_tags

WEAK_WEIGHT = 0.5
# a tag neither analysis nor the owner put on a reviewed photo is a weaker "no": answering one question about a
# photo is no promise that none of the owner's own tags fits it (at WEAK_WEIGHT such negatives drowned the few
# positives of a custom tag as more photos were reviewed, and later models lost it)
WEAK_NEGATIVE_WEIGHT = 0.25
# keep_rate's prior: half a confirmation behind every analysis tag, so k rejections and no confirmation leave its
# weak positives 1 / (2k + 1) of their weight (1.0, a whole confirmation, was measured too: the noise tags went
# on outweighing the rejections longer, benchmarks/feedback_gain.py)
KEEP_PRIOR = 0.5
MAX_PAIRS_PER_OWNER = 20_000
MAX_FACES_PER_OWNER = 600  # ~180k candidate pairs: enough, and the pair loop stays seconds
TAGGING_FILE = "tagging.jsonl"
FACE_PAIRS_FILE = "face_pairs.jsonl"
FACES_FILE = "faces.jsonl"
SUMMARY_FILE = "summary.json"
# the tagging examples as the approved model was trained on them: the feedback up to its feedback_through instant,
# on today's photos and folds (the evaluation judges the candidate in sample too on the few-positive labels there)
APPROVED_TAGGING_FILE = "tagging_as_approved.jsonl"
PROVENANCE_FILE = "provenance.json"  # {"feedback_through": the newest event's instant}: training records it
LABELLED_DIR = "labelled"  # every labelled example, with its fold: the training channel and the evaluation's input
TAG_TYPES = ("tag_added", "tag_confirmed", "tag_rejected")


def active_events(events: Iterable[Mapping]) -> list[Mapping]:
    """The events still in force, oldest first: neither undone (by an undo line or a stored undone_at) nor undos."""
    events = list(events)
    undone = {e.get("undoes") for e in events if e.get("type") == "undo"}
    return [e for e in events if e.get("type") != "undo" and e["feedback_id"] not in undone and not e.get("undone_at")]


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _instant(text: str | None) -> datetime:
    when = parse_time(text) or _EPOCH
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _in_order(events: Iterable[Mapping]) -> list[Mapping]:
    """Oldest first by the instant (not the text: "10:00:00Z" sorts after "10:00:00.5Z"), then by id."""
    return sorted(events, key=lambda e: (_instant(e.get("created_at")), e.get("feedback_id", "")))


def feedback_through(events: Iterable[Mapping]) -> str | None:
    """The newest event's instant (ISO-8601, UTC): what a model trained on these events has seen."""
    instants = [_instant(e.get("created_at")) for e in events if e.get("created_at")]
    return max(instants).isoformat() if instants else None


def events_through(events: Iterable[Mapping], through: str) -> list[Mapping]:
    """The events recorded up to and including the instant `through` (the dataset is append-only: these are the
    events a model trained at that instant saw, undos included, later undos not yet)."""
    cutoff = _instant(through)
    out = []
    for e in events:
        if _instant(e.get("created_at")) > cutoff:
            continue
        if e.get("undone_at") and _instant(e["undone_at"]) > cutoff:  # undone later: still in force then
            e = {k: v for k, v in e.items() if k != "undone_at"}
        out.append(e)
    return out


def tag_labels(events: Iterable[Mapping]) -> dict[tuple[str, str], dict[str, int]]:
    """(owner, photo) -> tag -> 1/0 from tag feedback, last word wins."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for e in _in_order(active_events(events)):
        if e.get("type") in TAG_TYPES and e.get("photo_id") and e.get("tag"):
            out[(e["owner"], e["photo_id"])][str(e["tag"]).casefold()] = 0 if e["type"] == "tag_rejected" else 1
    return dict(out)


def face_labels(events: Iterable[Mapping]) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], set[str]]]:
    """(owner, face) -> confirmed person, and (owner, face) -> the persons it was said not to be."""
    confirmed: dict[tuple[str, str], str] = {}
    rejected: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in _in_order(active_events(events)):
        key = (e.get("owner", ""), e.get("face_id") or "")
        person = e.get("person_id")
        if not key[1] or not person:
            continue
        if e.get("type") == "face_assigned":
            confirmed[key] = person
            rejected[key].discard(person)
        elif e.get("type") == "face_not_person":
            rejected[key].add(person)
            if confirmed.get(key) == person:
                del confirmed[key]
    return confirmed, {k: v for k, v in rejected.items() if v}


def keep_rate(confirmed: int, rejected: int, prior: float = KEEP_PRIOR) -> float:
    """How often the owner keeps an analysis tag, from their answers where analysis put it: the posterior mean of
    a Beta(KEEP_PRIOR, 0) prior (analysis is right until the owner says otherwise) after `confirmed` yes and
    `rejected` no. 1 while they never rejected it."""
    return (confirmed + prior) / (confirmed + rejected + prior)


def on_photo_answers(rows: Iterable[TaggingExample]) -> dict[tuple[str, str], tuple[int, int]]:
    """(owner, tag) -> (confirmed, rejected): the owner's own answers about a tag on the photos analysis put it
    on (an added tag is never on the photo from analysis; a rejected one is)."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        present = analysis_tags(row.photo)
        for tag, value in row.targets.items():
            if not row.is_weak(tag) and tag in present:
                counts[(row.owner, tag)][0 if value else 1] += 1
    return {key: (c[0], c[1]) for key, c in counts.items()}


def added_tags(rows: Iterable[TaggingExample]) -> set[tuple[str, str]]:
    """(owner, tag) for the tags the owner added themselves somewhere analysis had not put them (an explicit yes
    off the photo): the tags a model may suggest, and whose weak "no"s say little."""
    return {(row.owner, tag) for row in rows for tag, value in row.targets.items()
            if value and not row.is_weak(tag) and tag not in analysis_tags(row.photo)}


def weak_trust(rows: Sequence[TaggingExample], prior: float = KEEP_PRIOR) -> dict[tuple[str, str], float]:
    """(owner, tag) -> how far that tag's weak positives are believed (keep_rate of the owner's answers in `rows`),
    for the tags the owner rejected somewhere analysis put them; any other tag's weak positives keep trust 1."""
    return {key: keep_rate(c, r, prior) for key, (c, r) in on_photo_answers(rows).items() if r}


def trusted_weights(rows: Sequence[TaggingExample], tag: str, trust: Mapping[tuple[str, str], float]) -> list[float]:
    """The training weight of each row's label for `tag`: its stored weight, a weak positive's times its trust."""
    return [row.weights.get(tag, 1.0) * (trust.get((row.owner, tag), 1.0) if row.is_weak(tag) and row.targets.get(tag)
                                          else 1.0) for row in rows]


@dataclass
class TaggingExample:
    owner: str
    photo: PhotoFeatures
    targets: dict[str, int]
    weights: dict[str, float] = field(default_factory=dict)
    fold: int = 0  # learning.cross_fitting.fold_of the photo

    def positives(self) -> set[str]:
        return {tag for tag, value in self.targets.items() if value}

    def to_line(self) -> str:
        body = {"owner": self.owner, "photo": asdict(self.photo), "targets": self.targets, "weights": self.weights,
                "fold": self.fold}
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_line(cls, text: str) -> TaggingExample:
        body = json.loads(text)
        return cls(body["owner"], PhotoFeatures(**body["photo"]), body["targets"], body.get("weights", {}),
                   int(body.get("fold", 0)))

    def is_weak(self, tag: str) -> bool:
        """Not the owner's word: a tag of their vocabulary left on (or off) this reviewed photo as analysis had it."""
        return self.weights.get(tag, 1.0) < 1.0


@dataclass
class FaceExample:
    owner: str
    face_id: str
    photo_id: str
    person: str | None  # confirmed person, if any
    not_persons: list[str]
    quality: float
    box_area: float
    descriptor: str | None
    fold: int = 0  # its photo's fold

    def descriptor_vector(self) -> np.ndarray | None:
        return FaceFeatures(self.owner, self.face_id, self.photo_id, descriptor=self.descriptor).descriptor_vector()


@dataclass
class PairExample:
    owner: str
    a: str
    b: str
    same: bool
    similarity: float  # on the common scale, before any projection head
    quality_a: float
    quality_b: float
    area_a: float
    area_b: float
    fold_a: int = 0  # the folds of a's and b's photos
    fold_b: int = 0

    @property
    def fold(self) -> int | None:
        """The fold the pair is judged in: its photos' fold, None when they are in two folds (never judged)."""
        return self.fold_a if self.fold_a == self.fold_b else None

    def touches(self, fold: int) -> bool:
        return fold in (self.fold_a, self.fold_b)


def tagging_examples(photos: Iterable[PhotoFeatures], events: Sequence[Mapping]) -> list[TaggingExample]:
    photos = list(photos)
    present_ids = {(p.owner, p.photo_id) for p in photos}
    labels = {key: tags for key, tags in tag_labels(events).items() if key in present_ids}  # deleted photos drop
    vocabulary: dict[str, set[str]] = defaultdict(set)
    for (owner, _), tags in labels.items():
        vocabulary[owner].update(tags)
    out = []
    for photo in photos:
        explicit = labels.get((photo.owner, photo.photo_id))
        if not explicit:
            continue
        present = analysis_tags(photo)
        targets, weights = {}, {}
        for tag in sorted(vocabulary[photo.owner]):
            if tag in explicit:
                targets[tag], weights[tag] = explicit[tag], 1.0
            else:
                on = tag in present
                targets[tag], weights[tag] = (1 if on else 0), WEAK_WEIGHT if on else WEAK_NEGATIVE_WEIGHT
        out.append(TaggingExample(photo.owner, photo, targets, weights))
    return out


def face_examples(
    faces: Iterable[FaceFeatures], pairs: Iterable[FacePair], events: Sequence[Mapping], photo_ids: set[tuple[str, str]]
) -> tuple[list[FaceExample], list[PairExample]]:
    """The labelled faces (of photos in the snapshot) and their labelled pairs, before the split."""
    confirmed, rejected = face_labels(events)
    known = {}
    for face in faces:
        key = (face.owner, face.face_id)
        if (face.owner, face.photo_id) not in photo_ids or (key not in confirmed and key not in rejected):
            continue
        known[key] = FaceExample(
            face.owner, face.face_id, face.photo_id, confirmed.get(key), sorted(rejected.get(key, ())),
            float(face.quality), float(face.box_area), face.descriptor,
        )
    measured = {(p.owner, *sorted((p.a, p.b))): float(p.similarity) for p in pairs}
    by_owner: dict[str, list[FaceExample]] = defaultdict(list)
    for (owner, _), example in sorted(known.items()):
        by_owner[owner].append(example)
    out: list[PairExample] = []
    for owner, members in by_owner.items():
        if len(members) > MAX_FACES_PER_OWNER:  # rejected faces first (rare and telling), then a stable sample
            members = sorted(members, key=lambda m: (not m.not_persons, hashlib.sha256(m.face_id.encode()).digest()))
            members = members[:MAX_FACES_PER_OWNER]
        vectors = {m.face_id: m.descriptor_vector() for m in members}
        owner_pairs = []
        for x, y in itertools.combinations(members, 2):
            if x.photo_id == y.photo_id:
                continue  # two faces of one photo are two people by construction: nothing to learn
            same = _pair_label(x, y)
            if same is None:
                continue
            a, b = (x, y) if x.face_id < y.face_id else (y, x)
            va, vb = vectors[a.face_id], vectors[b.face_id]
            if va is not None and vb is not None and va.shape == vb.shape:
                similarity = float(similarities_from_distances(float(np.linalg.norm(va - vb))))
            elif (owner, a.face_id, b.face_id) in measured:
                similarity = measured[(owner, a.face_id, b.face_id)]
            else:
                continue
            owner_pairs.append(
                PairExample(owner, a.face_id, b.face_id, same, similarity, a.quality, b.quality, a.box_area, b.box_area)
            )
        if len(owner_pairs) > MAX_PAIRS_PER_OWNER:
            owner_pairs.sort(key=lambda p: hashlib.sha256(f"{p.a}/{p.b}".encode()).digest())
            owner_pairs = owner_pairs[:MAX_PAIRS_PER_OWNER]
        out.extend(owner_pairs)
    return [e for _, e in sorted(known.items())], out


def _pair_label(x: FaceExample, y: FaceExample) -> bool | None:
    if x.person and y.person:
        return x.person == y.person
    if x.person and x.person in y.not_persons or y.person and y.person in x.not_persons:
        return False
    return None


def build_examples(dataset_root: Path, output_root: Path, *, folds: int = FOLDS,
                   approved_through: str | None = None) -> dict:
    """preprocess.py's work: output_root/LABELLED_DIR/{tagging,faces,face_pairs}.jsonl (every labelled example,
    each with its fold), LABELLED_DIR/provenance.json (the newest event's instant, which training records in the
    model) and output_root/summary.json. With approved_through (the approved tagging model's feedback_through),
    also LABELLED_DIR/APPROVED_TAGGING_FILE: the tagging examples built from the events up to that instant."""
    events = read_feedback(dataset_root)
    photos = list(read_photos(dataset_root))
    photo_ids = {(p.owner, p.photo_id) for p in photos}
    # feedback about a photo that is gone (not in the snapshot) drops out here
    tagging = tagging_examples(photos, events)
    faces, pairs = face_examples(read_faces(dataset_root), read_pairs(dataset_root), events, photo_ids)
    split_keys = {(p.owner, p.photo_id): p.split_key for p in photos}

    def photo_fold(owner: str, photo_id: str) -> int:
        return fold_of(owner, photo_id, split_key=split_keys.get((owner, photo_id)), folds=folds)

    as_approved = tagging_examples(photos, events_through(events, approved_through)) if approved_through else None
    for example in [*tagging, *(as_approved or ())]:
        example.fold = photo_fold(example.owner, example.photo.photo_id)
    for face in faces:
        face.fold = photo_fold(face.owner, face.photo_id)
    face_fold = {(f.owner, f.face_id): f.fold for f in faces}
    for pair in pairs:
        pair.fold_a, pair.fold_b = face_fold[(pair.owner, pair.a)], face_fold[(pair.owner, pair.b)]
    folder = output_root / LABELLED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / TAGGING_FILE, (e.to_line() for e in tagging))
    _write(folder / FACES_FILE, (json.dumps(asdict(f), sort_keys=True) for f in faces))
    _write(folder / FACE_PAIRS_FILE, (json.dumps(asdict(p), sort_keys=True) for p in pairs))
    through = feedback_through(events)
    (folder / PROVENANCE_FILE).write_text(json.dumps({"feedback_through": through}), encoding="utf-8")
    if as_approved is not None:
        _write(folder / APPROVED_TAGGING_FILE, (e.to_line() for e in as_approved))
    owners = sorted({e.owner for e in tagging} | {p.owner for p in pairs})
    summary: dict = {
        "events": len(events), "active_events": len(active_events(events)), "photos": len(photos), "folds": folds,
        "tagging_examples": len(tagging), "faces": len(faces), "face_pairs": len(pairs),
        "face_pairs_across_folds": sum(1 for p in pairs if p.fold is None),  # trained on, never judged
        "feedback_through": through,
        "approved_through": approved_through,
        "tagging_examples_as_approved": None if as_approved is None else len(as_approved),
        "per_fold": {
            str(k): {"tagging_examples": sum(1 for e in tagging if e.fold == k),
                     "face_pairs": sum(1 for p in pairs if p.fold == k)}
            for k in range(folds)
        },
        "owners": {
            owner: {"tagging_examples": sum(1 for e in tagging if e.owner == owner),
                    "face_pairs": sum(1 for p in pairs if p.owner == owner)}
            for owner in owners
        },
    }
    (output_root / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    return summary


def _write(path: Path, lines: Iterable[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for text in lines:
            f.write(text + "\n")


def _lines(path: Path):
    if path.is_file():
        with path.open(encoding="utf-8") as f:
            for text in f:
                if text.strip():
                    yield text


def read_tagging_examples(root: Path) -> list[TaggingExample]:
    return [TaggingExample.from_line(t) for t in _lines(root / TAGGING_FILE)]


def read_tagging_examples_as_approved(root: Path) -> list[TaggingExample] | None:
    """APPROVED_TAGGING_FILE's examples; None when preprocess was given no approved model's instant."""
    path = root / APPROVED_TAGGING_FILE
    return [TaggingExample.from_line(t) for t in _lines(path)] if path.is_file() else None


def read_provenance(root: Path) -> dict:
    path = root / PROVENANCE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_face_examples(root: Path) -> list[FaceExample]:
    return [FaceExample(**json.loads(t)) for t in _lines(root / FACES_FILE)]


def read_pair_examples(root: Path) -> list[PairExample]:
    return [PairExample(**json.loads(t)) for t in _lines(root / FACE_PAIRS_FILE)]


def by_owner(rows: Iterable) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for row in rows:
        out[row.owner].append(row)
    return dict(out)
