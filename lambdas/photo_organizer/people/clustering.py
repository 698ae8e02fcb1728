"""Faces -> people: constrained average-linkage clustering on the similarity graph, with stable person ids.

Why average linkage over the sparse graph, with a missing pair counting as 0: two groups join only when most
pairs of their faces look alike (`min_agreement` of the pairs, weighted by similarity). One face that resembles
two people (a bad edge, a blurred face, a sibling) links the groups through a handful of pairs out of |X|*|Y|,
which is far below half, so it never chains two people together the way connected components or single
linkage do. This needs every pair above the threshold (a missing pair must mean "not alike"). When edges are
capped at k per face, `neighbour_cap=k` caps the pair count the same way, which lets a single face or a small
group join a person much larger than k; a person much larger than k is still split into fragments (see
`nearest.DEFAULT_NEIGHBOURS`).

Everything is keyed by face id and ties are broken by face id: the same input in any order gives the same output.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

from photo_organizer.people.constraints import Seeds, resolve
from photo_organizer.people.models import (
    DEFAULT_THRESHOLD,
    Change,
    ClusteringResult,
    Constraint,
    FaceRef,
    MustLink,
    OwnerMismatchError,
    Person,
    SimilarityEdge,
    new_person_id,
)
from photo_organizer.people.nearest import DEFAULT_NEIGHBOURS

DEFAULT_MIN_CLUSTER_SIZE = 3
DEFAULT_MIN_AGREEMENT = 0.5


# ---- shared pieces --------------------------------------------------------------------------------------------


def _check_owner(owner: str, faces: Iterable[FaceRef], people: Iterable[Person]) -> None:
    strays = sorted({f.owner for f in faces if f.owner != owner} | {p.owner for p in people if p.owner != owner})
    if strays:
        raise OwnerMismatchError(f"clustering for one owner received records of {len(strays)} other owner(s)")


def _faces_by_id(faces: Iterable[FaceRef]) -> dict[str, FaceRef]:
    out: dict[str, FaceRef] = {}
    for face in faces:
        if out.setdefault(face.face_id, face) != face:
            raise ValueError(f"face {face.face_id!r} given twice with different attributes")
    return out


def _group_sums(
    edges: Iterable[SimilarityEdge], group_of: dict[str, int], threshold: float
) -> dict[tuple[int, int], float]:
    """Summed similarity between groups, over edges at or above the threshold (duplicates keep their best)."""
    best: dict[tuple[str, str], float] = {}
    for e in edges:
        if e.similarity < threshold or e.a not in group_of or e.b not in group_of:
            continue  # below the bar, or a face deleted since the edges were computed
        if e.similarity > best.get((e.a, e.b), -1.0):
            best[(e.a, e.b)] = e.similarity
    sums: dict[tuple[int, int], float] = {}
    for (a, b), s in sorted(best.items()):
        ga, gb = group_of[a], group_of[b]
        if ga != gb:
            key = (ga, gb) if ga < gb else (gb, ga)
            sums[key] = sums.get(key, 0.0) + s
    return sums


def _pairs_possible(size_a: int, size_b: int, cap: int | None) -> int:
    product = size_a * size_b
    return product if cap is None else min(product, cap * min(size_a, size_b))


def _cover(faces: Sequence[str], refs: dict[str, FaceRef], previous: Person | None) -> tuple[str | None, bool]:
    """The user's chosen cover while it is still one of the faces, else the best face (quality, then oldest)."""
    if previous and previous.cover_chosen_by_user and previous.cover_face_id in faces:
        return previous.cover_face_id, True
    known = [refs[f] for f in faces if f in refs]
    if not known:
        keep = previous.cover_face_id if previous and previous.cover_face_id in faces else None
        return keep, False
    best = min(known, key=lambda f: (-f.quality, f.created_at, f.face_id))
    return best.face_id, False


def _changes(previous: Iterable[Person], people: Iterable[Person], seeds: Seeds) -> tuple[Change, ...]:
    before = {p.person_id: p for p in previous}
    after = {p.person_id: p for p in people}
    out: list[Change] = []
    for pid in sorted(before.keys() | after.keys()):
        old, new = before.get(pid), after.get(pid)
        if old is None:
            out.append(Change(kind="person_created", person_id=pid, face_ids=new.face_ids))
        elif new is None:
            out.append(Change(kind="person_removed", person_id=pid, face_ids=old.face_ids))
        else:
            if new.face_ids - old.face_ids:
                out.append(Change(kind="faces_added", person_id=pid, face_ids=new.face_ids - old.face_ids))
            if old.face_ids - new.face_ids:
                out.append(Change(kind="faces_removed", person_id=pid, face_ids=old.face_ids - new.face_ids))
    for c in seeds.ignored:
        faces = frozenset((c.a, c.b)) if isinstance(c, MustLink) else frozenset({c.face_id})
        out.append(
            Change(
                kind="constraint_ignored",
                person_id=getattr(c, "person_id", None),
                face_ids=faces,
                detail=f"{c.kind} contradicts a newer correction",
            )
        )
    return tuple(out)


# ---- full run -------------------------------------------------------------------------------------------------


def _agglomerate(
    seeds: Seeds, sums: dict[tuple[int, int], float], *, min_agreement: float, cap: int | None
) -> list[list[int]]:
    """Average-linkage merging of the seed groups; returns the groups making up each final cluster.

    Seed groups arrive sorted by their smallest face id, so a lower index means a smaller face id; the survivor
    of a merge keeps the lower index, which keeps that true and makes every tie-break a face-id comparison.
    """
    n = len(seeds.groups)
    size = [len(g) for g in seeds.groups]
    label = list(seeds.label)
    forbids = [set(f) for f in seeds.forbids]
    members = [[i] for i in range(n)]
    version = [0] * n
    neighbours: list[dict[int, float]] = [{} for _ in range(n)]
    for (x, y), s in sums.items():
        neighbours[x][y] = s
        neighbours[y][x] = s

    heap: list[tuple[float, int, int, int, int]] = []

    def push(x: int, y: int) -> None:
        if x > y:
            x, y = y, x
        score = neighbours[x][y] / _pairs_possible(size[x], size[y], cap)
        if score >= min_agreement:
            heapq.heappush(heap, (-score, x, y, version[x], version[y]))

    for x, y in sorted(sums):
        push(x, y)

    def compatible(x: int, y: int) -> bool:
        if label[x] is not None and label[y] is not None and label[x] != label[y]:
            return False
        return label[x] not in forbids[y] and label[y] not in forbids[x]

    while heap:
        _, x, y, vx, vy = heapq.heappop(heap)
        if vx != version[x] or vy != version[y] or not compatible(x, y):
            continue  # stale, or blocked until one side changes (which pushes fresh entries)
        merged = neighbours[x]
        merged.pop(y)
        for w, s in neighbours[y].items():
            if w != x:
                merged[w] = merged.get(w, 0.0) + s
        neighbours[y] = {}
        size[x] += size[y]
        label[x] = label[x] or label[y]
        forbids[x] |= forbids[y]
        members[x] += members[y]
        members[y] = []
        version[x] += 1
        version[y] += 1
        for w in sorted(merged):
            neighbours[w].pop(y, None)
            neighbours[w][x] = merged[w]
            push(x, w)
    return [m for m in members if m]


def cluster_people(
    owner: str,
    faces: Iterable[FaceRef],
    edges: Iterable[SimilarityEdge],
    previous_people: Iterable[Person] = (),
    constraints: Iterable[Constraint] = (),
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_cluster_size: int = DEFAULT_MIN_CLUSTER_SIZE,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    neighbour_cap: int | None = DEFAULT_NEIGHBOURS,
) -> ClusteringResult:
    """Group one owner's faces into people, obeying the user's corrections, keeping person ids stable.

    `previous_people` is the last run's (or the API's current) people; a new cluster takes the id of the previous
    person it shares the most faces with, else a new id derived from the owner and its smallest face id.
    Clusters smaller than `min_cluster_size` stay unassigned unless the user named, hid, or pinned them.
    """
    faces = list(faces)
    previous = sorted(previous_people, key=lambda p: p.person_id)
    _check_owner(owner, faces, previous)
    refs = _faces_by_id(faces)
    seeds = resolve(sorted(refs), previous, constraints)
    group_of = {f: i for i, group in enumerate(seeds.groups) for f in group}
    sums = _group_sums(edges, group_of, threshold)
    clusters = []
    for parts in _agglomerate(seeds, sums, min_agreement=min_agreement, cap=neighbour_cap):
        members = sorted(f for i in parts for f in seeds.groups[i])
        labels = {seeds.label[i] for i in parts} - {None}
        forbids = frozenset().union(*(seeds.forbids[i] for i in parts))
        clusters.append((members, next(iter(labels), None), forbids))
    clusters.sort(key=lambda c: c[0][0])

    previous_by_id = {p.person_id: p for p in previous}
    previous_of_face: dict[str, str] = {}
    for p in previous:
        for f in p.face_ids:
            previous_of_face.setdefault(f, p.person_id)

    assigned: dict[int, str] = {i: c[1] for i, c in enumerate(clusters) if c[1] is not None}
    used = set(assigned.values())
    unassigned: set[str] = set()
    candidates = []
    for i, (members, lab, _) in enumerate(clusters):
        if lab is None and len(members) >= min_cluster_size:
            candidates.append(i)
        elif lab is None:
            unassigned.update(members)
    overlaps = []
    for i in candidates:
        members, _, forbids = clusters[i]
        counts: dict[str, int] = {}
        for f in members:
            pid = previous_of_face.get(f)
            if pid is not None and pid not in seeds.settled and pid not in forbids:
                counts[pid] = counts.get(pid, 0) + 1
        overlaps += [(-n, pid, members[0], i) for pid, n in counts.items()]
    for _, pid, _, i in sorted(overlaps):
        if i not in assigned and pid not in used:
            assigned[i] = pid
            used.add(pid)
    taken = used | set(previous_by_id)
    for i in candidates:
        if i not in assigned:
            attempt = 0
            while (pid := new_person_id(owner, clusters[i][0][0], attempt)) in taken:
                attempt += 1
            assigned[i] = pid
            taken.add(pid)

    people = []
    for i, pid in assigned.items():
        members = clusters[i][0]
        old = previous_by_id.get(pid)
        cover, chosen = _cover(members, refs, old)
        people.append(
            Person(
                person_id=pid,
                owner=owner,
                name=old.name if old else None,
                hidden=old.hidden if old else False,
                face_ids=frozenset(members),
                cover_face_id=cover,
                cover_chosen_by_user=chosen,
            )
        )
    for old in previous:
        if old.person_id not in used and (old.named or old.hidden):
            # the user named or hid them: they outlive their faces (deleted photos, every face moved out)
            emptied = {"face_ids": frozenset(), "cover_face_id": None, "cover_chosen_by_user": False}
            people.append(old.model_copy(update=emptied))
    people.sort(key=lambda p: p.person_id)
    return ClusteringResult(
        people=tuple(people),
        unassigned_face_ids=frozenset(unassigned),
        changes=_changes(previous, people, seeds),
    )


# ---- incremental --------------------------------------------------------------------------------------------


def attach_new_faces(
    existing_people: Iterable[Person],
    new_faces: Iterable[FaceRef],
    edges: Iterable[SimilarityEdge],
    constraints: Iterable[Constraint] = (),
    threshold: float = DEFAULT_THRESHOLD,
    *,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    neighbour_cap: int | None = DEFAULT_NEIGHBOURS,
) -> ClusteringResult:
    """Put new faces into the existing person they match best, without re-clustering anyone.

    Existing memberships are fixed (the user's corrections still apply); each new face, or group of new faces the
    user linked, joins the person it agrees with most if that reaches `min_agreement`, else stays unassigned
    until the next full run. Covers only change where a person had none, so the UI does not flicker.
    """
    people = sorted(existing_people, key=lambda p: p.person_id)
    new = _faces_by_id(new_faces)
    owners = {p.owner for p in people} | {f.owner for f in new.values()}
    if len(owners) > 1:
        raise OwnerMismatchError(f"attachment received records of {len(owners)} owners")
    owner = next(iter(owners), "")
    known = set().union(*(p.face_ids for p in people)) | set(new)
    seeds = resolve(sorted(known), people, constraints, settle_all=True)
    group_of = {f: i for i, group in enumerate(seeds.groups) for f in group}
    sums = _group_sums(edges, group_of, threshold)
    person_group = {lab: i for i, lab in enumerate(seeds.label) if lab is not None}

    home: dict[int, str] = {i: lab for lab, i in person_group.items()}
    for g, (members, lab) in enumerate(zip(seeds.groups, seeds.label, strict=True)):
        if lab is not None:
            continue
        scored = []
        for pid, pg in person_group.items():
            key = (g, pg) if g < pg else (pg, g)
            if key in sums and pid not in seeds.forbids[g]:
                score = sums[key] / _pairs_possible(len(members), len(seeds.groups[pg]), neighbour_cap)
                if score >= min_agreement:
                    scored.append((-score, pid))
        if scored:
            home[g] = min(scored)[1]

    by_person: dict[str, set[str]] = {}
    for g, pid in home.items():
        by_person.setdefault(pid, set()).update(seeds.groups[g])
    placed = set().union(*by_person.values()) if by_person else set()
    previous_by_id = {p.person_id: p for p in people}
    result = []
    for pid in sorted(by_person.keys() | previous_by_id.keys()):
        old = previous_by_id.get(pid)
        members = frozenset(by_person.get(pid, ()))
        if old is None:
            old = Person(person_id=pid, owner=owner)
        if not members and not (old.named or old.hidden):
            continue
        cover, chosen = old.cover_face_id, old.cover_chosen_by_user
        if cover not in members:
            cover, chosen = _cover(sorted(members), new, None)
        update = {"face_ids": members, "cover_face_id": cover, "cover_chosen_by_user": chosen}
        result.append(old.model_copy(update=update))
    return ClusteringResult(
        people=tuple(result),
        unassigned_face_ids=frozenset(known - placed),
        changes=_changes(people, result, seeds),
    )
