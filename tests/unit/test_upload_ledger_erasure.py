"""The local ledger of spent upload URLs forgets one owner's keys on account erasure, and no other owner's, even one
whose id starts with the same characters (a key range, not a LIKE pattern, in which `_` matches any character)."""

from __future__ import annotations

from photo_organizer.adapters.local.upload_ledger import UsedUploadLedger
from photo_organizer.keys import PhotoKeys


def test_forget_owner_takes_only_that_owners_keys_and_a_new_claim_of_them_succeeds(tmp_path) -> None:
    ledger = UsedUploadLedger(tmp_path / "used.sqlite3")
    owners = ["ab_c", "ab_c-2", "abxc", "ab_c0", "ab_"]
    for owner in owners:
        keys = PhotoKeys.for_photo(owner, "p1")
        assert ledger.claim(keys.original) and ledger.claim(keys.quarantine)

    assert ledger.owner_claims("ab_c") == 2
    assert ledger.forget_owner("ab_c") == 2 and ledger.forget_owner("ab_c") == 0
    assert ledger.owner_claims("ab_c") == 0
    assert [ledger.owner_claims(owner) for owner in owners[1:]] == [2, 2, 2, 2]
    assert ledger.claim(PhotoKeys.for_photo("ab_c", "p1").original), "forgotten: the key counts as unused"
