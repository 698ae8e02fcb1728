"""Faces -> people on synthetic dlib-like descriptors: identities, adversarial faces and the user's corrections.

Descriptors are 128-d: identity centres are random directions scaled so that faces of one identity sit ~0.35
apart and faces of different identities ~0.85 apart, dlib's documented ranges. No test here runs dlib on real
face photos; that test comes with the local analyzer.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import networkx as nx
import numpy as np
import pytest

from photo_organizer.people import (
    DEFAULT_THRESHOLD,
    CannotLink,
    FaceRef,
    MustLink,
    OwnerMismatchError,
    Person,
    PinnedFace,
    SimilarityEdge,
    attach_new_faces,
    cluster_people,
    distance_from_similarity,
    edges_per_owner,
    merge_people,
    move_face,
    nearest_edges,
    new_person_id,
    not_this_person,
    similarities_from_distances,
    similarity_from_distance,
    split_person,
)

OWNER = "owner-1"
T0 = datetime(2024, 7, 1, tzinfo=timezone.utc)
CENTRE_RADIUS = np.sqrt(0.3)  # two random centres ~0.77 apart; with the noise, faces of two people ~0.85
NOISE = 0.35 / 16  # within one identity: sqrt(2 * 128) * NOISE ~= 0.35


class Library:
    """A synthetic owner's faces: descriptors by face id, the true identity of each, and FaceRefs."""

    def __init__(self, seed: int = 7, dims: int = 128) -> None:
        self.rng = np.random.default_rng(seed)
        self.dims = dims
        self.centres: dict[str, np.ndarray] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self.truth: dict[str, str] = {}
        self.refs: dict[str, FaceRef] = {}

    def identity(self, name: str) -> np.ndarray:
        if name not in self.centres:
            direction = self.rng.normal(size=self.dims)
            self.centres[name] = CENTRE_RADIUS * direction / np.linalg.norm(direction)
        return self.centres[name]

    def add(self, face_id: str, centre: np.ndarray, truth: str, *, quality: float = 0.5, owner: str = OWNER) -> str:
        self.vectors[face_id] = centre + self.rng.normal(scale=NOISE, size=self.dims)
        self.truth[face_id] = truth
        self.refs[face_id] = FaceRef(
            face_id=face_id, photo_id=f"photo-{face_id}", owner=owner, quality=quality,
            created_at=T0 + timedelta(minutes=len(self.refs)),
        )
        return face_id

    def faces_of(self, name: str, count: int, *, start: int = 0) -> list[str]:
        return [self.add(f"{name}-{j:02d}", self.identity(name), name) for j in range(start, start + count)]

    def faces(self, ids=None) -> list[FaceRef]:
        return [self.refs[f] for f in (ids if ids is not None else self.refs)]

    def edges(self, ids=None, **options) -> list[SimilarityEdge]:
        ids = sorted(ids if ids is not None else self.vectors)
        return nearest_edges(ids, np.stack([self.vectors[f] for f in ids]), **options)


def five_people(per_person: int = 6) -> Library:
    lib = Library()
    for name in ("ana", "ben", "cai", "dia", "eli"):
        lib.faces_of(name, per_person)
    return lib


def groups(result) -> set[frozenset[str]]:
    return {p.face_ids for p in result.people if p.face_ids}


def truth_groups(lib: Library, ids=None) -> set[frozenset[str]]:
    out: dict[str, set[str]] = {}
    for f in ids if ids is not None else lib.truth:
        out.setdefault(lib.truth[f], set()).add(f)
    return {frozenset(v) for v in out.values()}


def person_named(result, name: str) -> Person:
    return next(p for p in result.people if p.name == name)


# ---- similarity scale and edges -------------------------------------------------------------------------------


def test_distance_mapping_puts_dlib_same_and_different_person_ranges_on_either_side_of_the_threshold():
    assert similarity_from_distance(0.6) == pytest.approx(DEFAULT_THRESHOLD)
    assert all(similarity_from_distance(d) > 0.95 for d in (0.0, 0.33, 0.38, 0.42))
    assert all(similarity_from_distance(d) < 0.2 for d in (0.82, 0.85, 0.89, 1.5))
    distances = np.linspace(0, 2, 201)
    sims = similarities_from_distances(distances)
    assert np.all(np.diff(sims) < 0)
    assert sims == pytest.approx([similarity_from_distance(d) for d in distances])
    assert distance_from_similarity(similarity_from_distance(0.47)) == pytest.approx(0.47)
    with pytest.raises(ValueError):
        similarity_from_distance(-0.1)


def test_synthetic_descriptors_have_dlib_like_distances():
    lib = five_people()
    ids = sorted(lib.vectors)
    x = np.stack([lib.vectors[f] for f in ids])
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    same = np.array([[lib.truth[a] == lib.truth[b] for b in ids] for a in ids]) & ~np.eye(len(ids), dtype=bool)
    different = ~same & ~np.eye(len(ids), dtype=bool)
    assert 0.30 < d[same].mean() < 0.40 and d[same].max() < 0.5
    assert 0.80 < d[different].mean() < 0.92 and d[different].min() > 0.6


def test_nearest_edges_equal_brute_force_whatever_the_input_order():
    lib = five_people()
    ids = list(lib.vectors)
    expected = set()
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            s = similarity_from_distance(float(np.linalg.norm(lib.vectors[a] - lib.vectors[b])))
            if s >= DEFAULT_THRESHOLD:
                expected.add(tuple(sorted((a, b))))
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    edges = nearest_edges(shuffled, np.stack([lib.vectors[f] for f in shuffled]), k=None)
    assert {(e.a, e.b) for e in edges} == expected
    assert edges == lib.edges(k=None)  # same values to the bit, same order
    small_blocks = lib.edges(k=None, block=7)
    assert [(e.a, e.b) for e in small_blocks] == [(e.a, e.b) for e in edges]
    assert [e.similarity for e in small_blocks] == pytest.approx([e.similarity for e in edges], abs=1e-12)
    by_pair = {(e.a, e.b): e.similarity for e in edges}
    a, b = sorted(expected)[0]
    distance = float(np.linalg.norm(lib.vectors[a] - lib.vectors[b]))
    assert by_pair[(a, b)] == pytest.approx(similarity_from_distance(distance))


def test_nearest_edges_keep_at_most_k_per_face_from_each_end():
    lib = five_people(per_person=10)
    edges = lib.edges(k=3)
    degree: dict[str, int] = {}
    for e in edges:
        degree[e.a] = degree.get(e.a, 0) + 1
        degree[e.b] = degree.get(e.b, 0) + 1
    assert len(edges) <= 3 * len(lib.vectors) and min(degree.values()) >= 3
    assert len(edges) < len(lib.edges(k=None))
    assert all(lib.truth[e.a] == lib.truth[e.b] for e in edges)


def test_cosine_metric_finds_the_same_people():
    lib = five_people()
    ids = sorted(lib.vectors)
    edges = nearest_edges(ids, np.stack([lib.vectors[f] for f in ids]), metric="cosine", threshold=0.8)
    assert edges and all(lib.truth[e.a] == lib.truth[e.b] for e in edges)


def test_edges_are_computed_per_owner_and_never_join_two_owners():
    lib = Library()
    twin = lib.identity("twin")
    for j in range(4):
        lib.add(f"o1-{j}", twin, "twin", owner="owner-1")
        lib.add(f"o2-{j}", twin, "twin", owner="owner-2")
    by_owner = edges_per_owner(lib.faces(), lib.vectors, k=None)
    assert set(by_owner) == {"owner-1", "owner-2"}
    for owner, edges in by_owner.items():
        assert edges and all(lib.refs[e.a].owner == owner == lib.refs[e.b].owner for e in edges)


def test_records_of_another_owner_are_refused():
    lib = five_people()
    stray = lib.add("zz-stray", lib.identity("ana"), "ana", owner="owner-2")
    with pytest.raises(OwnerMismatchError):
        cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    with pytest.raises(OwnerMismatchError):
        attach_new_faces([Person(person_id="p", owner=OWNER, face_ids=frozenset({"ana-00"}))],
                         [lib.refs[stray]], [], [])


# ---- clustering -------------------------------------------------------------------------------------------------


def test_five_identities_of_six_faces_become_five_people():
    lib = five_people()
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    assert groups(result) == truth_groups(lib)
    assert not result.unassigned_face_ids
    assert all(p.person_id == new_person_id(OWNER, min(p.face_ids)) for p in result.people)
    assert [c.kind for c in result.changes] == ["person_created"] * 5


def test_a_face_that_looks_like_two_people_does_not_merge_them():
    lib = five_people()
    bridge = lib.add("bridge", (lib.identity("ana") + lib.identity("ben")) / 2, "ana")
    edges = lib.edges()
    linked_to = {lib.truth[e.b if e.a == bridge else e.a] for e in edges if bridge in (e.a, e.b)}
    assert linked_to == {"ana", "ben"}  # the adversarial face really is similar to both
    naive = nx.Graph([(e.a, e.b) for e in edges if e.similarity >= DEFAULT_THRESHOLD])
    assert any({"ana-00", "ben-00"} <= c for c in nx.connected_components(naive))  # the baseline chains them

    result = cluster_people(OWNER, lib.faces(), edges, [], [])
    ana, ben = result.person_of("ana-00"), result.person_of("ben-00")
    assert ana is not None and ben is not None and ana.person_id != ben.person_id
    assert all(lib.truth[f] == "ana" for f in ana.face_ids - {bridge})
    assert all(lib.truth[f] == "ben" for f in ben.face_ids - {bridge})


def test_a_few_bad_edges_between_two_people_do_not_merge_them():
    lib = five_people()
    edges = lib.edges() + [SimilarityEdge.of("ana-00", "cai-00", 0.99), SimilarityEdge.of("ana-01", "cai-01", 0.97)]
    result = cluster_people(OWNER, lib.faces(), edges, [], [])
    assert groups(result) == truth_groups(lib)


def test_same_input_in_any_order_gives_the_same_result():
    lib = five_people()
    lib.add("bridge", (lib.identity("ana") + lib.identity("ben")) / 2, "ana")
    faces, edges = lib.faces(), lib.edges()
    first = cluster_people(OWNER, faces, edges, [], [])
    rng = random.Random(11)
    for _ in range(5):
        rng.shuffle(faces)
        rng.shuffle(edges)
        assert cluster_people(OWNER, faces, edges, [], []) == first


def test_clusters_below_the_minimum_size_stay_unassigned():
    lib = five_people()
    pair = lib.faces_of("fay", 2)
    lone = lib.faces_of("gus", 1)
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [], [], min_cluster_size=3)
    assert result.unassigned_face_ids == frozenset(pair + lone)
    assert len(result.people) == 5
    smaller = cluster_people(OWNER, lib.faces(), lib.edges(), [], [], min_cluster_size=2)
    assert frozenset(pair) in groups(smaller) and smaller.unassigned_face_ids == frozenset(lone)


def test_a_named_or_pinned_person_smaller_than_the_minimum_is_kept():
    lib = five_people()
    lone = lib.faces_of("gus", 1)[0]
    pair = lib.faces_of("fay", 2)
    named = Person(person_id="gus", owner=OWNER, name="Gus", face_ids=frozenset({lone}))
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [named], [PinnedFace(face_id=pair[0], person_id="fay")])
    assert person_named(result, "Gus").face_ids == {lone}
    fay = next(p for p in result.people if p.person_id == "fay")
    assert fay.face_ids == set(pair)  # the pin made the person; similarity brought the other face
    assert lone not in result.unassigned_face_ids


# ---- stable ids -------------------------------------------------------------------------------------------------


def test_person_ids_survive_a_rerun_with_new_faces_and_a_changed_input_order():
    lib = five_people()
    first = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    ids_before = {lib.truth[min(p.face_ids)]: p.person_id for p in first.people}
    for name in ("ana", "ben", "cai", "dia", "eli"):
        lib.faces_of(name, 2, start=50)
    faces, edges = lib.faces(), lib.edges()
    random.Random(5).shuffle(faces)
    second = cluster_people(OWNER, faces, edges, reversed(first.people), [])
    assert groups(second) == truth_groups(lib)
    assert {lib.truth[min(p.face_ids)]: p.person_id for p in second.people} == ids_before
    assert {c.kind for c in second.changes} == {"faces_added"}


def test_an_id_is_taken_by_the_cluster_sharing_most_faces_and_new_ids_never_reuse_old_ones():
    lib = five_people()
    # last run wrongly merged ana and ben under one id derived from ana's smallest face
    merged_id = new_person_id(OWNER, "ana-00")
    wrong = Person(person_id=merged_id, owner=OWNER,
                   face_ids=frozenset(f for f in lib.truth if lib.truth[f] in ("ana", "ben")) - {"ana-05", "ana-04"})
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [wrong], [])
    ana, ben = result.person_of("ana-00"), result.person_of("ben-00")
    assert ben.person_id == merged_id  # six of ben's faces against four of ana's
    assert ana.person_id not in {merged_id} and ana.person_id == new_person_id(OWNER, "ana-00", 1)


def test_unnamed_people_are_reclustered_and_a_dissolved_person_is_reported_removed():
    lib = five_people()
    ghost = Person(person_id="ghost", owner=OWNER, face_ids=frozenset({"ana-00", "ben-00", "cai-00"}))
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [ghost], [])
    assert groups(result) == truth_groups(lib)
    assert sum(p.person_id == "ghost" for p in result.people) == 1  # one of the three kept the id
    lib2 = Library(seed=99)
    lib2.faces_of("zed", 4)
    gone = cluster_people(OWNER, lib2.faces(), lib2.edges(), [ghost], [])
    assert any(c.kind == "person_removed" and c.person_id == "ghost" for c in gone.changes)


# ---- the user's corrections ---------------------------------------------------------------------------------


def test_a_named_person_stays_named_with_the_same_id_when_new_faces_arrive():
    lib = five_people()
    first = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    ana = first.person_of("ana-00").model_copy(update={"name": "Ana"})
    people = [ana if p.person_id == ana.person_id else p for p in first.people]
    new = lib.faces_of("ana", 3, start=20) + lib.faces_of("ben", 3, start=20)
    second = cluster_people(OWNER, lib.faces(), lib.edges(), people, [])
    named = person_named(second, "Ana")
    assert named.person_id == ana.person_id and named.named
    assert named.face_ids == ana.face_ids | set(new[:3])


def test_a_named_person_keeps_its_faces_even_when_similarity_would_move_one():
    lib = five_people()
    named = Person(person_id="ana", owner=OWNER, name="Ana",
                   face_ids=frozenset(f for f in lib.truth if lib.truth[f] == "ana") | {"ben-00"})
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [named], [])
    assert "ben-00" in person_named(result, "Ana").face_ids  # confirmed by naming; "not this person" removes it
    fixed = cluster_people(OWNER, lib.faces(), lib.edges(), [named], [not_this_person("ben-00", "ana")])
    assert "ben-00" not in person_named(fixed, "Ana").face_ids
    assert result.person_of("ben-01").face_ids | {"ben-00"} == fixed.person_of("ben-00").face_ids


def test_a_merge_holds_even_when_the_faces_do_not_look_alike():
    lib = five_people()
    first = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    ana, ben = first.person_of("ana-00"), first.person_of("ben-00")
    links = merge_people(ana, ben, at=T0)
    merged = ana.model_copy(update={"face_ids": ana.face_ids | ben.face_ids})
    people = [merged] + [p for p in first.people if p.person_id not in (ana.person_id, ben.person_id)]
    lib.faces_of("ana", 2, start=30)
    second = cluster_people(OWNER, lib.faces(), lib.edges(), people, links)
    person = second.person_of("ana-00")
    assert person.person_id == ana.person_id
    assert ana.face_ids | ben.face_ids <= person.face_ids
    assert len(second.people) == 4
    # also without the caller having rewritten the people: the links alone hold the merge
    third = cluster_people(OWNER, lib.faces(), lib.edges(), first.people, links)
    assert third.person_of("ana-00") == third.person_of("ben-05")


def test_a_single_must_link_joins_two_unlike_faces_without_dragging_their_people_along():
    lib = five_people()
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [], [MustLink(a="ana-00", b="cai-03")])
    assert result.person_of("ana-00") == result.person_of("cai-03")
    assert len(result.people) == 5


def test_not_this_person_holds_even_when_the_face_looks_exactly_like_them():
    lib = five_people()
    first = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    ana = first.person_of("ana-00")
    edges = lib.edges() + [SimilarityEdge.of("ana-03", f, 1.0) for f in ana.face_ids if f != "ana-03"]
    second = cluster_people(OWNER, lib.faces(), edges, first.people, [not_this_person("ana-03", ana.person_id)])
    assert "ana-03" not in second.person_of("ana-00").face_ids
    assert second.person_of("ana-00").person_id == ana.person_id
    assert "ana-03" in second.unassigned_face_ids
    again = cluster_people(OWNER, lib.faces(), edges, second.people, [not_this_person("ana-03", ana.person_id)])
    assert again == cluster_people(OWNER, lib.faces(), edges, second.people, [not_this_person("ana-03", ana.person_id)])
    assert "ana-03" not in again.person_of("ana-00").face_ids


def test_a_moved_face_stays_in_the_person_it_was_pinned_to():
    lib = five_people()
    first = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    ana, ben = first.person_of("ana-00"), first.person_of("ben-00")
    moves = move_face("ana-02", ana.person_id, ben.person_id, at=T0)
    second = cluster_people(OWNER, lib.faces(), lib.edges(), first.people, moves)
    assert second.person_of("ana-02").person_id == ben.person_id
    assert ben.face_ids | {"ana-02"} == second.person_of("ben-00").face_ids
    assert ana.face_ids - {"ana-02"} == second.person_of("ana-00").face_ids


def test_a_split_holds_across_runs_even_between_look_alike_faces():
    lib = five_people()
    first = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    ana = first.person_of("ana-00")
    split = split_person(ana, {"ana-00", "ana-01", "ana-02"}, at=T0)
    second = cluster_people(OWNER, lib.faces(), lib.edges(), first.people, [split])
    assert second.person_of("ana-00").person_id == split.new_person_id
    assert second.person_of("ana-00").face_ids == {"ana-00", "ana-01", "ana-02"}
    assert second.person_of("ana-05").person_id == ana.person_id
    assert second.person_of("ana-05").face_ids == {"ana-03", "ana-04", "ana-05"}
    lib.faces_of("ana", 4, start=40)
    third = cluster_people(OWNER, lib.faces(), lib.edges(), second.people, [split])
    assert third.person_of("ana-00") != third.person_of("ana-05")
    assert {"ana-00", "ana-01", "ana-02"} <= third.person_of("ana-00").face_ids
    assert {"ana-03", "ana-04", "ana-05"} <= third.person_of("ana-05").face_ids


def test_a_newer_correction_wins_over_an_older_one_that_contradicts_it():
    lib = five_people()
    ana = Person(person_id="ana", owner=OWNER, face_ids=frozenset(f"ana-{j:02d}" for j in range(6)))
    older = PinnedFace(face_id="ana-01", person_id="ana", created_at=T0)
    newer = CannotLink(face_id="ana-01", person_id="ana", created_at=T0 + timedelta(days=1))
    for order in ([older, newer], [newer, older]):
        result = cluster_people(OWNER, lib.faces(), lib.edges(), [ana], order)
        assert "ana-01" not in next(p for p in result.people if p.person_id == "ana").face_ids
        ignored = [c for c in result.changes if c.kind == "constraint_ignored"]
        assert [(c.person_id, c.face_ids) for c in ignored] == [("ana", {"ana-01"})]


def test_a_hidden_person_stays_hidden_and_collects_new_faces():
    lib = five_people()
    hidden = Person(person_id="h", owner=OWNER, hidden=True, face_ids=frozenset(f"eli-{j:02d}" for j in range(6)))
    lib.faces_of("eli", 2, start=10)
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [hidden], [])
    person = result.person_of("eli-10")
    assert person.person_id == "h" and person.hidden and len(person.face_ids) == 8


def test_a_named_person_outlives_its_faces():
    lib = five_people()
    named = Person(person_id="zoe", owner=OWNER, name="Zoe", face_ids=frozenset({"deleted-1", "deleted-2"}),
                   cover_face_id="deleted-1", cover_chosen_by_user=True)
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [named], [])
    zoe = person_named(result, "Zoe")
    assert zoe.person_id == "zoe" and zoe.face_ids == frozenset() and zoe.cover_face_id is None


# ---- covers -----------------------------------------------------------------------------------------------------


def test_the_cover_is_the_best_quality_face_unless_the_user_chose_one():
    lib = Library()
    for j, quality in enumerate([0.2, 0.9, 0.4, 0.9]):
        lib.add(f"ana-{j}", lib.identity("ana"), "ana", quality=quality)
    first = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    assert first.people[0].cover_face_id == "ana-1"  # ties go to the older face
    chosen = first.people[0].model_copy(update={"cover_face_id": "ana-0", "cover_chosen_by_user": True})
    lib.add("ana-9", lib.identity("ana"), "ana", quality=1.0)
    second = cluster_people(OWNER, lib.faces(), lib.edges(), [chosen], [])
    assert second.people[0].cover_face_id == "ana-0" and second.people[0].cover_chosen_by_user
    gone = cluster_people(OWNER, lib.faces([f for f in lib.refs if f != "ana-0"]), lib.edges(), [chosen], [])
    assert gone.people[0].cover_face_id == "ana-9" and not gone.people[0].cover_chosen_by_user


# ---- incremental attachment -----------------------------------------------------------------------------------


def test_new_faces_attach_to_the_best_person_and_strangers_stay_unassigned():
    lib = five_people()
    people = cluster_people(OWNER, lib.faces(), lib.edges(), [], []).people
    new = lib.faces_of("ana", 2, start=60) + lib.faces_of("dia", 1, start=60) + lib.faces_of("stranger", 2)
    edges = lib.edges()
    result = attach_new_faces(people, lib.faces(new), edges, [], DEFAULT_THRESHOLD)
    by_id = {p.person_id: p for p in result.people}
    ana_id = next(p.person_id for p in people if "ana-00" in p.face_ids)
    dia_id = next(p.person_id for p in people if "dia-00" in p.face_ids)
    assert {"ana-60", "ana-61"} <= by_id[ana_id].face_ids and "dia-60" in by_id[dia_id].face_ids
    assert result.unassigned_face_ids == {"stranger-00", "stranger-01"}
    assert {p.person_id for p in result.people} == {p.person_id for p in people}
    assert all(p.face_ids >= old.face_ids for p, old in zip(result.people, sorted(people, key=lambda p: p.person_id)))
    assert {c.kind for c in result.changes} == {"faces_added"}
    shuffled = list(reversed(lib.faces(new)))
    assert attach_new_faces(list(reversed(people)), shuffled, list(reversed(edges)), [], DEFAULT_THRESHOLD) == result


def test_attachment_obeys_not_this_person_and_pins():
    lib = five_people()
    people = cluster_people(OWNER, lib.faces(), lib.edges(), [], []).people
    ana_id = next(p.person_id for p in people if "ana-00" in p.face_ids)
    cai_id = next(p.person_id for p in people if "cai-00" in p.face_ids)
    new = lib.faces_of("ana", 2, start=70)
    constraints = [not_this_person("ana-70", ana_id), PinnedFace(face_id="ana-71", person_id=cai_id)]
    result = attach_new_faces(people, lib.faces(new), lib.edges(), constraints, DEFAULT_THRESHOLD)
    assert "ana-70" in result.unassigned_face_ids
    assert result.person_of("ana-71").person_id == cai_id


def test_attachment_needs_most_of_a_person_to_agree_not_one_edge():
    lib = five_people()
    people = cluster_people(OWNER, lib.faces(), lib.edges(), [], []).people
    odd = lib.add("odd", lib.identity("zed"), "zed")
    edges = lib.edges() + [SimilarityEdge.of("odd", "ana-00", 0.99)]
    result = attach_new_faces(people, [lib.refs[odd]], edges, [], DEFAULT_THRESHOLD)
    assert result.unassigned_face_ids == {"odd"}


def test_a_person_with_many_faces_stays_whole_and_new_faces_join_it_even_through_capped_edges():
    lib = Library(seed=3)
    lib.faces_of("kid", 150)
    lib.faces_of("mum", 40)
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    assert groups(result) == truth_groups(lib)
    new = lib.faces_of("kid", 3, start=500)
    attached = attach_new_faces(result.people, lib.faces(new), lib.edges(k=20), [], neighbour_cap=20)
    assert set(new) <= attached.person_of("kid-00").face_ids


def test_three_look_alike_faces_between_two_people_still_do_not_merge_them():
    lib = five_people()
    middle = (lib.identity("ana") + lib.identity("ben")) / 2
    for j in range(3):
        lib.add(f"bridge-{j}", middle, "bridge")
    result = cluster_people(OWNER, lib.faces(), lib.edges(), [], [])
    assert result.person_of("ana-00") != result.person_of("ben-00")
    assert {f for f in lib.truth if lib.truth[f] == "ana"} <= result.person_of("ana-00").face_ids | {"bridge-0"}
