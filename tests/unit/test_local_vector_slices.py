"""OwnerVectors' staged writes, VectorFile's rewrite and int8 copies, and the int8 search re-scored from float32:
what readers and the next write see at each step, and what the quantisation costs in recall."""

from __future__ import annotations

import numpy as np
import pytest

from photo_organizer.adapters.local.vector_slices import (
    QUANTISED_HEADER,
    OwnerVectors,
    VectorFile,
    quantise,
    rank_by_similarity,
)
from photo_organizer.errors import StorageUnavailableError

DIM = 4


def rows(keys: list[int], seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    m = len(keys)
    q, scale = quantise(rng.standard_normal((m, DIM)).astype(np.float32))
    cols = {"key": np.array(keys, np.int64), "t": np.arange(m, dtype=np.int64), "flags": np.zeros(m, np.uint8),
            "has_vector": np.ones(m, bool), "lat": np.zeros(m), "lon": np.zeros(m), "scale": scale,
            "vrow": np.array(keys, np.int64)}
    return cols, q


def seen(vectors: OwnerVectors, owner: str) -> dict[int, tuple[float, ...]]:
    part = vectors.owner_slice(owner, with_vectors=True)
    return {int(k): tuple(v.tolist()) for k, v in zip(part.keys, part.vectors, strict=True)}


def test_a_staged_write_is_invisible_until_published_and_a_dropped_one_changes_nothing():
    vectors = OwnerVectors(DIM, min_delta=1000)
    cols, vecs = rows([1, 2, 3], seed=1)
    vectors.apply(["a", "a", "b"], cols, vecs)
    before = seen(vectors, "a"), seen(vectors, "b")

    cols2, vecs2 = rows([2, 4], seed=2)
    dropped = vectors.stage(["a", "b"], cols2, vecs2, removals=[("b", 3)])
    assert (seen(vectors, "a"), seen(vectors, "b")) == before

    cols3, vecs3 = rows([5], seed=3)  # the next write starts from the published state, not the dropped one
    vectors.publish(vectors.stage(["a"], cols3, vecs3))
    assert seen(vectors, "a") == {**before[0], 5: tuple(vecs3[0].tolist())}
    assert seen(vectors, "b") == before[1]
    with pytest.raises(RuntimeError):
        vectors.publish(dropped)


def test_a_compaction_that_comes_due_is_staged_and_published_whole():
    vectors = OwnerVectors(DIM, min_delta=4, delta_share=1.0)
    cols, vecs = rows([1, 2, 3], seed=1)
    vectors.apply(["a", "b", "a"], cols, vecs)
    cols2, vecs2 = rows([4, 5, 1], seed=2)  # 6 delta rows > 4: this write compacts
    staged = vectors.stage(["b", "a", "a"], cols2, vecs2, removals=[("a", 3)])
    assert staged is not None and staged.reset is not None
    assert set(seen(vectors, "a")) == {1, 3}
    vectors.publish(staged)
    assert seen(vectors, "a") == {1: tuple(vecs2[2].tolist()), 5: tuple(vecs2[1].tolist())}
    assert seen(vectors, "b") == {2: tuple(vecs[1].tolist()), 4: tuple(vecs2[0].tolist())}
    state = vectors._state
    assert len(state.delta["key"]) == 0 and len(state.base["key"]) == 4


def test_rewrite_copies_the_rows_in_the_order_given_and_leaves_the_file_as_it_was(tmp_path):
    old = VectorFile(tmp_path / "vectors.f32", DIM)
    data = np.arange(5 * DIM, dtype=np.float32).reshape(5, DIM)
    old.append(data)
    new = old.rewrite(np.array([4, 0, 2]), tmp_path / "vectors.1.f32")
    assert new.rows == 3
    assert np.array_equal(new.exact(np.arange(3)), data[[4, 0, 2]])
    assert np.array_equal(old.exact(np.arange(5)), data)
    for got, want in zip(new.read_quantised(np.arange(3)), quantise(data[[4, 0, 2]]), strict=True):
        assert np.array_equal(got, want)
    with pytest.raises(ValueError):
        old.rewrite(np.array([5]), tmp_path / "vectors.2.f32")
    with pytest.raises(FileNotFoundError):
        VectorFile(tmp_path / "missing.f32", DIM, create=False)
    new.close()
    old.close()


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n, dim), dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def indexed(tmp_path, matrix: np.ndarray) -> tuple[OwnerVectors, VectorFile]:
    """One owner holding every row of `matrix` as key i at vrow i, loaded as the index loads it: int8 in memory,
    float32 in the file."""
    n, dim = matrix.shape
    file = VectorFile(tmp_path / "vectors.f32", dim)
    file.append(matrix)
    q, scale = file.read_quantised(np.arange(n))
    keys = np.arange(n, dtype=np.int64)
    cols = {"key": keys, "t": keys, "flags": np.zeros(n, np.uint8), "has_vector": np.ones(n, bool),
            "lat": np.zeros(n), "lon": np.zeros(n), "scale": scale, "vrow": keys}
    vectors = OwnerVectors(dim)
    vectors.load(["a"] * n, cols, q, file)
    return vectors, file


def test_int8_candidates_rescored_from_float32_keep_recall_at_50_against_exact_float32_search(tmp_path):
    matrix = unit_rows(20_000, 384, seed=3)
    vectors, file = indexed(tmp_path, matrix)
    part = vectors.owner_slice("a", with_vectors=True)
    assert part.vectors.dtype == np.int8 and vectors.nbytes < matrix.nbytes // 3
    rng = np.random.default_rng(4)
    near = matrix[rng.integers(0, len(matrix), 25)] + 0.05 * rng.standard_normal((25, 384), dtype=np.float32)
    queries = np.concatenate([near, unit_rows(25, 384, seed=5)])  # a photo's neighbours, and no clear answer
    recalls = []
    for query in queries / np.linalg.norm(queries, axis=1, keepdims=True):
        exact = np.einsum("ij,j->i", matrix, query)  # float32, summed as the index sums
        truth = set(np.argsort(-exact, kind="stable")[:50].tolist())
        ranked = rank_by_similarity(part, query, np.ones(len(matrix), bool), -1.0)
        got = ranked.take(0, 50)
        recalls.append(len(truth & set(got.tolist())) / 50)
        assert np.array_equal(ranked.sims[0], exact[ranked.keys[0]])  # the re-scored ones carry exact scores
    assert np.mean(recalls) >= 0.99 and min(recalls) >= 0.96
    file.close()


def test_the_similarity_floor_is_exact_even_where_int8_estimates_straddle_it(tmp_path):
    matrix = unit_rows(5_000, 384, seed=6)
    vectors, file = indexed(tmp_path, matrix)
    part = vectors.owner_slice("a", with_vectors=True)
    query = matrix[7] + 0.2 * unit_rows(1, 384, seed=8)[0]
    query /= np.linalg.norm(query)
    exact = np.einsum("ij,j->i", matrix, query)
    floor = float(np.sort(exact)[-31:-29].mean())  # 30 rows above it, some within the int8 error of it
    ranked = rank_by_similarity(part, query, np.ones(len(matrix), bool), floor)
    assert set(ranked.take(0, len(ranked)).tolist()) == set(np.flatnonzero(exact >= floor).tolist())
    file.close()


def test_renumbered_rows_name_the_new_file_for_readers_from_then_on(tmp_path):
    matrix = unit_rows(6, DIM, seed=9)
    vectors, old = indexed(tmp_path, matrix)
    before = vectors.owner_slice("a")
    new = old.rewrite(np.array([5, 3, 1]), tmp_path / "vectors.1.f32")
    mapping = np.array([-1, 2, -1, 1, -1, 0])
    vectors.renumber(mapping, new)
    after = vectors.owner_slice("a")
    assert before.source is old and before.vrow.tolist() == [0, 1, 2, 3, 4, 5]  # a reader's state is unchanged
    assert after.source is new and after.vrow.tolist() == [-1, 2, -1, 1, -1, 0]
    assert np.array_equal(new.exact(after.vrow[[1, 3, 5]]), matrix[[1, 3, 5]])
    old.close()
    new.close()


def written(tmp_path, matrix: np.ndarray) -> None:
    file = VectorFile(tmp_path / "vectors.f32", matrix.shape[1])
    file.append(matrix)
    file.close()


def assert_int8_copies_of(file: VectorFile, matrix: np.ndarray) -> None:
    for got, want in zip(file.read_quantised(np.arange(len(matrix))), quantise(matrix), strict=True):
        assert np.array_equal(got, want)


def test_a_vectors_file_without_int8_copies_is_read_by_quantising_and_completed_by_the_next_write(tmp_path):
    matrix = unit_rows(10, DIM, seed=10)
    written(tmp_path, matrix[:8])
    (tmp_path / "vectors.i8").unlink()  # an index written before the int8 copies existed
    reader = VectorFile(tmp_path / "vectors.f32", DIM, create=False)
    assert_int8_copies_of(reader, matrix[:8])
    assert (tmp_path / "vectors.i8").stat().st_size == 0  # opening never writes rows
    reader.append(matrix[8:])
    assert (tmp_path / "vectors.i8").stat().st_size == QUANTISED_HEADER.size + 10 * (DIM + 4)
    reader.close()
    again = VectorFile(tmp_path / "vectors.f32", DIM)
    assert_int8_copies_of(again, matrix)
    again.close()


def test_int8_rows_past_the_float32_ones_are_ignored_and_cut_by_the_next_write(tmp_path):
    matrix = unit_rows(4, DIM, seed=11)
    written(tmp_path, matrix[:3])
    with open(tmp_path / "vectors.i8", "ab") as f:  # a crash after the int8 append, before the float32 one
        f.write(b"\x01" * (DIM + 4 + 3))
    reopened = VectorFile(tmp_path / "vectors.f32", DIM)
    assert reopened.rows == 3
    reopened.append(matrix[3:])
    assert_int8_copies_of(reopened, matrix)
    assert (tmp_path / "vectors.i8").stat().st_size == QUANTISED_HEADER.size + 4 * (DIM + 4)
    reopened.close()


@pytest.mark.parametrize("header", [
    QUANTISED_HEADER.pack(b"POVQ", 2, DIM, 0),  # a newer format
    QUANTISED_HEADER.pack(b"POVQ", 1, DIM + 1, 0),  # another model's dimensions
    QUANTISED_HEADER.pack(b"JUNK", 1, DIM, 0),
])
def test_int8_copies_of_an_unknown_format_are_refused_with_what_to_do(tmp_path, header):
    written(tmp_path, unit_rows(2, DIM, seed=12))
    (tmp_path / "vectors.i8").write_bytes(header + b"\x00" * 2 * (DIM + 4))
    with pytest.raises(StorageUnavailableError, match="delete that file to rebuild it from vectors.f32"):
        VectorFile(tmp_path / "vectors.f32", DIM)
