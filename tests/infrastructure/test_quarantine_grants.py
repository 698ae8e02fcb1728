"""With rejected_action=quarantine the validator moves a rejected original to quarantine/, and deleting that photo
through the API removes every version under quarantine/ (services/photos.py delete -> S3BlobStore.delete:
ListObjectVersions with the key as prefix, then DeleteObjects by version). The API role lacked both the listing
and the deletes under quarantine/. The grants do not depend on the setting (the delete path always clears the
quarantine key), so the default App is checked; evaluated offline by tests/infrastructure/policy_eval.py."""

from __future__ import annotations

import pytest

from .policy_eval import allowed, role_statements

pytestmark = pytest.mark.infrastructure

BUCKET = "arn:aws:s3:::originals-bucket"
ORIGINAL = "originals/owner-a/photo-1"
QUARANTINED = "quarantine/owner-a/photo-1"


def test_api_role_can_delete_every_version_of_a_quarantined_original(synthesized):
    api = role_statements(synthesized.template_json("api"), "ApiRole")
    assert allowed(api, "s3:ListBucketVersions", BUCKET, {"s3:prefix": QUARANTINED})
    assert allowed(api, "s3:DeleteObjectVersion", f"{BUCKET}/{QUARANTINED}")
    assert allowed(api, "s3:DeleteObject", f"{BUCKET}/{QUARANTINED}")
    # and still the originals, as before
    assert allowed(api, "s3:ListBucketVersions", BUCKET, {"s3:prefix": ORIGINAL})
    assert allowed(api, "s3:DeleteObjectVersion", f"{BUCKET}/{ORIGINAL}")


def test_api_role_may_not_delete_outside_its_two_prefixes_nor_write_into_quarantine(synthesized):
    api = role_statements(synthesized.template_json("api"), "ApiRole")
    assert not allowed(api, "s3:DeleteObjectVersion", f"{BUCKET}/other/owner-a/photo-1")
    assert not allowed(api, "s3:DeleteObject", "arn:aws:s3:::derivatives-bucket-of-someone-else/x")
    assert not allowed(api, "s3:PutObject", f"{BUCKET}/{QUARANTINED}")


def test_validator_can_move_a_rejected_original_to_quarantine(synthesized):
    """S3BlobStore.move: CopyObject (read the source, write the target, tags and KMS both ways), then the delete of
    every version of the source."""
    validator = role_statements(synthesized.template_json("ingest"), "ValidatorRole")
    assert allowed(validator, "s3:GetObject", f"{BUCKET}/{ORIGINAL}")
    assert allowed(validator, "s3:GetObjectTagging", f"{BUCKET}/{ORIGINAL}")
    assert allowed(validator, "s3:PutObject", f"{BUCKET}/{QUARANTINED}")
    assert allowed(validator, "s3:PutObjectTagging", f"{BUCKET}/{QUARANTINED}")
    assert allowed(validator, "kms:Decrypt", "arn:aws:kms:eu-west-1:111111111111:key/data-key")
    assert allowed(validator, "kms:GenerateDataKey", "arn:aws:kms:eu-west-1:111111111111:key/data-key")
    assert allowed(validator, "s3:ListBucketVersions", BUCKET, {"s3:prefix": ORIGINAL})
    assert allowed(validator, "s3:DeleteObjectVersion", f"{BUCKET}/{ORIGINAL}")
