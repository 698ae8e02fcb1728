"""Local tokens are checked the way API Gateway's JWT authorizer checks Cognito's."""

import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from photo_organizer.errors import UnauthorizedError, ValidationError
from photo_organizer.local_stack.identity import CLIENT_ID, LocalIdentityProvider

ISSUER = "http://127.0.0.1:8787/auth"


@pytest.fixture
def identity(tmp_path):
    return LocalIdentityProvider(tmp_path, issuer=ISSUER)


def test_issued_token_verifies_with_cognito_shaped_claims(identity):
    user, _ = identity.add_user("ana", "a long password")
    claims = identity.verify(identity.issue_token(user))
    assert claims["sub"] == user.sub and claims["aud"] == CLIENT_ID and claims["iss"] == ISSUER
    assert claims["token_use"] == "id" and claims["cognito:username"] == "ana"


def test_signing_key_and_users_persist_across_restarts(identity, tmp_path):
    user, _ = identity.add_user("ana", "a long password")
    token = identity.issue_token(user)
    again = LocalIdentityProvider(tmp_path, issuer=ISSUER)
    assert again.verify(token)["sub"] == user.sub
    assert again.jwks() == identity.jwks() and "d" not in again.jwks()["keys"][0]


def test_token_signed_by_another_key_is_refused(identity):
    user, _ = identity.add_user("ana", "a long password")
    foreign = RSAKey.generate_key(2048, parameters={"kid": identity.jwks()["keys"][0]["kid"]}, private=True)
    now = int(time.time())
    claims = {"sub": user.sub, "iss": ISSUER, "aud": CLIENT_ID, "iat": now, "exp": now + 60}
    with pytest.raises(UnauthorizedError):
        identity.verify(jwt.encode({"alg": "RS256", "kid": foreign.kid}, claims, foreign))


@pytest.mark.parametrize(
    ("issuer", "ttl", "shift"),
    [("http://elsewhere/auth", 60, 0), (ISSUER, 60, -3600), (ISSUER, 60, 3600)],
    ids=["foreign-issuer", "expired", "not-yet-valid"],
)
def test_wrong_issuer_expired_and_future_tokens_are_refused(tmp_path, issuer, ttl, shift):
    issuing = LocalIdentityProvider(tmp_path, issuer=issuer)
    user, _ = issuing.add_user("ana", "a long password")
    token = issuing.issue_token(user, ttl_seconds=ttl, now=time.time() + shift)
    with pytest.raises(UnauthorizedError):
        LocalIdentityProvider(tmp_path, issuer=ISSUER).verify(token)


def test_unsigned_alg_none_token_is_refused(identity):
    user, _ = identity.add_user("ana", "a long password")
    header, payload, _ = identity.issue_token(user).split(".")
    with pytest.raises(UnauthorizedError):
        identity.verify(f"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")


def test_password_login_and_wrong_password(identity):
    identity.add_user("ana", "a long password")
    assert identity.authenticate("ANA", "a long password").username == "ana"
    with pytest.raises(UnauthorizedError):
        identity.authenticate("ana", "wrong password")
    with pytest.raises(UnauthorizedError):
        identity.authenticate("nobody", "a long password")
    with pytest.raises(ValidationError):
        identity.add_user("ana", "a long password")


def test_sign_in_link_names_its_account_without_being_used_up_then_works_once(identity):
    user, _ = identity.add_user("ana", "a long password")
    code = identity.issue_sign_in_code(user)
    assert identity.sign_in_code_user(code) == user
    assert identity.sign_in_code_user(code) == user  # asking whom it names does not use it
    assert identity.redeem_sign_in_code(code) == user
    with pytest.raises(UnauthorizedError):
        identity.redeem_sign_in_code(code)
    with pytest.raises(UnauthorizedError):
        identity.sign_in_code_user(code)


def test_sign_in_link_expires_and_an_unknown_code_is_refused(identity):
    user, _ = identity.add_user("ana", "a long password")
    code = identity.issue_sign_in_code(user, ttl_seconds=600, now=1000.0)
    with pytest.raises(UnauthorizedError):
        identity.redeem_sign_in_code(code, now=1600.0)
    with pytest.raises(UnauthorizedError):
        identity.redeem_sign_in_code("not-a-code")


def test_sign_in_link_is_kept_only_as_a_hash_and_dies_with_its_user(identity, tmp_path):
    import sqlite3

    user, _ = identity.add_user("ana", "a long password")
    code = identity.issue_sign_in_code(user)
    with sqlite3.connect(tmp_path / "identity" / "users.sqlite3") as db:
        stored = [row[0] for row in db.execute("SELECT code_hash FROM sign_in_codes")]
    assert len(stored) == 1 and code not in stored[0]
    identity.delete_user("ana")
    with pytest.raises(UnauthorizedError):
        identity.sign_in_code_user(code)


def test_two_redemptions_of_one_link_at_once_sign_in_exactly_one(identity):
    from concurrent.futures import ThreadPoolExecutor

    user, _ = identity.add_user("ana", "a long password")
    code = identity.issue_sign_in_code(user)

    def redeem(_):
        try:
            return identity.redeem_sign_in_code(code)
        except UnauthorizedError:
            return None

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(redeem, range(8)))
    assert results.count(user) == 1 and results.count(None) == 7
