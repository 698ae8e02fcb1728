"""The user's corrections turned into starting groups for clustering, and helpers that record a user action.

Rules (documented in the README section on people):
- A person is *settled* once the user has touched it: named, hidden, or named in a correction (a face moved in or
  out, "not this person", a split). A settled person's faces stay together across runs, except the ones the user
  took out; new faces may still join it. Unsettled people are re-clustered freely each run.
- Corrections that contradict each other are resolved newest first; the older one is ignored and reported.
- Corrections about faces that no longer exist are dropped silently (the photo was deleted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from photo_organizer.people.models import (
    CannotLink,
    Constraint,
    MustLink,
    Person,
    PinnedFace,
    Split,
    new_person_id,
)

_OLDEST = datetime.min.replace(tzinfo=timezone.utc)
_KIND_ORDER = {"pinned_face": 0, "cannot_link": 1, "must_link": 2}


@dataclass
class Seeds:
    """Must-link groups over all faces (every face in exactly one group) with what each group must/must not be."""

    groups: list[list[str]]
    label: list[str | None]  # the person the group must be
    forbids: list[frozenset[str]]  # the people the group must never be
    settled: frozenset[str]  # person ids whose membership is anchored
    ignored: list[Constraint] = field(default_factory=list)


class _Groups:
    """Union-find over face ids where each root carries a label and a forbidden set."""

    def __init__(self, face_ids: Sequence[str]) -> None:
        self.parent = {f: f for f in face_ids}
        self.label: dict[str, str | None] = {f: None for f in face_ids}
        self.forbids: dict[str, set[str]] = {f: set() for f in face_ids}
        self.root_of_person: dict[str, str] = {}

    def find(self, face: str) -> str:
        root = face
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[face] != root:
            self.parent[face], face = root, self.parent[face]
        return root

    def compatible(self, r1: str, r2: str) -> bool:
        l1, l2 = self.label[r1], self.label[r2]
        if l1 is not None and l2 is not None and l1 != l2:
            return False
        return l1 not in self.forbids[r2] and l2 not in self.forbids[r1]

    def union(self, r1: str, r2: str) -> str:
        if r1 == r2:
            return r1
        keep, gone = (r1, r2) if r1 < r2 else (r2, r1)  # order-independent choice of root
        self.parent[gone] = keep
        self.label[keep] = self.label[keep] or self.label[gone]
        self.forbids[keep] |= self.forbids.pop(gone)
        del self.label[gone]
        if self.label[keep] is not None:
            self.root_of_person[self.label[keep]] = keep
        return keep

    def pin(self, face: str, person: str) -> bool:
        root = self.find(face)
        if self.label[root] not in (None, person) or person in self.forbids[root]:
            return False
        anchor = self.root_of_person.get(person)
        if anchor is not None:
            anchor = self.find(anchor)
            if anchor != root:
                if not self.compatible(root, anchor):
                    return False
                self.union(root, anchor)
                return True
        self.label[root] = person
        self.root_of_person[person] = root
        return True

    def forbid(self, face: str, person: str) -> bool:
        root = self.find(face)
        if self.label[root] == person:
            return False
        self.forbids[root].add(person)
        return True

    def link(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if not self.compatible(ra, rb):
            return False
        self.union(ra, rb)
        return True


def _expand(constraint: Constraint) -> list[Constraint]:
    if isinstance(constraint, Split):
        out: list[Constraint] = []
        for face in sorted(constraint.face_ids):
            out.append(PinnedFace(face_id=face, person_id=constraint.new_person_id, created_at=constraint.created_at))
            out.append(CannotLink(face_id=face, person_id=constraint.person_id, created_at=constraint.created_at))
        return out
    return [constraint]


def _faces_of(constraint: Constraint) -> tuple[str, ...]:
    if isinstance(constraint, MustLink):
        return (constraint.a, constraint.b)
    return (constraint.face_id,)  # type: ignore[union-attr]


def _newest_first(constraint: Constraint) -> tuple:
    when = constraint.created_at or _OLDEST
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    detail = tuple(sorted(_faces_of(constraint))) + (getattr(constraint, "person_id", ""),)
    return (-when.timestamp(), _KIND_ORDER[constraint.kind], detail)


def resolve(
    face_ids: Sequence[str],
    previous_people: Iterable[Person],
    constraints: Iterable[Constraint],
    *,
    settle_all: bool = False,
) -> Seeds:
    """Apply the corrections (newest first) and anchor settled people; `settle_all` anchors every person
    (incremental attachment, which never moves a face that already has a person)."""
    known = sorted(set(face_ids))
    known_set = set(known)
    groups = _Groups(known)
    flat = [c for raw in constraints for c in _expand(raw)]
    live = sorted((c for c in flat if all(f in known_set for f in _faces_of(c))), key=_newest_first)
    ignored: list[Constraint] = []
    touched: set[str] = set()
    for c in live:
        if isinstance(c, PinnedFace):
            ok = groups.pin(c.face_id, c.person_id)
        elif isinstance(c, CannotLink):
            ok = groups.forbid(c.face_id, c.person_id)
        else:
            ok = groups.link(c.a, c.b)
        if ok and isinstance(c, PinnedFace | CannotLink):
            touched.add(c.person_id)
        if not ok:
            ignored.append(c)

    previous = sorted(previous_people, key=lambda p: p.person_id)
    settled = {p.person_id for p in previous if settle_all or p.named or p.hidden or p.person_id in touched}
    for person in previous:
        if person.person_id not in settled:
            continue
        for face in sorted(person.face_ids & known_set):
            groups.pin(face, person.person_id)  # refused where the user said otherwise; that face stays free

    members: dict[str, list[str]] = {}
    for face in known:
        members.setdefault(groups.find(face), []).append(face)
    roots = sorted(members, key=lambda r: members[r][0])
    return Seeds(
        groups=[members[r] for r in roots],
        label=[groups.label[r] for r in roots],
        forbids=[frozenset(groups.forbids[r]) for r in roots],
        settled=frozenset(settled | touched),
        ignored=ignored,
    )


# ---- user actions as constraints (for the API that comes next) ---------------------------------------------


def merge_people(target: Person, source: Person, *, at: datetime | None = None) -> list[MustLink]:
    """Every face of both people in one person: a star of must-links from the target's smallest face."""
    faces = sorted(target.face_ids | source.face_ids)
    hub = min(target.face_ids) if target.face_ids else faces[0]
    return [MustLink(a=hub, b=f, created_at=at) for f in faces if f != hub]


def move_face(face_id: str, from_person: str | None, to_person: str, *, at: datetime | None = None) -> list[Constraint]:
    moved: list[Constraint] = [PinnedFace(face_id=face_id, person_id=to_person, created_at=at)]
    if from_person is not None and from_person != to_person:
        moved.append(CannotLink(face_id=face_id, person_id=from_person, created_at=at))
    return moved


def not_this_person(face_id: str, person_id: str, *, at: datetime | None = None) -> CannotLink:
    return CannotLink(face_id=face_id, person_id=person_id, created_at=at)


def split_person(person: Person, face_ids: Iterable[str], *, at: datetime | None = None) -> Split:
    """Split `face_ids` off `person` into a new person whose id is derived from the split faces."""
    split_off = frozenset(face_ids)
    if not split_off or not split_off < person.face_ids:
        raise ValueError("a split takes some, not all, of the person's faces")
    new_id = new_person_id(person.owner, f"split:{person.person_id}:{min(split_off)}")
    return Split(person_id=person.person_id, face_ids=split_off, new_person_id=new_id, created_at=at)
