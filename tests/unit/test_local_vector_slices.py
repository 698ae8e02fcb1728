"""OwnerVectors' staged writes and VectorFile's rewrite: what readers and the next write see at each step."""

from __future__ import annotations

import numpy as np
import pytest

from photo_organizer.adapters.local.vector_slices import OwnerVectors, VectorFile

DIM = 4


def rows(keys: list[int], seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    m = len(keys)
    cols = {"key": np.array(keys, np.int64), "t": np.arange(m, dtype=np.int64), "flags": np.zeros(m, np.uint8),
            "has_vector": np.ones(m, bool), "lat": np.zeros(m), "lon": np.zeros(m)}
    return cols, rng.standard_normal((m, DIM)).astype(np.float32)


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
    assert np.array_equal(new.read(np.arange(3)), data[[4, 0, 2]])
    assert np.array_equal(old.read(np.arange(5)), data)
    with pytest.raises(ValueError):
        old.rewrite(np.array([5]), tmp_path / "vectors.2.f32")
    with pytest.raises(FileNotFoundError):
        VectorFile(tmp_path / "missing.f32", DIM, create=False)
    new.close()
    old.close()
