"""The feature vector: a stored schema lays out any photo the same way, whatever it lacks."""

from __future__ import annotations

import numpy as np

from photo_organizer.learning.datasets import IMAGE_EMBEDDING_DIMENSIONS, PhotoFeatures, encode_vector
from photo_organizer.learning.features import FeatureSchema, build_schema, ocr_bucket, parse_time, photo_vector


def photo(photo_id="p1", *, embedding=True, **kw) -> PhotoFeatures:
    vector = np.arange(IMAGE_EMBEDDING_DIMENSIONS, dtype=np.float32) / 1000 if embedding else None
    return PhotoFeatures(owner="o", photo_id=photo_id, analysed_at="2026-11-01T10:00:00Z",
                         embedding=encode_vector(vector, "float16"), **kw)


def slot(schema: FeatureSchema, name: str) -> int:
    return schema.names().index(name)


def test_schema_round_trips_through_json_and_lays_out_the_same_vector():
    photos = [photo(labels={"Cat": 80.0, "animal": 90.0}, people=["p-ana"], ocr_tokens=["Coffee"],
                    place={"city": "Paris", "country_code": "FR"}, taken_at="2026-07-04T18:30:00")]
    schema = build_schema(photos)
    again = FeatureSchema.from_json(schema.to_json())
    assert again == schema and again.dimensions == schema.dimensions == len(schema.names())
    assert np.array_equal(photo_vector(photos[0], again), photo_vector(photos[0], schema))


def test_labels_people_place_ocr_and_time_land_in_their_slots():
    p = photo(labels={"Cat": 80.0}, people=["p-ana"], ocr_tokens=["coffee"],
              place={"city": "Paris", "country_code": "FR"}, taken_at="2026-07-04T18:00:00Z")
    schema = build_schema([p])
    v = photo_vector(p, schema)
    assert v[slot(schema, "label:cat")] == 0.8
    assert v[slot(schema, "person:p-ana")] == 1.0
    assert v[slot(schema, "place:fr/paris")] == 1.0 and v[slot(schema, "has_place")] == 1.0
    assert v[slot(schema, f"ocr[{ocr_bucket('coffee')}]")] == 1.0
    assert v[slot(schema, "time:has_time")] == 1.0 and v[slot(schema, "time:weekend")] == 1.0  # a Saturday
    assert np.isclose(np.linalg.norm(v[: IMAGE_EMBEDDING_DIMENSIONS]), 1.0) and v[slot(schema, "has_embedding")] == 1


def test_a_photo_without_embedding_gets_zeros_and_a_missing_flag():
    schema = build_schema([photo()])
    v = photo_vector(photo(embedding=False), schema)
    assert not v[: IMAGE_EMBEDDING_DIMENSIONS].any() and v[slot(schema, "has_embedding")] == 0


def test_training_photos_without_embeddings_give_a_schema_without_the_embedding_part():
    schema = build_schema([photo(embedding=False, labels={"dog": 50.0})])
    assert schema.embedding_dimensions == 0 and "has_embedding" not in schema.names()
    assert photo_vector(photo(labels={"dog": 50.0}), schema)[slot(schema, "label:dog")] == 0.5


def test_what_the_schema_does_not_know_adds_nothing():
    schema = build_schema([photo(labels={"cat": 80.0}, people=["p-ana"])])
    known = photo_vector(photo(labels={"cat": 80.0}), schema)
    unknown = photo_vector(photo(labels={"cat": 80.0, "zebra": 99.0}, people=["p-bob"]), schema)
    assert np.array_equal(known, unknown)


def test_times_parse_like_the_exporters_write_them_including_a_z_suffix():
    assert parse_time("2026-12-03T10:00:00Z").utcoffset().total_seconds() == 0
    assert parse_time("2026-12-03T10:00:00.123456+01:00").hour == 10
    assert parse_time("not a time") is None and parse_time(None) is None


def test_ocr_buckets_are_stable_across_processes():
    import zlib

    assert ocr_bucket("coffee") == zlib.crc32(b"coffee") % 64 == ocr_bucket("COFFEE")
